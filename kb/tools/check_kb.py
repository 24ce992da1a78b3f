#!/usr/bin/env python3
"""Sanity-check the KB files (and any extra watchlist files given as arguments).

    python3 kb/tools/check_kb.py [my_watchlist.jsonl ...]

Checks: every line parses; required fields; valid `type`; no duplicate `id`;
no duplicate `name` within a type; every city's / person's `country` exists;
every country has a capital line. Also lists surface forms (name, alias,
demonym) shared by several entities -- these are warnings, not errors.
"""
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

KB = Path(__file__).resolve().parent.parent
FILES = ["countries.jsonl", "organizations.jsonl", "people.jsonl", "groups.jsonl"]
TYPES = {"PERSON", "ORG", "LOCATION", "GROUP", "MISC"}


def main():
    paths = [KB / f for f in FILES] + [Path(a) for a in sys.argv[1:]]
    errors, rows = [], []
    for path in paths:
        n = 0
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{i}"
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(f"{where}: bad JSON: {e}")
                continue
            n += 1
            if not isinstance(r.get("name"), str) or not r["name"].strip():
                errors.append(f"{where}: missing name")
            if r.get("type") not in TYPES:
                errors.append(f"{where}: bad type {r.get('type')!r}")
            if not isinstance(r.get("aliases", []), list):
                errors.append(f"{where}: aliases must be a list")
            if "id" in r and not (isinstance(r["id"], str) and r["id"][:1] == "Q" and r["id"][1:].isdigit()):
                errors.append(f"{where}: id {r['id']!r} is not a Wikidata QID")
            rows.append((where, r))
        print(f"{path.name}: {n} entities")

    ids = Counter(r["id"] for _, r in rows if "id" in r)
    errors += [f"duplicate id {q}" for q, c in ids.items() if c > 1]
    names = Counter((r.get("type"), r.get("name")) for _, r in rows)
    errors += [f"duplicate name {n!r} within type {t}" for (t, n), c in names.items() if c > 1]

    locs = {r["name"] for _, r in rows if r.get("type") == "LOCATION"}
    countries = {r["name"]: r for _, r in rows if r.get("kind") == "country"}
    cities = {r["name"]: r for _, r in rows if r.get("kind") == "city"}
    for where, r in rows:
        c = r.get("country")
        if c is not None and c not in locs:
            errors.append(f"{where}: {r['name']!r} has unknown country {c!r}")
        if r.get("kind") == "city" and c not in countries and c not in locs:
            errors.append(f"{where}: city {r['name']!r} without valid country")
    for name, r in countries.items():
        cap = r.get("capital")
        if not cap:
            errors.append(f"country {name!r} has no capital")
        elif cap != name and (cap not in cities or cities[cap].get("country") != name):
            errors.append(f"country {name!r}: capital {cap!r} has no city line pointing back")
    for where, r in rows:
        cap = r.get("capital")
        if cap and r.get("kind") != "country" and cap != r["name"] and cap not in cities:
            errors.append(f"{where}: capital {cap!r} has no city line")

    forms = defaultdict(set)
    for _, r in rows:
        for f in [r["name"]] + r.get("aliases", []) + r.get("demonyms", []):
            forms[f].add(f"{r['type']}:{r['name']}")
    shared = {f: s for f, s in forms.items() if len(s) > 1}
    if shared:
        print(f"\nwarning: {len(shared)} surface forms shared by several entities:")
        for f, s in sorted(shared.items()):
            print(f"  {f!r}: {sorted(s)}")

    if errors:
        print(f"\n{len(errors)} ERRORS:")
        for e in errors:
            print("  " + e)
        sys.exit(1)
    print("\nOK")


if __name__ == "__main__":
    main()
