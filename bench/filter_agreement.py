"""Agreement and speed of Refinery's quality filters against datatrove's (see bench/filters.sh).

Usage: filter_agreement.py WORK DT
  WORK: bench/filters.sh's folder: out-<name>/ (run outputs) and time-<name> (GNU time:
        wall, user, sys seconds, peak RSS KiB) for ingest, each filter and chain.
  DT:   datatrove_ref.py filters output: f.json and f/filter_decisions.parquet.
"""

import glob
import json
import os
import sys
from collections import Counter

import pyarrow.parquet as pq

FILTERS = {  # refinery stage -> datatrove filter name
    "gopher_repetition": "gopher_repetition",
    "gopher_quality": "gopher_quality",
    "c4": "c4_quality",
    "fineweb": "fineweb_quality",
    "chain": "chain",
}


def original_ids(paths, with_rule=False):
    """Corpus ids (the record's `id` field, kept in `meta`) of the documents in some parts."""
    out = {}
    for p in paths:
        cols = ["meta", "rule"] if with_rule else ["meta"]
        t = pq.read_table(p, columns=cols).to_pydict()
        for i, meta in enumerate(t["meta"]):
            out[json.loads(meta)["id"]] = t["rule"][i] if with_rule else None
    return out


def refinery_decisions(work, name, last_stage):
    out = os.path.join(work, f"out-{name}")
    kept = original_ids(glob.glob(os.path.join(out, last_stage, "*.parquet")))
    dropped = original_ids(glob.glob(os.path.join(out, "rejects", "*.parquet")), with_rule=True)
    return kept, dropped


def cpu_seconds(work, name):
    wall, user, sys_, rss = open(os.path.join(work, f"time-{name}")).read().split()
    return float(user) + float(sys_), float(wall), int(rss) // 1024


def main():
    work, dt = sys.argv[1], sys.argv[2]
    summary = json.load(open(os.path.join(dt, "f.json")))
    table = pq.read_table(os.path.join(dt, "f", "filter_decisions.parquet")).to_pydict()
    theirs = {}
    for i, f in enumerate(table["filter"]):
        theirs.setdefault(f, {})[table["id"][i]] = (table["keep"][i], table["reason"][i])
    nbytes, ndocs = summary["bytes"], summary["docs"]
    # Refinery reads the whole corpus: its sizes come from the ingest-only run's output.
    corpus = pq.read_table(os.path.join(work, "out-ingest", "ingest"), columns=["text"])
    all_docs = corpus.num_rows
    all_bytes = sum(len(t.encode()) for t in corpus.column("text").to_pylist())
    ingest_cpu, _, _ = cpu_seconds(work, "ingest")

    print(f"datatrove's documents: {ndocs} ({nbytes / 1e6:.1f} MB of text), 1 in "
          f"{summary.get('subset_every', 1)} of the corpus")
    print("\n| filter | agree | on datatrove-kept | on datatrove-dropped | kept (dt / ours) |")
    print("|---|---:|---:|---:|---:|")
    disagreements = {}
    for name, dt_name in FILTERS.items():
        last = "fineweb" if name == "chain" else name
        kept, dropped = refinery_decisions(work, name, last)
        dec = theirs[dt_name]
        same = same_kept = n_kept = same_dropped = n_dropped = 0
        classes = Counter()
        for doc_id, (keep, reason) in dec.items():
            if doc_id not in kept and doc_id not in dropped:
                continue  # not in this sample
            ours = doc_id in kept
            if keep:
                n_kept += 1
                same_kept += ours
            else:
                n_dropped += 1
                same_dropped += not ours
            if ours == bool(keep):
                same += 1
            else:
                classes[(reason or "kept", dropped.get(doc_id) or "kept")] += 1
        n = n_kept + n_dropped
        ours_kept = sum(1 for d in dec if d in kept)
        print(f"| {name} | {same / n:.4f} | {same_kept / max(n_kept, 1):.4f} ({n_kept}) "
              f"| {same_dropped / max(n_dropped, 1):.4f} ({n_dropped}) | {n_kept} / {ours_kept} |")
        disagreements[name] = classes

    print("\nDisagreements by (datatrove reason, refinery rule), most frequent first:")
    for name, classes in disagreements.items():
        top = ", ".join(f"{a} / {b}: {c}" for (a, b), c in classes.most_common(8)) or "none"
        print(f"- {name}: {top}")

    print("\nThroughput on one core (MB = 10^6 bytes of text):")
    print("| filter | datatrove MB/s | refinery end-to-end MB/s | refinery filter-only MB/s | "
          "ratio (filter-only) | refinery docs/s (filter-only) | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, dt_name in FILTERS.items():
        d = summary["filters"][dt_name]
        dt_mbs = d.get("MB_per_s")
        cpu, wall, rss = cpu_seconds(work, name)
        net = max(cpu - ingest_cpu, 1e-9)
        ours = all_bytes / 1e6 / net
        print(f"| {name} | {dt_mbs} | {all_bytes / 1e6 / cpu:.1f} | {ours:.1f} | "
              f"{ours / dt_mbs:.0f}x | {all_docs / net:.0f} | {rss} |")
    cpu, wall, rss = cpu_seconds(work, "ingest")
    print(f"| ingest only | | {all_bytes / 1e6 / cpu:.1f} | | | | {rss} |")
    print("\ndatatrove: filters timed over documents in memory; its chain includes reading."
          " refinery end-to-end includes reading, decompressing, parsing and writing Parquet;"
          " filter-only subtracts the ingest-only run's CPU time.")


if __name__ == "__main__":
    main()
