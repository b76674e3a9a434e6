#!/usr/bin/python3
"""focus next to PyTorch 1.13 on autoregressive decoding: runs build/decode_bench and
bench/decode_torch.py in turns for several rounds (focus first on even rounds, torch first on odd
ones, so slow drifts in the machine hit both alike) and prints a markdown table of medians over
rounds: tokens/s with the KV cache and with full recomputation, batch 1 and 16, the cache's
speedup, and focus/torch ratios next to the issue's target (>= 5x PyTorch's KV cache).
Each program verifies before timing (cached and uncached greedy generations agree).
--weights f32,bf16 also runs focus with bf16 inference weights (decode_bench --weights bf16;
torch stays F32), as a row of its own. The 1-minute
load average, the CPU used by other processes and the CPU the hypervisor took (steal) during
each run are recorded (the machine is shared); --max-load waits for a quieter machine first.
Run with Debian's python (torch lives there):
  /usr/bin/python3 bench/compare_decode.py --build build [--rounds 3] [--new 256] [--weights f32,bf16]
      [--out t.md]
"""
import argparse
import os
import statistics
import sys
import time

from compare import (TORCH_ENV, TORCH_PY, load1, note_machine, run_json, wait_for_quiet,
                     write_outputs)

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = 5.0  # focus cached / torch cached


def focus_name(weights):
    return "focus" if weights == "f32" else f"focus-{weights}"


def one_round(r, args, log):
    common = ["--batch", args.batch, "--prompt", str(args.prompt), "--new", str(args.new),
              "--reps", str(args.reps), "--uncached-reps", str(args.uncached_reps),
              "--threads", str(args.threads), "--json"]
    jobs = {focus_name(w): ([os.path.join(args.build, "decode_bench")] + common + ["--weights", w], {})
            for w in args.weights}
    jobs["torch"] = ([TORCH_PY, os.path.join(HERE, "decode_torch.py")] + common, TORCH_ENV)
    order = list(jobs) if r % 2 == 0 else list(reversed(list(jobs)))
    return {fw: run_json(*jobs[fw], log) for fw in order}


def metrics(res):
    out = {}
    for fw, r in res.items():
        for x in r["results"]:
            b = x["batch"]
            out[(fw, b, "cached")] = x["cached"]["tokens_per_s"]
            if "uncached" in x:
                out[(fw, b, "uncached")] = x["uncached"]["tokens_per_s"]
    return out


def fmt(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def table(rounds, args, loads, others, stolen):
    keys = rounds[0].keys()
    med = {k: statistics.median(r[k] for r in rounds) for k in keys}
    lo = {k: min(r[k] for r in rounds) for k in keys}
    hi = {k: max(r[k] for r in rounds) for k in keys}
    rows = ["| batch | path | focus weights | focus tokens/s | torch tokens/s (F32) | focus/torch | "
            "spread focus / torch (min..max) |",
            "|---:|---|---|---:|---:|---:|---|"]
    names = [focus_name(w) for w in args.weights]
    for b in sorted({k[1] for k in keys}):
        for path in ("cached", "uncached"):
            for w, name in zip(args.weights, names):
                f, t = (name, b, path), ("torch", b, path)
                if f not in med or t not in med:
                    continue
                rows.append(f"| {b} | {'KV cache' if path == 'cached' else 'full recomputation'} | "
                            f"{w} | {fmt(med[f])} | {fmt(med[t])} | {med[f] / med[t]:.2f} | "
                            f"{fmt(lo[f])}..{fmt(hi[f])} / {fmt(lo[t])}..{fmt(hi[t])} |")
    summary = []
    for b in sorted({k[1] for k in keys}):
        for w, name in zip(args.weights, names):
            f, t = med[(name, b, "cached")], med[("torch", b, "cached")]
            line = f"batch {b}, focus {w} weights: focus KV cache / torch KV cache = {f / t:.2f} " \
                   f"({'met' if f / t >= TARGET else 'missed'}, target >= {TARGET:g}x)"
            if (name, b, "uncached") in med:
                line += f"; focus KV cache / focus recomputation = {f / med[(name, b, 'uncached')]:.1f}x"
            summary.append(line)
    notes = [
        f"Medians over {len(rounds)} rounds (focus and torch interleaved), {args.threads} threads "
        f"each; prompt {args.prompt}, {args.new} new tokens, {args.reps} timed cached generations "
        f"and {args.uncached_reps} uncached per run.",
        f"1-minute load average before the runs: median {statistics.median(loads):.2f}, max "
        f"{max(loads):.2f}; CPU used by other processes during the runs: median "
        f"{statistics.median(others):.2f} cores, max {max(others):.2f} (of {os.cpu_count()}); CPU "
        f"taken by the hypervisor (steal): median {statistics.median(stolen):.2f} cores, max "
        f"{max(stolen):.2f}.",
    ]
    return "\n".join(rows) + "\n\n" + "\n".join(f"- {s}" for s in summary + notes) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--uncached-reps", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", default="f32", type=lambda s: s.split(","),
                    help="focus inference weights, comma-separated (f32, bf16)")
    ap.add_argument("--max-load", type=float, default=0, help="wait for load1 < this before each round")
    ap.add_argument("--max-wait", type=float, default=1200)
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("--json-out", help="write every run's raw JSON here")
    args = ap.parse_args()
    if not os.access(os.path.join(args.build, "decode_bench"), os.X_OK):
        raise SystemExit(f"compare_decode: {args.build}/decode_bench missing (build first)")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    rounds, raw, loads, others, stolen = [], [], [], [], []
    for r in range(args.rounds):
        if args.max_load > 0:
            wait_for_quiet(args.max_load, args.max_wait, log)
        log(f"round {r + 1}/{args.rounds} (load {load1():.2f})")
        res = one_round(r, args, log)
        rounds.append(metrics(res))
        raw.append(res)
        note_machine(res, loads, others, stolen)
    write_outputs(table(rounds, args, loads, others, stolen), raw, args)


if __name__ == "__main__":
    main()
