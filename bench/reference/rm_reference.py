#!/usr/bin/env python3
"""PyTorch reference for bench/compare.sh: the same Llama-architecture reward model and the same
Bradley-Terry training step that rmkit's bench_train runs, written the way TRL's RewardTrainer /
OpenRLHF do it:

  * every batch padded to its longest sequence (right padding, pad id 0);
  * chosen and rejected concatenated into ONE forward pass;
  * reward read at the last non-pad token (HF LlamaForSequenceClassification);
  * loss = -logsigmoid(r_chosen - r_rejected).mean(); AdamW; same batch size and data order.

It is written as a competent PyTorch user would (fused SDPA when available, no Python loops over
tokens, torch.set_num_threads equal to rmkit's). Input: the batch plan JSON that
`bench_train --plan-out` writes ({"shape": {...}, "batches": [[[len_c, len_r], ...], ...]}).
Output: one JSON line with ms/step, pairs/s, real tokens/s and peak RSS.

Usage: /usr/bin/python3 rm_reference.py PLAN.json [--threads N] [--warmup N] [--mode score]
"""
import argparse
import contextlib
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim, max_len, theta):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2).float() / head_dim))
    t = torch.arange(max_len).float()
    freqs = torch.outer(t, inv)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


class Attention(nn.Module):
    def __init__(self, d, nh, nkv):
        super().__init__()
        self.nh, self.nkv, self.hd = nh, nkv, d // nh
        self.q_proj = nn.Linear(d, nh * self.hd, bias=False)
        self.k_proj = nn.Linear(d, nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(nh * self.hd, d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.nkv != self.nh:
            rep = self.nh // self.nkv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:  # torch 1.13: the eager path HF uses
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            y = att @ v
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.gate_proj = nn.Linear(d, h, bias=False)
        self.up_proj = nn.Linear(d, h, bias=False)
        self.down_proj = nn.Linear(h, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.input_layernorm = RMSNorm(s["hidden"], 1e-5)
        self.self_attn = Attention(s["hidden"], s["heads"], s["kv_heads"])
        self.post_attention_layernorm = RMSNorm(s["hidden"], 1e-5)
        self.mlp = MLP(s["hidden"], s["intermediate"])

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaRM(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.embed_tokens = nn.Embedding(s["vocab"], s["hidden"])
        self.layers = nn.ModuleList([Block(s) for _ in range(s["layers"])])
        self.norm = RMSNorm(s["hidden"], 1e-5)
        self.score = nn.Linear(s["hidden"], 1, bias=False)
        cos, sin = rope_tables(s["hidden"] // s["heads"], s.get("max_len", 2048), 10000.0)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, ids, attn):
        B, T = ids.shape
        x = self.embed_tokens(ids)
        cos, sin = self.cos[:T], self.sin[:T]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        mask = causal[None, None] & attn.bool()[:, None, None, :]
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        x = self.norm(x)
        last = attn.sum(1) - 1  # right padding: last real token
        h = x[torch.arange(B), last]
        return self.score(h).squeeze(-1)


def make_batch(pairs, vocab, gen):
    seqs = [l for pair in pairs for l in pair[:1]] + [l for pair in pairs for l in pair[1:2]]
    T = max(seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    attn = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, n in enumerate(seqs):
        ids[i, :n] = torch.randint(1, vocab, (n,), generator=gen)
        attn[i, :n] = 1
    return ids, attn, sum(seqs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("plan")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--mode", choices=["train", "score"], default="train")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    plan = json.load(open(args.plan))
    s = plan["shape"]
    torch.manual_seed(plan.get("seed", 0))
    model = LlamaRM(s)
    gen = torch.Generator().manual_seed(plan.get("seed", 0))
    batches = [make_batch(b, s["vocab"], gen) for b in plan["batches"]]
    times, tokens, pairs = [], 0, 0
    # warm-up steps (untimed) on the heaviest batch, the one whose memory the heap must grow to, as
    # rmkit's bench does on its own heaviest batch (two: the first step also allocates gradients
    # and AdamW moments, and the heap settles only in the second); then every batch is timed
    heaviest = max(range(len(batches)), key=lambda i: batches[i][0].numel())
    if args.mode == "train":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
        model.train()
        mode_ctx = contextlib.nullcontext()

        def run(ids, attn):  # one training step
            r = model(ids, attn)
            half = ids.shape[0] // 2
            loss = -F.logsigmoid(r[:half] - r[half:]).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
    else:
        model.eval()
        mode_ctx = torch.inference_mode()
        run = model  # one scoring forward
    with mode_ctx:
        for _ in range(args.warmup):
            run(*batches[heaviest][:2])
        for ids, attn, ntok in batches:
            t0 = time.perf_counter()
            run(ids, attn)
            times.append(time.perf_counter() - t0)
            tokens += ntok
            pairs += ids.shape[0] // 2
    total = sum(times)
    out = {
        "impl": "pytorch-reference", "mode": args.mode, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "steps": len(times), "warmup_batch": heaviest,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
        "aten_cpu_capability": os.environ.get("ATEN_CPU_CAPABILITY", ""),
        "ms_per_step_median": 1000 * statistics.median(times),
        "pairs_per_s": pairs / total, "tokens_per_s": tokens / total,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "p50_ms": 1000 * statistics.median(times),
        "p99_ms": 1000 * sorted(times)[min(len(times) - 1, int(0.99 * len(times)))],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
