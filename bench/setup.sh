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
