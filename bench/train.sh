#!/usr/bin/env bash
# Training throughput: Refinery's trainer and a PyTorch eager implementation of the same model
# and batch shape, in the same run on the same machine.
#
# 1. Tokenizes two real corpora (news_bbc, wiki_en) with OLMo's GPT-NeoX tokenizer into a local
#    shard version (the data both trainers read).
# 2. CPU (always): `refinery train` of the `tiny` preset (batch 8 × 256); median tokens/s over
#    the steps after the first five, peak RSS.
# 3. GPU (when `nvidia-smi` works and the binary was built with `--features cuda`):
#    `refinery train` of `gpt2-124m` (bf16, seq 1024) and `bench/train_torch.py` with the same
#    shape (bf16 autocast, same AdamW, clipping); tokens/s and MFU of both. PyTorch runs twice:
#    attention written out as matmul + softmax (the same computation as Refinery's), then with
#    its fused flash-attention kernel (`--attention sdpa`).
#
# Usage: [PROFILE=release|dev] [STEPS=30] [GPU_BATCH=16] [CPU=0: skip step 2] bench/train.sh
#        REFINERY_BIN=./refinery DATA=./bench-data bench/train.sh   (a prebuilt binary, no cargo:
#        the GPU machine; DATA holds corpus/{news_bbc,wiki_en}.jsonl.zst and tokenizers/)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${REFINERY_BIN:-}" ]; then
  bin="$REFINERY_BIN"; data="${DATA:?set DATA with REFINERY_BIN}"
  work="$(mktemp -d /tmp/refinery-bench.XXXXXX)"; trap 'rm -rf "$work"' EXIT
else
  . bench/setup.sh
fi
data="$(cd "${DATA:-$data}" && pwd)"
steps="${STEPS:-30}"

cat > "$work/tok.toml" <<TOML
[[sources]]
name = "news"
paths = ["$data/corpus/news_bbc.jsonl.zst"]
[[sources]]
name = "wiki"
paths = ["$data/corpus/wiki_en.jsonl.zst"]
[output]
path = "$work/out"
[tokenize]
root = "$work/tokens"
tokenizer = "$data/tokenizers/gpt-neox-olmo.json"
validation_fraction = 0.01
TOML
echo "binary: $bin, $(nproc) cores"
"$bin" run --quiet "$work/tok.toml" | grep -E '^Tokenized'

# $1 name, $2 [model] body, $3 seq_len, $4 batch, $5 device; prints tokens/s, MFU, peak RSS.
train() {
  cat > "$work/$1.toml" <<TOML
[data]
root = "$work/tokens"
seq_len = $3
[model]
$2
[train]
steps = $steps
batch_size = $4
eval_windows = 1
out = "$work/$1"
device = "$5"
TOML
  /usr/bin/time -f '%M' -o "$work/rss" "$bin" train --quiet "$work/$1.toml" > /dev/null
  python3 - "$work/$1/metrics.jsonl" "$(cat "$work/rss")" "$1" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
train = [r for r in rows if r["event"] == "train"]
steps = train[5:]
tps = statistics.median(r["tokens_per_s"] for r in steps)
mfu = [r["mfu"] for r in steps if r.get("mfu") is not None]
mfu = f", MFU {100 * statistics.median(mfu):.1f}%" if mfu else ""
loss = f"loss {train[0]['loss']:.2f} at step 1, {train[-1]['loss']:.2f} at step {len(train)}"
print(f"{sys.argv[3]}: refinery {tps:,.0f} tokens/s{mfu}, peak RSS {int(sys.argv[2]) // 1024} MiB, {loss}")
PY
}

if [ "${CPU:-1}" = 1 ]; then
  echo "== CPU"
  train tiny 'preset = "tiny"' 256 8 cpu
fi

if nvidia-smi -L > /dev/null 2>&1; then
  echo "== GPU: $(nvidia-smi -L | head -1)"
  train gpt2 'preset = "gpt2-124m"' 1024 "${GPU_BATCH:-16}" cuda
  for attention in matmul sdpa; do
    python3 bench/train_torch.py --shards "$work/tokens" --batch "${GPU_BATCH:-16}" \
      --steps "$steps" --attention "$attention"
  done
else
  echo "== GPU: none here (nvidia-smi not found); the GPU comparison needs a CUDA machine"
fi
