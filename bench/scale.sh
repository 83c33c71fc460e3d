#!/usr/bin/env bash
# Memory against corpus size: writes COPIES remixed copies of the corpus (bench/remix.py), then for
# 1, COPIES/2 and COPIES of them runs bench/partitioned.sh's 11 stages and the tokenize step (OLMo's
# tokenizer), then `stats`, a `query` and the lineage report of the version (at the default
# `--memory-budget` and at 32MiB); prints wall, CPU seconds and peak RSS of each command. What grows with the copies is state that grows with the
# corpus (the dedup stages' per-document arrays, see README "Dedup").
#
# Usage: [PROFILE=release|dev] [COPIES=8] bench/scale.sh
set -euo pipefail
. "$(dirname "$0")/setup.sh"
copies="${COPIES:-8}"
python3 bench/remix.py "$data/corpus" "$copies" "$work/corpus"

# $1: label; the rest: the command. Prints "copies label wall cpu rss_mib".
measure() {
  local label="$1"; shift
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" > /dev/null
  read -r wall user sys rss_kb < <(tail -1 "$work/time")
  echo "$k $label $wall $(echo "$user + $sys" | bc) $((rss_kb / 1024))"
}

echo "binary: $bin (profile $profile), $(nproc) cores"
echo "copies command wall_s cpu_s peak_RSS_MiB"
for k in $(printf '%s\n' 1 $((copies / 2)) "$copies" | sort -nu | awk '$1 > 0'); do
  rm -rf "$work/out" "$work/tokens"
  write_curation_config "$work/run.toml" "$work/out"
  globs=$(for ((i = 0; i < k; i++)); do printf '"%s/corpus/*-%02d.jsonl.zst",' "$work" "$i"; done)
  sed -i "s|^paths = .*|paths = [${globs%,}]|" "$work/run.toml"
  append_tokenize_section "$work/run.toml" "$work/tokens"
  measure run "$bin" run --quiet "$work/run.toml"
  measure stats "$bin" stats "$work/out"
  measure query "$bin" query --dir "$work/out" "SELECT stage, count(*) FROM decisions GROUP BY stage"
  measure report "$bin" lineage report "$work/tokens" --json "$work/report.json"
  measure report-32MiB "$bin" lineage report "$work/tokens" --json "$work/report.json" --memory-budget 32MiB
done
