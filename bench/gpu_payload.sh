#!/usr/bin/env bash
# Packs what a GPU machine without Rust needs for the trainer's GPU checks, small enough for the
# `device` tool's 64 MiB carry (about 50 MB):
#   refinery.xz       the `refinery` binary built with `--features cuda`, stripped
#   trainer-tests.xz  the trainer's test binary with `--features cuda` (`trainer-tests cuda_ops`
#                     runs the kernels' GPU tests)
#   gpu_step.xz       the one-step profiler (`gpu_step BATCH`), for `ncu`
#   bench-data/       news_bbc and wiki_en (corpus) and OLMo's tokenizer, for bench/train.sh
#   COMMIT            the commit they were built from
# Build environment: the CUDA variables of README.md, "Training on a GPU" (CUDA_ROOT with nvcc,
# CUDA_COMPUTE_CAP, LIBRARY_PATH with the stub libcuda.so). On the GPU machine,
# `bench/gpu_run.sh CMD...` unpacks the binaries and runs CMD with the CUDA libraries on the path.
#
# Usage: bench/gpu_payload.sh [OUT]   (default: target/gpu, ignored by git)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/gpu}"
: "${CUDA_ROOT:?set the CUDA build variables of README.md, \"Training on a GPU\"}"
: "${CUDA_COMPUTE_CAP:?set CUDA_COMPUTE_CAP (90 for H100/H200)}"
command -v nvcc >/dev/null || { echo "nvcc is not on PATH (README.md, \"Training on a GPU\")" >&2; exit 2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/refinery-target}"
data="$(cd ../shared/data && pwd)"

cargo build --release --locked -p pipeline --bin refinery --features cuda
cargo build --release --locked -p trainer --features cuda --example gpu_step
# The test binary's name carries a hash: ask cargo for it.
tests=$(cargo test --release --locked -p trainer --features cuda --no-run --message-format=json \
  | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "trainer" \
            and m["profile"]["test"] and m.get("executable"):
        print(m["executable"])')
[ -x "$tests" ] || { echo "no trainer test binary found" >&2; exit 1; }

rm -rf "$out" && mkdir -p "$out/bench-data/corpus" "$out/bench-data/tokenizers"
pack() { strip -o "$out/$2" "$1" && xz -6 -T0 "$out/$2"; }
pack "$CARGO_TARGET_DIR/release/refinery" refinery
pack "$CARGO_TARGET_DIR/release/examples/gpu_step" gpu_step
pack "$tests" trainer-tests
cp "$data"/corpus/{news_bbc,wiki_en}.jsonl.zst "$out/bench-data/corpus/"
cp "$data"/tokenizers/gpt-neox-olmo.json "$out/bench-data/tokenizers/"
git rev-parse --short HEAD > "$out/COMMIT"
git diff --quiet HEAD || echo "dirty" >> "$out/COMMIT"
du -sh "$out"
