#!/usr/bin/env bash
# Quality filters against datatrove on the real corpus in ../shared/data/corpus, one core each.
#
# Refinery runs `refinery run --threads 1` once with no stage (ingest only: read, decompress,
# parse, write Parquet), once per filter (gopher_repetition, gopher_quality, c4, fineweb) and
# once with the four chained in FineWeb's order. Datatrove runs ../shared/tools/datatrove_ref.py
# filters (0.10.1, installed into ../.venv-datatrove when missing): each filter over documents in
# memory, then its chain with reading. bench/filter_agreement.py then reports, per filter, the
# fraction of documents with the same keep/drop decision (overall, on datatrove's kept and on
# its dropped documents), the disagreements by (datatrove reason, refinery rule), and the
# throughputs: Refinery end to end, and per filter net of the ingest-only run.
#
# Usage: [PROFILE=release|dev] [EVERY=K] [DT_DIR=folder of an earlier datatrove_ref.py filters run]
#        bench/filters.sh
# Datatrove takes over an hour on the whole corpus. EVERY=K runs it on its deterministic 1-in-K
# sample (agreement is then reported on that sample; Refinery still reads the whole corpus).
# DT_DIR reuses an earlier run's decisions and timings (its f.json and
# f/filter_decisions.parquet), for checking agreement quickly.
set -euo pipefail
. "$(dirname "$0")/setup.sh"
ensure_datatrove

run_refinery() { # name, then the stage tables of the config
  local name="$1"; shift
  {
    printf '[[sources]]\nname = "corpus"\npaths = ["%s/corpus/*.jsonl.zst"]\n\n' "$data"
    for stage in "$@"; do printf '[[stages]]\ntype = "%s"\n\n' "$stage"; done
    printf '[output]\npath = "%s/out-%s"\n' "$work" "$name"
  } > "$work/$name.toml"
  echo "refinery: $name" >&2
  RAYON_NUM_THREADS=1 /usr/bin/time -f '%e %U %S %M' -o "$work/time-$name" \
    "$bin" --quiet run --threads 1 "$work/$name.toml"
}

run_refinery ingest
for f in gopher_repetition gopher_quality c4 fineweb; do run_refinery "$f" "$f"; done
run_refinery chain gopher_repetition gopher_quality c4 fineweb

dt="${DT_DIR:-}"
if [ -z "$dt" ]; then
  dt="$work/dt"
  mkdir -p "$dt"
  echo "datatrove: $tools/datatrove_ref.py filters, one core (about 45 minutes)" >&2
  TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1 "$venv/bin/python" "$tools/datatrove_ref.py" \
    filters "$data"/corpus/*.jsonl.zst --every "${EVERY:-1}" --out-dir "$dt/f" --out "$dt/f.json" \
    > "$dt/log" 2>&1
else
  echo "datatrove: reusing $dt" >&2
fi

"$venv/bin/python" bench/filter_agreement.py "$work" "$dt"
