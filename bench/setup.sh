# Shared set-up of the bench scripts (sourced, not run): builds the `refinery` binary with
# PROFILE (default release) and sets `data` (../shared/data), `tools` (../shared/tools), `bin`,
# `work` (a scratch folder removed on exit) and `venv` (datatrove's, see `ensure_datatrove`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/refinery-target}"
data="$(cd ../shared/data && pwd)"
profile="${PROFILE:-release}"
cargo build --profile "$profile" --locked -p pipeline --bin refinery >&2
bin="$CARGO_TARGET_DIR/$([ "$profile" = dev ] && echo debug || echo "$profile")/refinery"
work="$(mktemp -d /tmp/refinery-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
tools="$(cd ../shared/tools && pwd)"
venv="$(cd .. && pwd)/.venv-datatrove"

# Installs datatrove 0.10.1 (the reference implementation) into $venv when it is missing.
ensure_datatrove() {
  if [ ! -x "$venv/bin/python" ]; then
    echo "installing datatrove 0.10.1 into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q "datatrove[io,processing]==0.10.1" spacy
  fi
}

# Writes a config that runs the whole corpus through 11 stages, two of them dedup, into an output
# folder (bench/partitioned.sh, bench/memory.sh). $1: config path, $2: output folder.
write_curation_config() {
  cat > "$1" <<EOF
[[sources]]
name = "corpus"
paths = ["$data/corpus/*.jsonl.zst"]

[[stages]]
type = "normalize"
[[stages]]
type = "length"
min_words = 20
[[stages]]
type = "exact_dedup"
[[stages]]
type = "minhash_dedup"
[[stages]]
type = "gopher_repetition"
[[stages]]
type = "gopher_quality"
[[stages]]
type = "c4"
[[stages]]
type = "fineweb"
[[stages]]
type = "language"
languages = ["eng"]
[[stages]]
type = "pii"
[[stages]]
type = "decontaminate"
[[stages.benchmarks]]
name = "mmlu"
path = "$data/benchmarks/mmlu_test.jsonl.gz"
fields = ["question"]

[output]
path = "$2"
EOF
}

# Appends a `[tokenize]` section with OLMo's tokenizer to a config. $1: config path, $2: token
# root, $3 (optional): another line of the section.
append_tokenize_section() {
  printf '\n[tokenize]\nroot = "%s"\ntokenizer = "%s/tokenizers/gpt-neox-olmo.json"\n%s\n' \
    "$2" "$data" "${3:-}" >> "$1"
}
