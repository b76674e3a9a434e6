#!/usr/bin/python3
"""torch.matmul GFLOP/s at the shapes of `focus bench gemm`, the PyTorch twin of that command.

Same protocol as src/focus/apps/cmd_bench.cpp: C (M, N) = A (M, K) @ B (K, N) in float32 with
A, B ~ N(0, 1); 64 sampled entries checked against a float64 dot product first; then the median of
clamp(2e10 / flops, 3, 200) timed calls (or --reps), after one untimed call. The product is written
into a preallocated C (torch.matmul(..., out=C)), as focus's gemm writes into its C.
Usage: /usr/bin/python3 bench/gemm_torch.py [--sizes 2048,1024x64x1024] [--threads 2] [--json]
"""
import argparse
import json
import sys
import time

import torch_common as tc
import torch


def parse_shape(s):
    parts = s.split("x")
    if len(parts) not in (1, 3) or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise SystemExit(f"gemm_torch: bad size '{s}' (use N or MxNxK, positive)")
    v = [int(p) for p in parts]
    return (v[0], v[0], v[0]) if len(v) == 1 else tuple(v)


def check(A, B, C, gen, label):
    M, K = A.shape
    N = B.shape[1]
    for _ in range(64):
        i = int(torch.randint(M, (1,), generator=gen))
        j = int(torch.randint(N, (1,), generator=gen))
        ref = float((A[i].double() * B[:, j].double()).sum())
        got = float(C[i, j])
        if abs(ref - got) > 1e-3 * K ** 0.5 + 1e-4 * abs(ref):
            raise SystemExit(f"gemm_torch: result check failed at ({i}, {j}) for {label}: {got} vs {ref}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,256,1024,2048,1024x1024x64,1024x64x1024,6272x128x1152")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=0, help="timed repetitions (0 = by size)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    shapes = [(s, parse_shape(s)) for s in args.sizes.split(",")]
    threads = tc.setup_threads(args.threads)
    gen = torch.Generator().manual_seed(42)
    out = {"framework": "torch", **tc.environment(threads), "results": []}
    if not args.json:
        print(f"torch {torch.__version__}, {threads} threads, OpenBLAS core {out['blas_core']}\n")
        print(f"{'M x N x K':<18} {'ms':>10} {'GFLOP/s':>10}")
    with torch.no_grad():
        for label, (M, N, K) in shapes:
            A = torch.randn(M, K, generator=gen)  # (M, K)
            B = torch.randn(K, N, generator=gen)  # (K, N)
            C = torch.empty(M, N)                 # (M, N)
            torch.matmul(A, B, out=C)
            check(A, B, C, gen, label)
            flops = 2.0 * M * N * K
            reps = args.reps if args.reps > 0 else min(max(int(2e10 / flops), 3), 200)
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                torch.matmul(A, B, out=C)
                times.append(time.perf_counter() - t0)
            med = tc.median(times)
            gflops = flops / med / 1e9
            out["results"].append({"M": M, "N": N, "K": K, "median_ms": med * 1e3,
                                   "gflops": gflops, "reps": reps})
            if not args.json:
                print(f"{f'{M}x{N}x{K}':<18} {med * 1e3:10.3f} {gflops:10.1f}")
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()


if __name__ == "__main__":
    main()
