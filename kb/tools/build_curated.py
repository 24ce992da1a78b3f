#!/usr/bin/env python3
"""Turn the hand-written sources under kb/curated/ into entity rows.

Two kinds of source:
  * kb/curated/*_base.jsonl -- complete JSON lines (the KB as it was before
    the generator existed, plus later hand-written lines). Kept verbatim
    except that build_kb.py adds `id` and `prior` where they are missing.
  * kb/curated/**/*.txt     -- compact hand-written lists, one entity a line:

        @type PERSON | ORG | GROUP      (sets the default for the lines below)
        @kind person                    (kind; for ORG/GROUP lines the third field may override it)
        @country United States          (`-` = none)
        @role United States Senator     (PERSON only; `-` = none)
        @tier 3                         (1..6 -> prior, see TIERS)
        @match_alone false              (or true)
        Name | alias; alias | role-or-kind | country | tier

    Empty or missing fields take the defaults; `#` starts a comment line.
    A line whose name already exists (same type) adds its aliases, and sets
    role/country/tier where the earlier line has none or only had it from an
    @default while this line gives it explicitly. Lines of *_base.jsonl are
    always explicit.
"""
import re
from pathlib import Path

from kbcommon import KB, ascii_fold, read_jsonl, with_folds

CURATED = KB / "curated"
TIERS = {1: 1.0, 2: 0.85, 3: 0.7, 4: 0.5, 5: 0.3, 6: 0.15}
KINDS = {"PERSON": {"person"},
         "ORG": {"intergovernmental_organization", "supranational_union", "company", "political_party",
                 "militant_group", "agency", "legislature", "court", "media", "university", "ngo",
                 "sports_team", "sports_league", "organization", "religious_group"},
         "GROUP": {"ethnic_group", "religious_group", "nationality", "political_group", "social_group"}}
OUT_FILE = {"PERSON": "people", "ORG": "organizations", "GROUP": "groups"}


def parse_txt(path, log):
    d = {"type": None, "kind": None, "country": None, "role": None, "tier": None, "match_alone": None}
    rows = []
    for i, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path.relative_to(KB)}:{i}"
        if line.startswith("@"):
            key, _, val = line[1:].partition(" ")
            val = val.strip()
            if key not in d:
                raise SystemExit(f"{where}: unknown directive {key}")
            if key == "tier":
                val = int(val)
            elif key == "match_alone":
                val = {"true": None, "false": False}[val]
            elif val == "-":
                val = None
            d[key] = val
            if key == "type":
                d["kind"] = {"PERSON": "person"}.get(val)
            continue
        f = [x.strip() for x in line.split("|")]
        f += [""] * (5 - len(f))
        name = f[0]
        if not name or not d["type"]:
            raise SystemExit(f"{where}: no name or no @type")
        t = d["type"]
        row = {"name": name, "type": t}
        kind = d["kind"]
        if t != "PERSON" and f[2]:
            kind = f[2]
        if kind not in KINDS[t]:
            raise SystemExit(f"{where}: bad kind {kind!r} for {t}")
        row["kind"] = kind
        row["aliases"] = [a.strip() for a in f[1].split(";") if a.strip()]
        # fields given on the line itself (not taken from an @default) win when lines merge
        row["_explicit"] = {k for k, v in (("role", f[2] and t == "PERSON"), ("country", f[3]), ("prior", f[4])) if v}
        country = f[3] or d["country"]
        if country == "-":
            country = None
        if country:
            row["country"] = country
        if t == "PERSON":
            role = f[2] or d["role"]
            if role and role != "-":
                row["role"] = role
        tier = int(f[4]) if f[4] else d["tier"]
        if tier:
            row["prior"] = TIERS[tier]
        if d["match_alone"] is False:
            row["match_alone"] = False
        row["_where"] = where
        row["_src"] = "curated"
        rows.append(row)
    return rows


def build(log=print):
    """Returns {type: [rows]} in file order: base lines first, then .txt files
    sorted by path."""
    out = {"PERSON": [], "ORG": [], "GROUP": []}
    index = {}
    for t, stem in OUT_FILE.items():
        p = CURATED / f"{stem}_base.jsonl"
        if p.exists():
            for r in read_jsonl(p):
                r["_base"] = True
                r["_src"] = "existing"
                out[r["type"]].append(r)
                index[(r["type"], r["name"])] = r
    merged = 0
    for path in sorted(CURATED.rglob("*.txt")):
        for r in parse_txt(path, log):
            key = (r["type"], r["name"])
            if key in index:
                old = index[key]
                for a in r["aliases"]:
                    if a not in old["aliases"] and a != old["name"]:
                        old["aliases"].append(a)
                old_explicit = old.get("_explicit", set(old)) if not old.get("_base") else set(old)
                for k in ("role", "country", "prior"):
                    if k in r and (k not in old or (k in r["_explicit"] and k not in old_explicit)):
                        old[k] = r[k]
                        if k in r["_explicit"]:
                            old.setdefault("_explicit", set()).add(k)
                merged += 1
                continue
            index[key] = r
            out[r["type"]].append(r)
    for t, rows in out.items():
        for r in rows:
            if not r.get("_base"):
                r["aliases"] = with_folds(r["aliases"] + [r["name"]], exclude={r["name"]})
    log(f"  curated: {merged} lines merged into earlier entries")
    return out
