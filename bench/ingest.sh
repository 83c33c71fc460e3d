#!/usr/bin/env bash
# Ingest benchmark: JSONL.zst -> normalize -> Parquet (zstd) over the real corpus in
# ../shared/data/corpus, replicated as COPIES sources (default 5: about 1 GB of JSONL).
# Reports, for 1 and 2 worker threads in the same run: wall time, MB/s of uncompressed JSONL,
# MB per CPU-second (user+sys: the honest per-core figure, since reading, stages and writing
# overlap on separate threads), documents/s, peak RSS and the size of the written dataset. Rows
# `1,lz4_raw` and `1,uncompressed` set `[output] compression` (zstd level 1 is the default): what
# the output codec costs. A last row times the zstd CLI alone decompressing the input and
# recompressing it at level 1 (the compression Refinery writes): no parsing, hashing or Parquet,
# so it bounds what any JSONL.zst -> zstd pipeline can reach here.
#
# Usage: [PROFILE=release|dev] bench/ingest.sh [COPIES]   (default: release)
set -euo pipefail
copies="${1:-5}"
. "$(dirname "$0")/setup.sh"

config="$work/ingest.toml"
: > "$config"
for c in $(seq 1 "$copies"); do
  printf '[[sources]]\nname = "copy%s"\npaths = ["%s/corpus/*.jsonl.zst"]\n\n' "$c" "$data" >> "$config"
done
printf '[[stages]]\ntype = "normalize"\n\n[output]\npath = "%s/out"\n' "$work" >> "$config"

read -r bytes docs < <(python3 -c "
import json; c = json.load(open('$data/MANIFEST.json'))['corpus'].values()
print(sum(v['uncompressed_bytes'] for v in c) * $copies, sum(v['records'] for v in c) * $copies)")

echo "binary: $bin (profile $profile)"
echo "input: $copies copies of the corpus, $((bytes / 1000000)) MB of JSONL, $docs documents"
printf '%-16s %8s %8s %8s %14s %10s %12s %8s\n' \
  threads,codec wall_s cpu_s MB/s MB/cpu_s docs/s peak_RSS_MiB out_MB
for row in "1 zstd" "2 zstd" "1 lz4_raw" "1 uncompressed"; do
  read -r threads codec <<< "$row"
  { cat "$config"; printf 'compression = "%s"\n' "$codec"; } > "$work/run.toml"
  rm -rf "$work/out"
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
    "$bin" run --quiet --threads "$threads" "$work/run.toml" > /dev/null
  read -r wall user sys rss_kb < "$work/time"
  out_bytes=$(du -sb "$work/out/normalize" | cut -f1)
  python3 -c "
b, d, w, c, r, o = $bytes, $docs, $wall, $user + $sys, $rss_kb, $out_bytes
print(f'{\"$threads,$codec\":<16} {w:8.2f} {c:8.2f} {b / w / 1e6:8.1f} {b / c / 1e6:14.1f} {d / w:10.0f} {r / 1024:12.0f} {o / 1e6:8.0f}')"
done

zstd_files=()
for c in $(seq 1 "$copies"); do zstd_files+=("$data"/corpus/*.jsonl.zst); done
/usr/bin/time -f '%e %U %S %M' -o "$work/time" \
  bash -c 'zstd -qdc "$@" | zstd -q -1 -c > /dev/null' _ "${zstd_files[@]}"
read -r wall user sys rss_kb < "$work/time"
python3 -c "
b, d, w, c, r = $bytes, $docs, $wall, $user + $sys, $rss_kb
print(f'{\"zstd-cli\":<16} {w:8.2f} {c:8.2f} {b / w / 1e6:8.1f} {b / c / 1e6:14.1f} {d / w:10.0f} {r / 1024:12.0f}')"
