#!/usr/bin/env bash
# Ingest benchmark: JSONL.zst -> normalize -> Parquet (zstd) over the real corpus in
# ../shared/data/corpus, replicated as COPIES sources (default 5: about 1 GB of JSONL).
# Reports, for 1 and 2 worker threads in the same run: wall time, MB/s of uncompressed JSONL,
# MB per CPU-second (user+sys: the honest per-core figure, since reading, stages and writing
# overlap on separate threads), documents/s, peak RSS and the size of the written dataset. Rows
# `1,lz4_raw` and `1,uncompressed` set `[output] compression` (zstd level 1 is the default): what
# the output codec costs. Rows `floor` and `floor+normalize` run Refinery's own blocks (reader,
# parser, batch builder, normalize, Parquet writer) in one plain loop on one thread
# (pipeline/examples/ingest_floor.rs): what the work costs without the executor, its threads and
# its lineage tables. Row `zstd-cli`, first in each round, times the zstd CLI alone decompressing
# the input and recompressing it at level 1 (the compression Refinery writes): no parsing,
# hashing or Parquet, so it bounds what any JSONL.zst -> zstd pipeline can reach here. Every
# row's `of_bound` column divides its MB per CPU-second by that bound's in the same round, so
# that rounds in a slow and a fast hour compare. ROUNDS=N repeats the whole set N times,
# alternating, and ends with each row's median and range.
#
# Usage: [PROFILE=release|dev] [ROUNDS=N] bench/ingest.sh [COPIES]   (default: release, 1 round)
set -euo pipefail
copies="${1:-5}"
. "$(dirname "$0")/setup.sh"
cargo build --profile "$profile" --locked -p pipeline --example ingest_floor >&2
floor="$(dirname "$bin")/examples/ingest_floor"

config="$work/ingest.toml"
: > "$config"
for c in $(seq 1 "$copies"); do
  printf '[[sources]]\nname = "copy%s"\npaths = ["%s/corpus/*.jsonl.zst"]\n\n' "$c" "$data" >> "$config"
done
printf '[[stages]]\ntype = "normalize"\n\n[output]\npath = "%s/out"\n' "$work" >> "$config"
files=()
for c in $(seq 1 "$copies"); do files+=("$data"/corpus/*.jsonl.zst); done

read -r bytes docs < <(python3 -c "
import json; c = json.load(open('$data/MANIFEST.json'))['corpus'].values()
print(sum(v['uncompressed_bytes'] for v in c) * $copies, sum(v['records'] for v in c) * $copies)")

rounds="${ROUNDS:-1}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer, not '$rounds'" >&2; exit 2; }
results="$work/results"
: > "$results"

# Runs a command under /usr/bin/time and prints its row: NAME OUTPUT_DIR COMMAND... (an empty
# OUTPUT_DIR leaves the output column blank). `of_bound` is the row's MB per CPU-second over the
# zstd CLI's in the same round (`bound`, set by the round's first row). Each row is also appended
# to $results for the summary.
row() {
  local name="$1" out="$2"
  shift 2
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" > /dev/null
  read -r wall user sys rss_kb < "$work/time"
  local out_bytes=0
  [ -n "$out" ] && out_bytes=$(du -sb "$out" | cut -f1)
  python3 - "$name" "$bytes" "$docs" "$wall" "$user" "$sys" "$rss_kb" "$out_bytes" "${bound:-0}" \
    "$results" <<'PY'
import sys
name, results = sys.argv[1], sys.argv[10]
b, d, w, u, s, r, o, bound = map(float, sys.argv[2:10])
c = u + s
per_cpu = b / c / 1e6
of_bound = per_cpu / bound if bound else 1.0
out = format(o / 1e6, "8.0f") if o else " " * 8
print(f"{name:<16} {w:8.2f} {c:8.2f} {b / w / 1e6:8.1f} {per_cpu:10.1f} {of_bound:8.2f} "
      f"{d / w:10.0f} {r / 1024:12.0f} {out}")
with open(results, "a") as f:
    print(name, per_cpu, of_bound, file=f)
PY
}

echo "binary: $bin (profile $profile)"
echo "input: $copies copies of the corpus, $((bytes / 1000000)) MB of JSONL, $docs documents"
for round in $(seq 1 "$rounds"); do
  [ "$rounds" -gt 1 ] && echo "round $round of $rounds"
  printf '%-16s %8s %8s %8s %10s %8s %10s %12s %8s\n' \
    threads,codec wall_s cpu_s MB/s MB/cpu_s of_bound docs/s peak_RSS_MiB out_MB
  bound=""
  row zstd-cli "" bash -c 'zstd -qdc "$@" | zstd -q -1 -c' _ "${files[@]}"
  bound=$(tail -n 1 "$results" | cut -d' ' -f2)
  for run in "1 zstd" "2 zstd" "1 lz4_raw" "1 uncompressed"; do
    read -r threads codec <<< "$run"
    { cat "$config"; printf 'compression = "%s"\n' "$codec"; } > "$work/run.toml"
    rm -rf "$work/out"
    row "$threads,$codec" "$work/out/normalize" "$bin" run --quiet --threads "$threads" "$work/run.toml"
  done
  rm -rf "$work/floor"
  row floor "$work/floor" "$floor" "$work/floor" "${files[@]}"
  rm -rf "$work/floor"
  row floor+normalize "$work/floor" "$floor" "$work/floor" --normalize "${files[@]}"
done

if [ "$rounds" -gt 1 ]; then
  echo "over $rounds rounds: MB per CPU-second and of_bound, median (lowest-highest)"
  python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, per_cpu, of_bound = line.split()
    rows.setdefault(name, []).append((float(per_cpu), float(of_bound)))
for name, values in rows.items():
    cells = []
    for k in (0, 1):
        v = [x[k] for x in values]
        cells.append(f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})")
    print(f"{name:<16} {cells[0]:<26} {cells[1]}")
PY
fi
