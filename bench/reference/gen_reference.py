#!/usr/bin/env python3
"""PyTorch reference for bench/generate_compare.sh: greedy generation written as Hugging Face's
`generate` does it for a Llama model: a static batch, LEFT padding, an attention mask, position ids
from the mask (cumsum - 1), a KV cache (one cat per layer per step), and the whole batch stepping
until every row has max_new_tokens (ignore_eos). Same shape as rmkit's bench_generate (random init),
same threads. Output: one JSON line with generated tokens/s.

Usage: /usr/bin/python3 gen_reference.py --shape small --batch 16 --prompt-len 64 --max-tokens 128 --threads 2
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rm_reference import MLP, RMSNorm, rotate_half  # noqa: E402

SHAPES = {"tiny": dict(layers=5, hidden=64, heads=8, kv_heads=4, intermediate=172, vocab=512),
          "small": dict(layers=4, hidden=256, heads=4, kv_heads=4, intermediate=704, vocab=8192),
          "base": dict(layers=12, hidden=768, heads=12, kv_heads=12, intermediate=2048, vocab=32000)}


class CachedAttention(nn.Module):
    def __init__(self, d, nh, nkv):
        super().__init__()
        self.nh, self.nkv, self.hd = nh, nkv, d // nh
        self.q_proj = nn.Linear(d, nh * self.hd, bias=False)
        self.k_proj = nn.Linear(d, nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(nh * self.hd, d, bias=False)

    def forward(self, x, cos, sin, mask, cache):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache[0] is not None:  # HF DynamicCache: concatenate along the sequence
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        cache[0], cache[1] = k, v
        if self.nkv != self.nh:
            rep = self.nh // self.nkv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            y = att @ v
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class Block(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.input_layernorm = RMSNorm(s["hidden"], 1e-5)
        self.self_attn = CachedAttention(s["hidden"], s["heads"], s["kv_heads"])
        self.post_attention_layernorm = RMSNorm(s["hidden"], 1e-5)
        self.mlp = MLP(s["hidden"], s["intermediate"])

    def forward(self, x, cos, sin, mask, cache):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaLM(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.embed_tokens = nn.Embedding(s["vocab"], s["hidden"])
        self.layers = nn.ModuleList([Block(s) for _ in range(s["layers"])])
        self.norm = RMSNorm(s["hidden"], 1e-5)
        self.lm_head = nn.Linear(s["hidden"], s["vocab"], bias=False)
        hd = s["hidden"] // s["heads"]
        self.inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))

    def forward(self, ids, pos, mask, caches):
        x = self.embed_tokens(ids)
        freqs = pos[..., None].float() * self.inv  # [B, T, hd/2]
        emb = torch.cat([freqs, freqs], -1)[:, None]  # [B, 1, T, hd]
        cos, sin = emb.cos(), emb.sin()
        for layer, cache in zip(self.layers, caches):
            x = layer(x, cos, sin, mask, cache)
        return self.lm_head(self.norm(x[:, -1]))  # logits of the last position only


@torch.inference_mode()
def generate(model, prompts, max_new, n_layers):
    B, L = len(prompts), max(len(p) for p in prompts)
    ids = torch.zeros(B, L, dtype=torch.long)
    attn = torch.zeros(B, L, dtype=torch.long)
    for b, p in enumerate(prompts):  # left padding
        ids[b, L - len(p):] = torch.tensor(p)
        attn[b, L - len(p):] = 1
    caches = [[None, None] for _ in range(n_layers)]
    out = []
    step_ids = ids
    for step in range(max_new):
        T = step_ids.shape[1]
        S = attn.shape[1]
        pos = (attn.cumsum(-1) - 1).clamp(min=0)[:, -T:]
        causal = torch.ones(T, S, dtype=torch.bool).tril(S - T)
        mask = causal[None, None] & attn.bool()[:, None, None, :]
        logits = model(step_ids, pos, mask, caches)
        nxt = logits.argmax(-1)
        out.append(nxt)
        step_ids = nxt[:, None]
        attn = torch.cat([attn, torch.ones(B, 1, dtype=torch.long)], 1)
    return torch.stack(out, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="small")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported (as bench_generate)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    s = SHAPES[a.shape]
    model = LlamaLM(s).eval()
    for p in model.parameters():
        nn.init.normal_(p, 0, 0.02) if p.dim() >= 2 else nn.init.ones_(p)
    g = torch.Generator().manual_seed(a.seed)
    # prompt lengths vary a little (left padding matters), average prompt_len
    prompts = [[1] + torch.randint(3, s["vocab"], (a.prompt_len - 1 - (b % 8),), generator=g).tolist() for b in range(a.batch)]
    generate(model, prompts[:2], 8, s["layers"])  # warm-up
    times = []
    for _ in range(max(1, a.repeats)):
        t0 = time.perf_counter()
        out = generate(model, prompts, a.max_tokens, s["layers"])
        times.append(time.perf_counter() - t0)
    dt = sorted(times)[len(times) // 2]
    print(json.dumps({"reference": "hf-style static batch, left padding, KV cache", "shape": a.shape,
                      "batch": a.batch, "threads": a.threads, "torch": torch.__version__, "repeats": len(times),
                      "tokens": int(out.numel()), "seconds": dt, "tokens_per_s": out.numel() / dt}))


if __name__ == "__main__":
    main()
