"""PyTorch eager reference for `bench/train.sh`: the same GPT-2-style model as Refinery's trainer
(learned positions, pre-LayerNorm, causal attention written out as matmul + softmax, tanh GELU,
tied embeddings), the same batch shape, bf16 autocast with fp32 weights, AdamW with decay on
matrices only (fused kernels off, as stated in BENCHMARKS.md), global-norm clipping at 1.0.
`--attention sdpa` computes the same attention with PyTorch's fused
`scaled_dot_product_attention` (flash attention) instead, for comparison.

Reads windows from the train shards of a Refinery version (llm.c layout, 1024-byte header) so
both trainers see real tokens. Prints median tokens/s and MFU over the steps after warm-up.
"""

import argparse
import glob
import json
import math
import os
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads, sdpa):
        super().__init__()
        self.heads, self.sdpa = heads, sdpa
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, mask):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln_1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        if self.sdpa:
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads) + mask[:t, :t]
            att = torch.softmax(scores.float(), dim=-1).to(v.dtype) @ v
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, vocab, context, layers, heads, d, sdpa):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads, sdpa) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        mask = torch.full((context, context), float("-inf")).triu(1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, ids, targets):
        t = ids.shape[1]
        x = self.wte(ids) + self.wpe.weight[:t]
        for block in self.blocks:
            x = block(x, self.mask)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))


def windows(root, seq, batch, rng):
    version = open(os.path.join(root, "latest")).read().strip()
    manifest = json.load(open(os.path.join(root, "versions", version, "manifest.json")))
    dtype = np.uint16 if manifest["token_bytes"] == 2 else np.uint32
    paths = sorted(glob.glob(os.path.join(root, "versions", version, "train", "*", "*.bin")))
    tokens = np.concatenate([np.memmap(p, dtype=dtype, mode="r", offset=1024) for p in paths])
    while True:
        starts = rng.integers(0, len(tokens) - seq - 1, batch)
        w = np.stack([tokens[s : s + seq + 1].astype(np.int64) for s in starts])
        yield torch.from_numpy(w[:, :-1]), torch.from_numpy(w[:, 1:])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shards", required=True)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--context", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=50304)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--peak-flops", type=float, default=989e12)
    p.add_argument("--attention", choices=["matmul", "sdpa"], default="matmul")
    a = p.parse_args()
    dev = "cuda"
    torch.manual_seed(0)
    sdpa = a.attention == "sdpa"
    model = Gpt(a.vocab, a.context, a.layers, a.heads, a.width, sdpa).to(dev)
    decay = [q for q in model.parameters() if q.dim() >= 2]
    rest = [q for q in model.parameters() if q.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.95), eps=1e-8, fused=False,
    )
    n = sum(q.numel() for q in model.parameters())
    flops_per_token = 6 * n + 12 * a.layers * a.context * a.width
    data = windows(a.shards, a.context, a.batch, np.random.default_rng(0))
    rates = []
    for step in range(a.steps):
        x, y = (z.to(dev, non_blocking=True) for z in next(data))
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step >= a.warmup:
            rates.append(a.batch * a.context / (time.perf_counter() - start))
    tps = statistics.median(rates)
    print(
        f"pytorch eager {torch.__version__}, {a.attention} attention: {tps:,.0f} tokens/s, "
        f"MFU {100 * tps * flops_per_token / a.peak_flops:.1f}% ({n / 1e6:.1f}M parameters)"
    )


if __name__ == "__main__":
    main()
