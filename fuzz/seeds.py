#!/usr/bin/env python3
"""Writes the fuzz target's seed corpus: real articles (examples/, and PerSenT dev when ../shared/data is
present), each as 4 bytes of perturbation mask and seed, then "title\\nbody". Run from the repository root:
    python3 fuzz/seeds.py fuzz/corpus/real_text
"""
import csv
import json
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/real_text"
os.makedirs(out, exist_ok=True)
texts = []
with open("examples/articles.jsonl", encoding="utf-8") as f:
    for line in f:
        if line.strip():
            a = json.loads(line)
            texts.append((a.get("title") or "", a["body"]))
persent = "../shared/data/persent/dev.csv"
if os.path.exists(persent):
    csv.field_size_limit(1 << 30)
    with open(persent, encoding="utf-8", newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if i >= 60:
                break
            texts.append((row["TITLE"], row["DOCUMENT"]))
for i, (title, body) in enumerate(texts):
    # Every perturbation once across the seeds, and each seed also as it is (mask 0).
    mask = (i * 97) % 512 if i % 3 else 0
    data = struct.pack("<HH", mask, i) + f"{title}\n{body}".encode("utf-8")
    with open(os.path.join(out, f"seed-{i:03}"), "wb") as f:
        f.write(data)
print(f"{len(texts)} seeds in {out}")
