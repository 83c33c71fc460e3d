# Shared set-up of the bench scripts (sourced, not run): builds the `refinery` binary with
# PROFILE (default release) and sets `data` (../shared/data), `bin` and `work` (a scratch
# folder removed on exit).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/refinery-target}"
data="$(cd ../shared/data && pwd)"
profile="${PROFILE:-release}"
cargo build --profile "$profile" --locked -p pipeline --bin refinery >&2
bin="$CARGO_TARGET_DIR/$([ "$profile" = dev ] && echo debug || echo "$profile")/refinery"
work="$(mktemp -d /tmp/refinery-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
