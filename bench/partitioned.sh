#!/usr/bin/env bash
# Partitioned run on the whole real corpus (../shared/data/corpus, 10 files, 133,753 docs)
# through 11 stages, two of them dedup: one whole run, then the same config as rounds of TASKS
# tasks at once (1 thread each) with `--prepare` between them and a finishing run. Prints the
# wall time of each step and checks that both output folders are byte-identical (`runs/` aside).
# On one machine the tasks share its cores; the rounds show the cost of the extra steps, not
# the gain of more machines.
#
# Usage: [PROFILE=release|dev] [TASKS=2] bench/partitioned.sh
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
    "$bin" run --quiet --threads 1 --task "$i/$tasks" "$work/split.toml" > /dev/null &
  done
  wait
}

write_curation_config "$work/whole.toml" "$work/whole"
write_curation_config "$work/split.toml" "$work/split"
echo "binary: $bin (profile $profile), $tasks tasks"
printf '%-44s %8s\n' step wall_s
timed "whole run (threads = cores)" "$bin" run --quiet "$work/whole.toml"
timed "round 1: tasks up to exact_dedup" round
timed "--prepare exact_dedup" "$bin" run --quiet --prepare "$work/split.toml"
timed "round 2: tasks up to minhash_dedup" round
timed "--prepare minhash_dedup" "$bin" run --quiet --prepare "$work/split.toml"
timed "round 3: tasks to the last stage" round
timed "finishing run" "$bin" run --quiet "$work/split.toml"
sums() { (cd "$1" && find . -type f ! -path './runs/*' | sort | xargs md5sum); }
if diff <(sums "$work/whole") <(sums "$work/split") > /dev/null; then
  echo "outputs: byte-identical ($(sums "$work/whole" | wc -l) files)"
else
  echo "outputs: DIFFER" && exit 1
fi
