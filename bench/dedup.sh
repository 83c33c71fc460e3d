#!/usr/bin/env bash
# MinHash dedup benchmark against datatrove on the real corpus in ../shared/data/corpus, in one
# run on one core each: word 5-grams, 14 bands × 8 rows, no other stage.
#
# Reports, for Refinery: documents/s and MB/s per core for the signature pass (observe) and for
# clustering (prepare: bucket sort, union-find, tables), end-to-end CPU time and peak RSS; for
# datatrove (../shared/tools/datatrove_ref.py, 0.10.1, installed into ../.venv-datatrove when
# missing): the same from its own summary; then the throughput ratio and the Jaccard overlap of
# the two sets of removed document ids. A second Refinery run with another seed gives the
# overlap two MinHash runs that differ only in their random hash functions reach: pairs with
# Jaccard between about 0.5 and 0.8 collide by chance, so no independent implementation can
# agree beyond that. A third Refinery run with `scheme = "datatrove"` (datatrove's shingles and
# hash functions) gets datatrove's candidate pairs: its throughput and overlap close the report.
#
# Usage: [PROFILE=release|dev] bench/dedup.sh
set -euo pipefail
. "$(dirname "$0")/setup.sh"
ensure_datatrove

cat > "$work/dedup.toml" <<TOML
[run]
threads = 1

[[sources]]
name = "corpus"
paths = ["$data/corpus/*.jsonl.zst"]
id_field = "id"

[[stages]]
type = "minhash_dedup"
ngram = 5
bands = 14
rows = 8

[output]
path = "$work/out"
TOML

echo "refinery: $bin (profile $profile), one core" >&2
RAYON_NUM_THREADS=1 /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
  "$bin" --log-format json run "$work/dedup.toml" > "$work/log.jsonl" 2>&1
"$bin" query --format csv --dir "$work/out" \
  "SELECT meta FROM rejects WHERE stage = 'minhash_dedup'" > "$work/removed.csv"
sed -e 's/^rows = 8$/rows = 8\nseed = 2/' -e "s#$work/out#$work/out2#" "$work/dedup.toml" > "$work/seed2.toml"
RAYON_NUM_THREADS=1 "$bin" run --quiet "$work/seed2.toml" > /dev/null
"$bin" query --format csv --dir "$work/out2" \
  "SELECT meta FROM rejects WHERE stage = 'minhash_dedup'" > "$work/removed2.csv"

# The same job with datatrove's shingles and hash functions: same candidate pairs as datatrove.
sed -e 's/^rows = 8$/rows = 8\nscheme = "datatrove"/' -e "s#$work/out#$work/out3#" \
  "$work/dedup.toml" > "$work/dt_scheme.toml"
RAYON_NUM_THREADS=1 /usr/bin/time -f '%e %U %S %M' -o "$work/time3" \
  "$bin" --log-format json run "$work/dt_scheme.toml" > "$work/log3.jsonl" 2>&1
"$bin" query --format csv --dir "$work/out3" \
  "SELECT meta FROM rejects WHERE stage = 'minhash_dedup'" > "$work/removed3.csv"

echo "datatrove: $tools/datatrove_ref.py minhash, one core (several minutes)" >&2
TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 "$venv/bin/python" "$tools/datatrove_ref.py" \
  minhash "$data"/corpus/*.jsonl.zst --out-dir "$work/dt" --out "$work/dt.json" > "$work/dt.log" 2>&1

python3 - "$work" "$data" <<'PY'
import csv, json, sys
work, data = sys.argv[1], sys.argv[2]
corpus = json.load(open(f"{data}/MANIFEST.json"))["corpus"].values()
mb = sum(v["uncompressed_bytes"] for v in corpus) / 1e6
docs = sum(v["records"] for v in corpus)
def measured(run):
    wall, user, sys_, rss = open(f"{work}/time{run}").read().split()
    phase = {}
    for line in open(f"{work}/log{run}.jsonl"):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        f = e.get("fields", {})
        if "observe_s" in f:
            phase = f
    return float(user) + float(sys_), int(rss), phase
cpu, rss, phase = measured("")
cpu3, rss3, phase3 = measured("3")
def removed(name):
    return {json.loads(r["meta"])["id"] for r in csv.DictReader(open(f"{work}/{name}"))}
ours, ours2, ours3 = removed("removed.csv"), removed("removed2.csv"), removed("removed3.csv")
def overlap(a, b):
    return len(a & b) / max(1, len(a | b))
dt = json.load(open(f"{work}/dt.json"))
theirs = {l.strip() for l in open(f"{work}/dt/minhash_removed_ids.txt") if l.strip()}
st = dt["stages"]
dt_cpu = sum(s["cpu_s"] for s in st.values())
dt_sig = st["1_signatures"]["cpu_s"]
dt_cluster = dt_cpu - dt_sig
print(f"corpus: {docs} documents, {mb:.0f} MB")
print(f"{'':28} {'refinery':>12} {'datatrove':>12} {'ratio':>8}")
def row(name, ours_s, theirs_s):
    print(f"{name + ' docs/s per core':28} {docs / ours_s:12.0f} {docs / theirs_s:12.0f} {theirs_s / ours_s:8.1f}")
    print(f"{name + ' MB/s per core':28} {mb / ours_s:12.2f} {mb / theirs_s:12.2f}")
row("signatures", phase["observe_s"], dt_sig)
row("clustering", phase["prepare_s"], dt_cluster)
row("end to end", cpu, dt_cpu)
print(f"{'peak RSS MiB':28} {rss / 1024:12.0f} {dt.get('peak_rss_MB', float('nan')):12}")
print(f"removed: refinery {len(ours)}, datatrove {len(theirs)}, both {len(ours & theirs)}, "
      f"overlap (Jaccard) {overlap(ours, theirs):.3f}")
print(f"refinery seed 1 vs seed 2: {len(ours)} vs {len(ours2)} removed, overlap {overlap(ours, ours2):.3f}")
print(f"scheme = datatrove: signatures {docs / phase3['observe_s']:.0f} docs/s per core "
      f"({dt_sig / phase3['observe_s']:.1f}x datatrove), end to end {docs / cpu3:.0f} docs/s per core "
      f"({dt_cpu / cpu3:.1f}x), peak RSS {rss3 / 1024:.0f} MiB")
print(f"scheme = datatrove: removed {len(ours3)}, both {len(ours3 & theirs)}, "
      f"overlap (Jaccard) {overlap(ours3, theirs):.3f}")
PY
