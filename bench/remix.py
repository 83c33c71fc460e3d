"""Writes COPIES remixed copies of the corpus, for measuring memory against corpus size.

Copy 0 is the corpus itself. In copy k > 0, document i of a source is the first half (by words)
of document i and the second half of document perm_k(i) of the same source (perm_k a seeded
shuffle), so copies are neither exact nor near duplicates of one another, while their text stays
real text that the quality filters judge as they judge the corpus.

Usage: remix.py CORPUS_DIR COPIES OUT_DIR   (writes OUT_DIR/<source>-<kk>.jsonl.zst)
"""
import json
import os
import random
import subprocess
import sys

corpus, copies, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
for name in sorted(os.listdir(corpus)):
    if not name.endswith(".jsonl.zst"):
        continue
    source = name[: -len(".jsonl.zst")]
    raw = subprocess.run(["zstd", "-dc", os.path.join(corpus, name)], capture_output=True, check=True).stdout
    docs = [json.loads(line) for line in raw.splitlines() if line.strip()]
    for k in range(copies):
        perm = list(range(len(docs)))
        random.Random(f"{source}-{k}").shuffle(perm)
        lines = []
        for i, doc in enumerate(docs):
            text = doc["text"]
            if k > 0:
                a, b = text.split(" "), docs[perm[i]]["text"].split(" ")
                text = " ".join(a[: len(a) // 2] + b[len(b) // 2 :])
            lines.append(json.dumps({**doc, "id": f"{doc.get('id', i)}-{k}", "text": text}, ensure_ascii=False))
        path = os.path.join(out, f"{source}-{k:02d}.jsonl.zst")
        data = ("\n".join(lines) + "\n").encode()
        subprocess.run(["zstd", "-q", "-3", "-f", "-o", path], input=data, check=True)
    print(f"{source}: {len(docs)} documents x {copies}", file=sys.stderr)
