#!/usr/bin/env bash
# `normalize` by itself (pipeline/examples/normalize_speed.rs): its speed in MB of text per second
# on one thread over the real corpus in ../shared/data/corpus held in memory, for every text and
# for the texts it rewrites, with how many texts take each path.
#
# Usage: [ROUNDS=5] bench/normalize.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/refinery-target}"
cargo build --release --locked -p pipeline --example normalize_speed >&2
"$CARGO_TARGET_DIR/release/examples/normalize_speed" --rounds "${ROUNDS:-5}" \
  ../shared/data/corpus/*.jsonl.zst
