#!/usr/bin/env bash
# The per-text rules by themselves (pipeline/examples/rule_speed.rs): `normalize`, the word
# splitter, the quality filters and minhash_dedup's per-text work (shingles, signature, band keys;
# `minhash` and `minhash_datatrove`, each with a digest of every band key), each in MB of text
# per second on one thread over the real corpus in ../shared/data/corpus held in memory, with how
# many texts each changes, drops or signs; `normalize` also by path (unchanged, sliced,
# rewritten), timed over the texts it rewrites; the word splitter also with a digest of where
# every word lies (equal digests: the same words).
#
# Usage: [ROUNDS=5] [ONLY=rule,...] bench/rules.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/refinery-target}"
cargo build --release --locked -p pipeline --example rule_speed >&2
"$CARGO_TARGET_DIR/release/examples/rule_speed" --rounds "${ROUNDS:-5}" ${ONLY:+--only "$ONLY"} \
  ../shared/data/corpus/*.jsonl.zst
