#!/usr/bin/python3
"""PyTorch twin of bench/decode_bench.cpp: the same decoder-only LM (vocab 8000, d_model 256,
4 pre-norm GELU layers, 4 heads, d_ff 1024, learned positions, final LayerNorm, output projection
tied to the embedding; random init, weights not shared with focus) generating --new greedy tokens
after a random --prompt, with a hand-written KV cache: per layer, K and V buffers
(B, H, Lmax, Dh) preallocated once per generate() call, the new token's K/V written in place and
the attention computed over the filled slice. The uncached path recomputes the whole sequence
every step (logits of the last position only, as focus's generate_uncached).
Protocol as decode_bench.cpp: verify first (cached and uncached greedy generations agree on the
first --verify tokens; cached generation deterministic), then time whole generate() calls
(prefill included) under torch.inference_mode(); tokens/s = batch * new / median seconds.
Fair settings from torch_common.py (OpenBLAS on focus's core for the CPU, OMP_WAIT_POLICY=PASSIVE, --threads).
Usage: /usr/bin/python3 bench/decode_torch.py [--batch 1,16] [--new 256] [--reps 5]
       [--uncached-reps 1] [--json]
"""
import argparse
import json
import math
import sys
import time

import torch_common as tc
import torch
import torch.nn as nn
import torch.nn.functional as F


class Layer(nn.Module):
    """Pre-norm block: x + attn(norm1(x)), then x + linear2(gelu(linear1(norm2(x))))."""

    def __init__(self, d, heads, ff):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.norm1 = nn.LayerNorm(d)
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.linear1, self.linear2 = nn.Linear(d, ff), nn.Linear(ff, d)

    def heads(self, x):  # (B, T, D) -> (B, H, T, Dh)
        b, t, _ = x.shape
        return x.view(b, t, self.h, self.dh).transpose(1, 2)

    def attend(self, q, k, v, mask):  # q (B, H, T, Dh), k/v (B, H, L, Dh), mask (T, L) or None
        s = q @ k.transpose(-1, -2) / math.sqrt(self.dh)
        if mask is not None:
            s = s.masked_fill(mask, float("-inf"))
        o = torch.softmax(s, -1) @ v  # (B, H, T, Dh)
        b, _, t, _ = o.shape
        return self.out_proj(o.transpose(1, 2).reshape(b, t, -1))

    def mlp(self, x):
        return x + self.linear2(F.gelu(self.linear1(self.norm2(x))))

    def forward(self, x, mask):  # full sequence, causal
        h = self.norm1(x)
        x = x + self.attend(self.heads(self.q_proj(h)), self.heads(self.k_proj(h)),
                            self.heads(self.v_proj(h)), mask)
        return self.mlp(x)

    def forward_cached(self, x, kc, vc, pos):
        """x (B, T, D), the tokens at positions pos..pos+T-1; kc/vc (B, H, Lmax, Dh) caches."""
        t = x.shape[1]
        h = self.norm1(x)
        kc[:, :, pos:pos + t] = self.heads(self.k_proj(h))
        vc[:, :, pos:pos + t] = self.heads(self.v_proj(h))
        mask = None
        if t > 1:  # causal among the new tokens: query i sees keys j <= pos + i
            mask = torch.ones(t, pos + t, dtype=torch.bool).triu(pos + 1)
        x = x + self.attend(self.heads(self.q_proj(h)), kc[:, :, :pos + t], vc[:, :, :pos + t], mask)
        return self.mlp(x)


class DecoderLM(nn.Module):
    def __init__(self, vocab=8000, d=256, layers=4, heads=4, ff=1024, max_len=512):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, d)
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        self.pos_emb = nn.Parameter(torch.randn(max_len, d) * 0.02)
        self.layers = nn.ModuleList(Layer(d, heads, ff) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.heads, self.dh = heads, d // heads

    def logits(self, h):
        return h @ self.tok_emb.weight.t()  # tied

    def hidden(self, tokens):  # (B, L) -> (B, L, D)
        L = tokens.shape[1]
        x = self.tok_emb(tokens) + self.pos_emb[:L]
        mask = torch.ones(L, L, dtype=torch.bool).triu(1)
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)

    def generate_uncached(self, prompt, n_new):
        seq = prompt
        for _ in range(n_new):
            nxt = self.logits(self.hidden(seq)[:, -1]).argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
        return seq[:, prompt.shape[1]:]

    def generate(self, prompt, n_new):
        B, P = prompt.shape
        lmax = P + n_new
        caches = [(torch.empty(B, self.heads, lmax, self.dh), torch.empty(B, self.heads, lmax, self.dh))
                  for _ in self.layers]
        out = torch.empty(B, n_new, dtype=torch.long)
        tokens, pos = prompt, 0
        for s in range(n_new):
            t = tokens.shape[1]
            x = self.tok_emb(tokens) + self.pos_emb[pos:pos + t]
            for layer, (kc, vc) in zip(self.layers, caches):
                x = layer.forward_cached(x, kc, vc, pos)
            nxt = self.logits(self.norm(x[:, -1])).argmax(-1)
            out[:, s] = nxt
            tokens, pos = nxt[:, None], pos + t
        return out


def bench_batch(model, B, P, N, verify, reps, uncached_reps, gen):
    prompt = torch.randint(0, 8000, (B, P), generator=gen)
    nv = min(verify, N)
    a = model.generate(prompt, nv)
    if not torch.equal(a, model.generate(prompt, nv)):
        sys.exit("decode_torch: verification failed: cached generation deterministic")
    if not torch.equal(a, model.generate_uncached(prompt, nv)):
        sys.exit(f"decode_torch: verification failed: cached and uncached agree on {nv} tokens")
    model.generate(prompt, N)  # warm-up
    res = {}
    tc_ = tc.time_calls(lambda: res.__setitem__("c", model.generate(prompt, N)), 0, reps)
    mc = tc.median(tc_)
    r = {"batch": B, "prompt": P, "new_tokens": N, "verified_tokens": nv,
         "cached": {"reps": reps, "median_s": mc, "tokens_per_s": B * N / mc, "min_s": min(tc_)}}
    if uncached_reps > 0:
        tu = tc.time_calls(lambda: res.__setitem__("u", model.generate_uncached(prompt, N)), 0,
                           uncached_reps)
        mu = tc.median(tu)
        same = (res["c"] == res["u"]).all(0).long().cumprod(0).sum().item()
        r.update({"uncached": {"reps": uncached_reps, "median_s": mu, "tokens_per_s": B * N / mu},
                  "speedup_cache": mu / mc, "agreeing_prefix_full_run": same})
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--verify", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--uncached-reps", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    threads = tc.setup_threads(args.threads)
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(2)
    model = DecoderLM(max_len=max(512, args.prompt + args.new)).eval()
    out = {"framework": "torch", **tc.environment(threads),
           "params": sum(p.numel() for p in model.parameters()), "results": []}
    with torch.inference_mode():
        for b in [int(x) for x in args.batch.split(",")]:
            out["results"].append(bench_batch(model, b, args.prompt, args.new, args.verify,
                                              args.reps, args.uncached_reps, gen))
    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(f"torch {out['torch']} decoder LM: {out['params']} parameters, {threads} threads")
    for r in out["results"]:
        line = f"batch {r['batch']:3d}: cached {r['cached']['tokens_per_s']:8.1f} tokens/s " \
               f"(median {r['cached']['median_s']:.3f} s)"
        if "uncached" in r:
            line += f", uncached {r['uncached']['tokens_per_s']:8.1f} tokens/s " \
                    f"({r['uncached']['median_s']:.3f} s), cache speedup {r['speedup_cache']:.1f}x, " \
                    f"runs agree on {r['agreeing_prefix_full_run']} tokens"
        print(line)


if __name__ == "__main__":
    main()
