#!/usr/bin/env bash
# Partitioned run on the whole real corpus (../shared/data/corpus, 10 files, 133,753 docs)
# through 11 stages, two of them dedup, then the tokenize step (OLMo's tokenizer, dropped
# documents counted): one whole run, then the same config as rounds of TASKS tasks at once
# (1 thread each) with `--prepare` between them and a finishing run. Prints the wall time of each
# step and checks that both output folders are byte-identical (`runs/` aside), and so are both
# token versions (manifests aside: they name their run and time). On one machine the tasks share
# its cores; the rounds show the cost of the extra steps, not the gain of more machines.
# The tasks of the last round encode their parts for the tokenize step; AHEAD=0 removes those
# encodings before the finishing run, which then encodes every part itself.
#
# Usage: [PROFILE=release|dev] [TASKS=2] [AHEAD=1|0] bench/partitioned.sh
set -euo pipefail
. "$(dirname "$0")/setup.sh"
tasks="${TASKS:-2}"

timed() { # $1: label; the rest: command
  local label="$1"; shift
  local start end
  start=$(date +%s.%N)
  "$@" > /dev/null
  end=$(date +%s.%N)
  printf '%-44s %8.2f\n' "$label" "$(echo "$end - $start" | bc)"
}
round() {
  for ((i = 0; i < tasks; i++)); do
    "$bin" run --quiet --threads 1 --task "$i/$tasks" "$work/split.toml" > "$work/task.$i.log" &
  done
  wait
}

for run in whole split; do
  write_curation_config "$work/$run.toml" "$work/$run"
  append_tokenize_section "$work/$run.toml" "$work/$run-tokens" "count_dropped_tokens = true"
done
echo "binary: $bin (profile $profile), $tasks tasks"
printf '%-44s %8s\n' step wall_s
timed "whole run (threads = cores)" "$bin" run --quiet "$work/whole.toml"
timed "round 1: tasks up to exact_dedup" round
timed "--prepare exact_dedup" "$bin" run --quiet --prepare "$work/split.toml"
timed "round 2: tasks up to minhash_dedup" round
timed "--prepare minhash_dedup" "$bin" run --quiet --prepare "$work/split.toml"
timed "round 3: tasks to the last stage, encoding" round
for ((i = 0; i < tasks; i++)); do
  printf '  task %d: %s\n' "$i" "$(grep -h '^Encoded' "$work/task.$i.log")"
done
[ "${AHEAD:-1}" = 0 ] && rm -r "$work/split/_tokens"
timed "finishing run (tokenize step included)" "$bin" run --quiet "$work/split.toml"
sums() { (cd "$1" && find . -type f ! -path './runs/*' ! -name manifest.json | sort | xargs md5sum); }
for pair in "whole split outputs" "whole-tokens split-tokens token_versions"; do
  read -r a b what <<< "$pair"
  if diff <(sums "$work/$a") <(sums "$work/$b") > /dev/null; then
    echo "$what: byte-identical ($(sums "$work/$a" | wc -l) files)"
  else
    echo "$what: DIFFER" && exit 1
  fi
done
