#!/usr/bin/python3
"""Attention in PyTorch 1.13 the way its users write it, the twin of `focus bench attention`.

PyTorch 1.13 has no fused scaled_dot_product_attention, so attention is the textbook sequence
  scores = q @ k^T * scale; scores.masked_fill(mask, -inf) (causal / window); softmax; @ v,
with K/V repeated per query head (repeat_interleave) for grouped-query attention; --backward adds
out.backward(dout) with q, k, v requiring grad (their .grad stays allocated between runs, as
focus's does). The mask is built once per length, outside the timing (a registered buffer).
Same protocol and JSON as src/focus/apps/cmd_bench_attention.cpp: FLOPs count visible (query,
key) pairs only, 4 D per pair forward and 14 D forward + backward (torch computes the masked half
of a causal score matrix all the same); one untimed run, verified against a float64 computation
(explicit formulas, no autograd) on the first and last (batch, head) slices; then the median and
min of clamp(3e10 / flops, 3, 50) timed runs (or --reps); peak_extra_mib = VmHWM over the timed
runs (reset through /proc/self/clear_refs) minus VmRSS before them.
Lengths whose score matrices (and their gradients) would need more than --max-mem-gb, or more
than 3/4 of the machine's available memory, are skipped and reported as such, not run.
Usage: /usr/bin/python3 bench/attention_torch.py [--batch 4 --heads 8 --kv-heads N --dim 64
       --len 128,512 --causal --window W --backward --threads 2 --reps N --max-mem-gb 12 --json]
"""
import argparse
import json
import math
import sys
import time

import attention_common as ac
import torch_common as tc
import torch


def positive_list(s):
    v = [int(x) for x in s.split(",")]
    if any(x <= 0 for x in v):
        raise argparse.ArgumentTypeError(f"lengths must be positive: {s}")
    return v


def mask_for(L, causal, window):
    """(L, L) bool, True where the key is hidden from the query, or None when all are visible."""
    if not causal and window < 0:
        return None
    i = torch.arange(L).unsqueeze(1)  # (L, 1) query positions
    j = torch.arange(L).unsqueeze(0)  # (1, L) key positions
    hidden = torch.zeros(L, L, dtype=torch.bool)
    if causal:
        hidden |= j > i
    if window >= 0:
        hidden |= j < i - window
    return hidden


def attention(q, k, v, hidden, scale, groups):
    """q (B, H, L, D), k and v (B, Hkv, L, D) -> (B, H, L, D)."""
    if groups > 1:
        k = k.repeat_interleave(groups, dim=1)  # (B, H, L, D)
        v = v.repeat_interleave(groups, dim=1)  # (B, H, L, D)
    scores = q @ k.transpose(-2, -1) * scale  # (B, H, L, L)
    if hidden is not None:
        scores = scores.masked_fill(hidden, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def reference_slice(q, k, v, dout, hidden, scale):
    """Float64 attention of one head by explicit formulas: q, k, v, dout (L, D) -> out, dq, dk,
    dv (dq.. None without dout)."""
    q, k, v = q.double(), k.double(), v.double()
    s = q @ k.T * scale  # (L, L)
    if hidden is not None:
        s[hidden] = -math.inf
    p = torch.exp(s - s.max(dim=-1, keepdim=True).values)
    p /= p.sum(dim=-1, keepdim=True)  # (L, L)
    out = p @ v
    if dout is None:
        return out, None, None, None
    do = dout.double()
    dp = do @ v.T                                            # (L, L)
    ds = p * (dp - (dp * p).sum(dim=-1, keepdim=True))       # softmax backward
    return out, ds @ k * scale, ds.T @ q * scale, p.T @ do


def verify(args, q, k, v, dout, out, hidden, scale, groups, L):
    """Compares out (and q/k/v.grad) with float64 on the first and last (batch, KV head) slices,
    every query head of the group included (their dK and dV sum over the group)."""
    for b, hk in ((0, 0), (q.shape[0] - 1, k.shape[1] - 1)):
        dk_ref = torch.zeros(L, k.shape[3], dtype=torch.float64)
        dv_ref = torch.zeros_like(dk_ref)
        checks = []
        for h in range(hk * groups, (hk + 1) * groups):
            o, dq, dk, dv = reference_slice(q[b, h].detach(), k[b, hk].detach(), v[b, hk].detach(),
                                            None if dout is None else dout[b, h], hidden, scale)
            checks.append((f"output[{b},{h}]", out[b, h], o))
            if dout is not None:
                checks.append((f"dq[{b},{h}]", q.grad[b, h], dq))
                dk_ref += dk
                dv_ref += dv
        if dout is not None:
            checks += [(f"dk[{b},{hk}]", k.grad[b, hk], dk_ref), (f"dv[{b},{hk}]", v.grad[b, hk], dv_ref)]
        for what, got, ref in checks:
            err = float((got.double() - ref).abs().max()) / max(1.0, float(ref.abs().max()))
            if not err < 1e-4:
                raise SystemExit(f"attention_torch: {what} differs from float64 by {err:.3g} at L {L}")


def run_length(args, L, gen, groups, scale):
    hkv = args.kv_heads or args.heads
    hidden = mask_for(L, args.causal, args.window)
    q = torch.randn(args.batch, args.heads, L, args.dim, generator=gen)  # (B, H, L, D)
    k = torch.randn(args.batch, hkv, L, args.dim, generator=gen)         # (B, Hkv, L, D)
    v = torch.randn(args.batch, hkv, L, args.dim, generator=gen)         # (B, Hkv, L, D)
    dout = None
    if args.backward:
        dout = torch.randn(args.batch, args.heads, L, args.dim, generator=gen)  # (B, H, L, D)
        for t in (q, k, v):
            t.requires_grad_()

    def step():
        if dout is None:
            with torch.no_grad():
                return attention(q, k, v, hidden, scale, groups)
        for t in (q, k, v):
            if t.grad is not None:
                t.grad.zero_()
        out = attention(q, k, v, hidden, scale, groups)
        out.backward(dout)
        return out.detach()

    out = step()  # warm-up; inputs and gradients are resident from here on
    verify(args, q, k, v, dout, out, hidden, scale, groups, L)
    del out
    flops = ac.visible_pairs(L, args.causal, args.window) * args.batch * args.heads * args.dim \
        * (14.0 if args.backward else 4.0)
    reps = args.reps if args.reps > 0 else min(max(int(3e10 / flops), 3), 50)
    base = tc.rss_mib()
    tc.reset_peak_rss()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    extra = max(0.0, tc.peak_rss_mib() - base)
    med = tc.median(times)
    return {"len": L, "median_ms": med * 1e3, "min_ms": min(times) * 1e3,
            "gflops": flops / med / 1e9, "peak_extra_mib": extra, "reps": reps}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=0, help="key/value heads (0 = heads)")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--len", type=positive_list, default=[128, 512, 1024, 2048])
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--window", type=int, default=-1, help="sliding window: keys i - W .. i (-1 = none)")
    ap.add_argument("--backward", action="store_true", help="forward + backward")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=0, help="timed repetitions (0 = by size)")
    ap.add_argument("--max-mem-gb", type=float, default=12.0,
                    help="skip lengths whose estimated score memory exceeds this (GiB)")
    ap.add_argument("--fma-peak", type=float, default=0.0,
                    help="FMA peak GFLOP/s for pct_peak (0: leave pct_peak out)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if min(args.batch, args.heads, args.dim) <= 0 or args.kv_heads < 0:
        raise SystemExit("attention_torch: sizes must be positive")
    hkv = args.kv_heads or args.heads
    if args.heads % hkv:
        raise SystemExit(f"attention_torch: --kv-heads {hkv} must divide --heads {args.heads}")
    threads = tc.setup_threads(args.threads)
    gen = torch.Generator().manual_seed(11)
    masked = args.causal or args.window >= 0
    out = {"kernel": "torch", **tc.environment(threads), "fma_peak_gflops": args.fma_peak or None,
           "batch": args.batch, "heads": args.heads, "kv_heads": hkv, "dim": args.dim,
           "causal": args.causal, "window": args.window, "backward": args.backward, "results": []}
    if not args.json:
        print(f"attention torch {torch.__version__}, {'forward + backward' if args.backward else 'forward'}, "
              f"B {args.batch} H {args.heads} Hkv {hkv} D {args.dim}{', causal' if args.causal else ''}"
              f"{f', window {args.window}' if args.window >= 0 else ''}; {threads} threads\n")
        print(f"{'L':>8} {'ms':>10} {'min ms':>10} {'GFLOP/s':>10} {'peak MiB':>12}")
    for L in args.len:
        need = ac.scores_gib(args.batch, args.heads, L, masked, args.backward)
        limit = min(args.max_mem_gb, 0.75 * ac.mem_available_gib())
        if need > limit:
            r = {"len": L, "skipped": f"needs ~{need:.1f} GiB for the score matrices (limit {limit:.1f} GiB)"}
            if not args.json:
                print(f"{L:8d} skipped: {r['skipped']}")
        else:
            r = run_length(args, L, gen, args.heads // hkv, 1.0 / math.sqrt(args.dim))
            if args.fma_peak > 0:
                r["pct_peak"] = 100 * r["gflops"] / args.fma_peak
            if not args.json:
                print(f"{L:8d} {r['median_ms']:10.2f} {r['min_ms']:10.2f} {r['gflops']:10.1f} "
                      f"{r['peak_extra_mib']:12.1f}")
        out["results"].append(r)
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()


if __name__ == "__main__":
    main()
