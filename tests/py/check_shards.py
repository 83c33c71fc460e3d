"""Checks one token dataset version with the reference Python stack.

- numpy reads every shard the way llm.c-style loaders do: the 256 x int32 header, then
  `numpy.memmap(offset=1024)` of uint16 (magic 20240520, version 1) or uint32 (20240801, 7);
- every document's tokens in the shards equal `tokenizers.Tokenizer.encode(text,
  add_special_tokens=False).ids` of its text, followed by the end-of-document id;
- the document indexes (read with pyarrow) cover each stream exactly.

Usage: check_shards.py VERSION_DIR DOCUMENTS_DIR TOKENIZER_JSON
Prints a JSON summary; exits 1 on any mismatch.
"""

import glob
import json
import os
import sys

import numpy as np
import pyarrow.parquet as pq
from tokenizers import Tokenizer

FORMATS = {2: (np.uint16, 20240520, 1), 4: (np.uint32, 20240801, 7)}


def main():
    version_dir, docs_dir, tokenizer_path = sys.argv[1:4]
    with open(os.path.join(version_dir, "manifest.json")) as f:
        manifest = json.load(f)
    tokenizer = Tokenizer.from_file(tokenizer_path)
    eod = manifest["tokenizer"]["eod_id"]
    dtype, magic, version = FORMATS[manifest["token_bytes"]]

    texts = {}
    for part in sorted(glob.glob(os.path.join(docs_dir, "*.parquet"))):
        table = pq.read_table(part, columns=["id", "text"])
        texts.update(zip(table.column("id").to_pylist(), table.column("text").to_pylist()))

    # Each (split, source) stream: its tokens and its documents in order.
    streams = {}
    for shard in manifest["shards"]:
        path = os.path.join(version_dir, shard["path"])
        header = np.fromfile(path, dtype=np.int32, count=256)
        assert (header[0], header[1], header[2]) == (magic, version, shard["tokens"]), (
            path,
            header[:3],
        )
        tokens = np.memmap(path, dtype=dtype, mode="r", offset=1024)
        assert len(tokens) == shard["tokens"], (path, len(tokens))
        index = pq.read_table(os.path.join(version_dir, shard["index"]["path"])).to_pylist()
        stream = streams.setdefault((shard["split"], shard["source"]), {"tokens": [], "docs": []})
        base = sum(len(t) for t in stream["tokens"])
        stream["tokens"].append(np.asarray(tokens))
        for row in index:
            if row["continued"]:
                stream["docs"][-1][2] += row["tokens"]
            else:
                stream["docs"].append([row["id"], base + row["offset"], row["tokens"]])

    documents = mismatches = tokens_checked = 0
    first = None
    for (split, source), stream in sorted(streams.items()):
        tokens = np.concatenate(stream["tokens"])
        ids = [d[0] for d in stream["docs"]]
        encoded = tokenizer.encode_batch([texts[i] for i in ids], add_special_tokens=False)
        covered = 0
        for (doc_id, offset, count), enc in zip(stream["docs"], encoded):
            expected = enc.ids + [eod]
            actual = tokens[offset : offset + count].tolist()
            documents += 1
            tokens_checked += count
            covered += count
            if actual != expected:
                mismatches += 1
                if first is None:
                    at = next(
                        (i for i, (a, b) in enumerate(zip(actual, expected)) if a != b),
                        min(len(actual), len(expected)),
                    )
                    first = {
                        "split": split,
                        "source": source,
                        "id": doc_id,
                        "position": at,
                        "refinery": actual[max(0, at - 3) : at + 5],
                        "python": expected[max(0, at - 3) : at + 5],
                    }
        if covered != len(tokens):
            mismatches += 1
            first = first or {"stream": f"{split}/{source}", "indexed": covered, "tokens": len(tokens)}

    print(
        json.dumps(
            {
                "documents": documents,
                "tokens": tokens_checked,
                "shards": len(manifest["shards"]),
                "mismatches": mismatches,
                "first_mismatch": first,
            }
        )
    )
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
