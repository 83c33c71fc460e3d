#!/usr/bin/env bash
# Lineage benchmark on the whole real corpus (../shared/data/corpus, 10 files, 133,753 docs):
# a run with six stages and tokenizing (OLMo tokenizer, dropped documents counted), a short
# training run, then `refinery lineage report` and `refinery lineage trace` of a dropped and a
# kept document. Prints wall time and peak RSS of each step and the size of the lineage tables.
#
# With OLD_BIN=path/to/refinery (a build from before the lineage tables), the same run without
# tokenizing is timed with both binaries, alternately, twice each: the cost of writing
# `documents` and `decisions`.
#
# Usage: [PROFILE=release|dev] [OLD_BIN=...] bench/lineage.sh
set -euo pipefail
. "$(dirname "$0")/setup.sh"

stages='[[stages]]
type = "normalize"

[[stages]]
type = "length"
min_words = 50

[[stages]]
type = "exact_dedup"

[[stages]]
type = "minhash_dedup"

[[stages]]
type = "gopher_quality"

[[stages]]
type = "pii"
'
write_config() { # $1: config path, $2: output folder, $3: extra sections
  printf '[[sources]]\nname = "corpus"\npaths = ["%s/corpus/*.jsonl.zst"]\n\n%s\n[output]\npath = "%s"\n\n%s' \
    "$data" "$stages" "$2" "$3" > "$1"
}
timed() { # $1: label; the rest: command
  local label="$1"; shift
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" > "$work/stdout"
  read -r wall user sys rss_kb < "$work/time"
  printf '%-28s %8.2f %8.2f %10.0f\n' "$label" "$wall" "$(echo "$user + $sys" | bc)" "$((rss_kb / 1024))"
}

echo "binary: $bin (profile $profile)"
printf '%-28s %8s %8s %10s\n' step wall_s cpu_s peak_RSS_MiB
if [ -n "${OLD_BIN:-}" ]; then
  write_config "$work/plain.toml" "$work/plain" ""
  for round in 1 2; do
    for b in "$OLD_BIN" "$bin"; do
      rm -rf "$work/plain"
      name=$([ "$b" = "$bin" ] && echo "run (with lineage)" || echo "run (before lineage)")
      timed "$name #$round" "$b" run --quiet "$work/plain.toml"
    done
  done
fi

write_config "$work/run.toml" "$work/out" "[tokenize]
root = \"$work/tokens\"
tokenizer = \"$data/tokenizers/gpt-neox-olmo.json\"
"
timed "run + tokenize" "$bin" run --quiet "$work/run.toml"
cat > "$work/train.toml" <<TOML
[data]
root = "$work/tokens"
seq_len = 64
[model]
layers = 1
heads = 2
width = 32
context = 64
[train]
steps = 20
batch_size = 4
eval_every = 10
eval_windows = 2
checkpoint_every = 10
out = "$work/train"
device = "cpu"
TOML
timed "train (20 steps, tiny)" "$bin" train --quiet "$work/train.toml"
timed "lineage report" "$bin" lineage report "$work/train" --html "$work/r.html" --json "$work/r.json" --openlineage "$work/ol.jsonl"
dropped=$("$bin" query --format csv --dir "$work/out" "SELECT id FROM rejects WHERE stage = 'gopher_quality' ORDER BY id LIMIT 1" | sed -n 2p)
kept=$("$bin" query --format csv --dir "$work/out" "SELECT id FROM pii ORDER BY id LIMIT 1" | sed -n 2p)
timed "lineage trace (dropped)" "$bin" lineage trace "$dropped" --from "$work/train"
timed "lineage trace (kept)" "$bin" lineage trace "$kept" --from "$work/train"
grep -E "Tokens:|Checkpoint" "$work/stdout" || true
echo
python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
def size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
version = open(os.path.join(work, "tokens/latest")).read().strip()
for name, path in [("documents", "out/documents"), ("decisions", "out/decisions"), ("runs", "out/runs"),
                   ("dropped_tokens", f"tokens/versions/{version}/dropped_tokens.parquet"),
                   ("training+losses", "train/lineage"), ("whole run output", "out")]:
    print(f"{name:<18} {size(os.path.join(work, path)) / 1e6:10.2f} MB")
r = json.load(open(os.path.join(work, "r.json")))
stages = next(s for s in r["sections"] if s["id"] == "stages")["rows"]
print("funnel:", ", ".join(f'{s["stage"]} {s["documents_in"]}->{s["kept"]} docs, {s["tokens_in"]}->{s["tokens_out"]} tokens' for s in stages))
print("checks:", ", ".join(f'{c["id"]}={"ok" if c["holds"] else "BROKEN"}' for c in r["checks"] if c["available"]))
print(f'report: {size(os.path.join(work, "r.html")) / 1e3:.0f} kB HTML, {size(os.path.join(work, "r.json")) / 1e3:.0f} kB JSON')
PY
