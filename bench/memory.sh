#!/usr/bin/env bash
# Peak memory of a whole run: the whole corpus through bench/partitioned.sh's 11 stages, then
# tokenized with OLMo's tokenizer, from scratch each time. Alternates refinery's default (glibc's
# malloc arenas capped at twice the core count, see `pipeline::arenas`) with glibc's own default
# (`MALLOC_ARENA_MAX` = 8 × cores), ROUNDS times; prints wall, CPU seconds and peak RSS of each
# run, then each setting's medians. The token shards are the same either way (checked).
#
# Usage: [PROFILE=release|dev] [ROUNDS=3] bench/memory.sh
set -euo pipefail
. "$(dirname "$0")/setup.sh"
rounds="${ROUNDS:-3}"

write_curation_config "$work/run.toml" "$work/out"
append_tokenize_section "$work/run.toml" "$work/tokens"

# $1: label; the rest: `env` assignments. Appends "label wall cpu rss_mib" to $work/runs.
measure() {
  local label="$1"; shift
  rm -rf "$work/out" "$work/tokens"
  env "$@" /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$bin" run --quiet "$work/run.toml" > /dev/null
  read -r wall user sys rss_kb < "$work/time"
  echo "$label $wall $(echo "$user + $sys" | bc) $((rss_kb / 1024))" | tee -a "$work/runs"
  (cd "$work/tokens" && find . \( -name '*.bin' -o -name latest \) | sort | xargs md5sum) > "$work/sums.$label"
}

echo "binary: $bin (profile $profile), $(nproc) cores, $rounds rounds"
echo "setting wall_s cpu_s peak_RSS_MiB"
for ((r = 0; r < rounds; r++)); do
  measure capped
  measure glibc_default "MALLOC_ARENA_MAX=$((8 * $(nproc)))"
done
cmp -s "$work/sums.capped" "$work/sums.glibc_default" || { echo "token shards DIFFER"; exit 1; }
echo "== medians (token shards identical)"
python3 - "$work/runs" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, *values = line.split()
    runs[label].append([float(v) for v in values])
for label, rows in runs.items():
    wall, cpu, rss = (statistics.median(col) for col in zip(*rows))
    print(f"{label}: wall {wall:.2f} s, CPU {cpu:.2f} s, peak RSS {rss:.0f} MiB "
          f"(range {min(r[2] for r in rows):.0f}-{max(r[2] for r in rows):.0f})")
PY
