"""Helpers shared by the KB build scripts (stdlib only)."""
import json
import re
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
KB = HERE.parent

FOLD = str.maketrans({
    "ı": "i", "İ": "I", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d",
    "Đ": "D", "ß": "ss", "æ": "ae", "Æ": "AE", "’": "'", "ʻ": "'", "‘": "'",
    "ə": "e", "Ə": "E", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "œ": "oe",
    "Œ": "OE", "ħ": "h", "Ħ": "H", "ŀ": "l", "ʼ": "'", "ʿ": "'", "ʾ": "'",
    "–": "-", "—": "-",
})

ID_RE = re.compile(r"^(Q[0-9]+|kb:[a-z0-9-]+)$")


def ascii_fold(s: str) -> str:
    s = s.translate(FOLD)
    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if not unicodedata.combining(c))


def is_ascii(s: str) -> bool:
    return all(ord(c) < 128 for c in s)


def with_folds(names, exclude=()):
    """Deduplicate (order kept), add the ASCII-folded variant of every name
    with diacritics, drop anything in `exclude`."""
    out = []
    for n in names:
        for v in (n, ascii_fold(n)):
            v = v.strip()
            if v and v not in out and v not in exclude:
                out.append(v)
    return out


def slugify(name: str) -> str:
    """Lowercase ASCII slug: non-alphanumerics become '-', collapsed, trimmed.
    Same result as the Rust `derive_id` for Latin-script names."""
    s = ascii_fold(name).lower()
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    return s or "x"


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


FIELD_ORDER = ["id", "name", "type", "kind", "aliases", "demonyms", "capital", "iso",
               "country", "role", "prior", "match_alone"]


def ordered(row):
    out = {k: row[k] for k in FIELD_ORDER if k in row}
    for k in row:
        if k not in out:
            out[k] = row[k]
    return out


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(ordered(r), ensure_ascii=False) + "\n")


class IdAllocator:
    """Hands out `kb:<slug>` ids, unique across the whole KB. Callers pass
    disambiguating suffixes in order of preference; the first free one wins."""

    def __init__(self):
        self.taken = set()

    def reserve(self, ident):
        if ident in self.taken:
            raise ValueError(f"id {ident} reserved twice")
        self.taken.add(ident)

    def new(self, name, suffixes=(), force_suffix=False):
        base = "kb:" + slugify(name)
        cands = [base] + [base + "-" + slugify(s) for s in suffixes if s]
        if force_suffix and len(cands) > 1:
            cands = cands[1:]
        for c in cands:
            if c not in self.taken:
                self.taken.add(c)
                return c
        n = 2
        while f"{cands[-1]}-{n}" in self.taken:
            n += 1
        c = f"{cands[-1]}-{n}"
        self.taken.add(c)
        return c


def round_prior(x):
    return round(min(1.0, max(0.05, x)), 2)
