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
# its lineage tables. A last row times the zstd CLI alone decompressing the input and
# recompressing it at level 1 (the compression Refinery writes): no parsing, hashing or Parquet,
# so it bounds what any JSONL.zst -> zstd pipeline can reach here.
#
# Usage: [PROFILE=release|dev] bench/ingest.sh [COPIES]   (default: release)
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

# Runs a command under /usr/bin/time and prints its row: NAME OUTPUT_DIR COMMAND... (an empty
# OUTPUT_DIR leaves the output column blank).
row() {
  local name="$1" out="$2"
  shift 2
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" > /dev/null
  read -r wall user sys rss_kb < "$work/time"
  local out_bytes=0
  [ -n "$out" ] && out_bytes=$(du -sb "$out" | cut -f1)
  python3 -c "
b, d, w, c, r, o = $bytes, $docs, $wall, $user + $sys, $rss_kb, $out_bytes
print(f'{\"$name\":<16} {w:8.2f} {c:8.2f} {b / w / 1e6:8.1f} {b / c / 1e6:14.1f} {d / w:10.0f} {r / 1024:12.0f} {format(o / 1e6, \"8.0f\") if o else \"\"}')"
}

echo "binary: $bin (profile $profile)"
echo "input: $copies copies of the corpus, $((bytes / 1000000)) MB of JSONL, $docs documents"
printf '%-16s %8s %8s %8s %14s %10s %12s %8s\n' \
  threads,codec wall_s cpu_s MB/s MB/cpu_s docs/s peak_RSS_MiB out_MB
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
row zstd-cli "" bash -c 'zstd -qdc "$@" | zstd -q -1 -c' _ "${files[@]}"
