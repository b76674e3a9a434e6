#!/usr/bin/python3
"""focus's attention kernels next to PyTorch 1.13: runs `focus bench attention` with the fused
and the reference kernel and bench/attention_torch.py in turns, several rounds, and prints
markdown tables of medians, speed-ups and the issue's targets.

Configurations: non-causal and causal, forward and forward + backward, at B, H, D and the lengths
given. One round runs, for each configuration, the three programs one after the other in an order
that rotates with the round and the configuration (so slow drifts of the machine hit all alike);
each program verifies its results before timing and reports medians of repeated runs per length;
the tables give the median over rounds. The reference kernel, like PyTorch, materialises the
(B, H, L, L) score matrices: it runs only at lengths whose estimate (attention_common.scores_gib)
stays under --ref-max-gb; attention_torch.py skips such lengths itself (--torch-max-gb).
PyTorch runs with its fair settings (torch_common.py); the 1-minute load average and the CPU used
by other processes are recorded for every run (helpers of compare.py).
  /usr/bin/python3 bench/compare_attention.py --build build [--len 128,512,1024,2048,4096,8192]
      [--rounds 3] [--out table.md] [--json-out raw.json]
  /usr/bin/python3 bench/compare_attention.py --from-json raw1.json raw2.json   # tables of saved
      runs, their rounds pooled per length (e.g. 3 rounds up to 2048 and 1 round beyond)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import attention_common as ac
import compare

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS = ["fused", "reference", "torch"]
CONFIGS = [(False, False), (True, False), (False, True), (True, True)]  # (causal, backward)


def config_name(causal, backward):
    return f"{'forward + backward' if backward else 'forward'}, {'causal' if causal else 'non-causal'}"


def run_json(cmd, env_extra, log):
    """Runs one benchmark program; returns its JSON plus the load it ran under."""
    load = compare.load1()
    t0, (busy0, stolen0), own0 = time.time(), compare.cpu_busy_s(), compare.children_cpu_s()
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **env_extra),
                       cwd=os.path.dirname(HERE))
    wall = time.time() - t0
    busy1, stolen1 = compare.cpu_busy_s()
    others = max(0.0, (busy1 - busy0 - (compare.children_cpu_s() - own0)) / wall)
    stolen = (stolen1 - stolen0) / wall
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"compare_attention: {' '.join(cmd)} failed with status {p.returncode}")
    out = json.loads(p.stdout)
    log(f"  {out['kernel']:9s} {config_name(out['causal'], out['backward'])}: {wall:.0f} s, load "
        f"before {load:.2f}, other processes {others:.2f} cores, stolen {stolen:.2f} cores")
    out.update(load1_before=load, others_cores=others, stolen_cores=stolen, wall_s=wall)
    return out


def command(kernel, causal, backward, lens, args):
    common = ["--batch", str(args.batch), "--heads", str(args.heads), "--dim", str(args.dim),
              "--len", ",".join(map(str, lens)), "--threads", str(args.threads), "--reps", str(args.reps),
              "--json"]
    common += ["--causal"] * causal + ["--backward"] * backward
    if kernel == "torch":
        return [compare.TORCH_PY, os.path.join(HERE, "attention_torch.py"), "--max-mem-gb",
                str(args.torch_max_gb)] + common, compare.TORCH_ENV
    return [os.path.join(args.build, "focus"), "bench", "attention", "--kernel", kernel] + common, {}


def one_round(r, args, log):
    """{(causal, backward, kernel): the program's JSON} for one round."""
    res = {}
    for c, (causal, backward) in enumerate(CONFIGS):
        ref_lens = [L for L in args.len
                    if ac.scores_gib(args.batch, args.heads, L, causal, backward) <= args.ref_max_gb]
        shift = (r + c) % len(KERNELS)
        for kernel in KERNELS[shift:] + KERNELS[:shift]:
            lens = ref_lens if kernel == "reference" else args.len
            if not lens:
                continue
            cmd, env = command(kernel, causal, backward, lens, args)
            for attempt in range(args.retries + 1):
                res[(causal, backward, kernel)] = out = run_json(cmd, env, log)
                if args.max_others <= 0 or out["others_cores"] <= args.max_others or attempt == args.retries:
                    break
                log(f"  other processes used {out['others_cores']:.2f} cores (> {args.max_others}): again in 60 s")
                time.sleep(60)
    return res


def medians(rounds, args):
    """{(causal, backward, kernel, L): {metric: median over rounds}}; skipped or absent lengths are
    left out."""
    med = {}
    for (causal, backward) in CONFIGS:
        for kernel in KERNELS:
            for L in args.len:
                rows = [x for r in rounds for x in r.get((causal, backward, kernel), {"results": []})["results"]
                        if x["len"] == L and "skipped" not in x]
                if rows:
                    med[(causal, backward, kernel, L)] = {
                        k: statistics.median(x[k] for x in rows)
                        for k in ("median_ms", "min_ms", "gflops", "peak_extra_mib")}
                    med[(causal, backward, kernel, L)]["spread_ms"] = (
                        min(x["median_ms"] for x in rows), max(x["median_ms"] for x in rows))
    return med


def fmt(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 1 else f"{v:.2f}"


def config_table(causal, backward, med, peak, args):
    head = ("| L | fused ms | fused GFLOP/s (% peak) | fused MiB | reference ms | reference GFLOP/s "
            "(% peak) | reference MiB | torch ms | torch GFLOP/s (% peak) | torch MiB | "
            "fused vs torch | fused vs reference |" + (" causal / non-causal time (fused, torch) |" if causal else ""))
    rows = [head, "|" + "---:|" * (head.count("|") - 1)]
    for L in args.len:
        cells = [str(L)]
        for kernel in KERNELS:
            m = med.get((causal, backward, kernel, L))
            if m is None:
                cells += ["—", "skipped" if kernel != "fused" else "—", "—"]
                continue
            cells += [fmt(m["median_ms"]), f"{fmt(m['gflops'])} ({100 * m['gflops'] / peak:.0f}%)",
                      fmt(m["peak_extra_mib"])]
        f = med.get((causal, backward, "fused", L))
        for other in ("torch", "reference"):
            o = med.get((causal, backward, other, L))
            cells.append(f"{o['median_ms'] / f['median_ms']:.1f}x" if f and o else "—")
        if causal:
            ratios = []
            for kernel in ("fused", "torch"):
                a, b = med.get((True, backward, kernel, L)), med.get((False, backward, kernel, L))
                ratios.append(f"{a['median_ms'] / b['median_ms']:.2f}" if a and b else "—")
            cells.append(", ".join(ratios))
        rows.append("| " + " | ".join(cells) + " |")
    return f"**{config_name(causal, backward)}**\n\n" + "\n".join(rows) + "\n"


def targets(med, peak, args):
    """Lines on the issue's targets, from the medians."""
    lines = []

    def get(causal, backward, kernel, L):
        return med.get((causal, backward, kernel, L))

    pcts = [(causal, L, 100 * get(causal, False, "fused", L)["gflops"] / peak)
            for causal in (False, True) for L in args.len if L >= 1024 and get(causal, False, "fused", L)]
    if pcts:
        worst = min(p for _, _, p in pcts)
        lines.append(f"fused forward >= 50% of the FMA peak at L >= 1024: "
                     f"{'met' if worst >= 50 else '**missed**'} (lowest {worst:.0f}%: "
                     + ", ".join(f"{'causal' if c else 'non-causal'} L {L} {p:.0f}%" for c, L, p in pcts) + ")")
    sp = [(causal, get(causal, True, "torch", 2048)["median_ms"] / get(causal, True, "fused", 2048)["median_ms"])
          for causal in (False, True) if get(causal, True, "torch", 2048) and get(causal, True, "fused", 2048)]
    if sp:
        lines.append(f"fused forward + backward >= 4x faster than torch at L = 2048: "
                     f"{'met' if min(s for _, s in sp) >= 4 else '**missed**'} ("
                     + ", ".join(f"{'causal' if c else 'non-causal'} {s:.1f}x" for c, s in sp) + ")")
    Lmax = max(args.len)
    mems = [(causal, get(causal, True, "fused", Lmax)["peak_extra_mib"]) for causal in (False, True)
            if get(causal, True, "fused", Lmax)]
    if mems:
        # peak_extra counts what a step allocates afresh: the output and the three gradients that
        # backward hands to .grad (4 tensors of B H L D floats) are part of it; the target excludes them.
        io_mib = 4 * args.batch * args.heads * Lmax * args.dim * 4 / 2**20
        beyond = max(0.0, max(m for _, m in mems) - io_mib)
        growth = ", ".join(f"{L}: {fmt(get(False, True, 'fused', L)['peak_extra_mib'])}"
                           for L in args.len if get(False, True, "fused", L))
        lines.append(f"fused forward + backward memory at L = {Lmax}"
                     f"{' (the target is at 8192)' if Lmax != 8192 else ''}: {max(m for _, m in mems):.0f} MiB "
                     f"above the resident inputs and gradients, of which {io_mib:.0f} MiB are the output and "
                     f"the fresh gradients (4 B H L D floats), leaving {beyond:.0f} MiB = "
                     f"{beyond * 2**20 / 1e6:.0f} MB: {'met' if beyond * 2**20 / 1e6 <= 100 else '**missed**'} "
                     f"(<= 100 MB); non-causal by L (MiB): {growth}")
    halves = [(backward, L, get(True, backward, "fused", L)["median_ms"] / get(False, backward, "fused", L)["median_ms"])
              for backward in (False, True) for L in args.len
              if L >= 1024 and get(True, backward, "fused", L) and get(False, backward, "fused", L)]
    if halves:
        lines.append("fused causal / non-causal time at L >= 1024 (ideal ~0.5): "
                     + ", ".join(f"{'fwd+bwd' if b else 'fwd'} L {L} {x:.2f}" for b, L, x in halves))
    return lines


def rounds_per_len(raw, args):
    n = {L: sum(any(x["len"] == L for v in r.values() for x in v["results"]) for r in raw) for L in args.len}
    return ", ".join(f"{L}: {c}" for L, c in n.items())


def report(raw, args):
    med = medians(raw, args)
    focus_runs = [v for r in raw for k, v in r.items() if k[2] != "torch"]
    torch_runs = [v for r in raw for k, v in r.items() if k[2] == "torch"]
    measured = max(v["fma_peak_gflops"] for v in focus_runs)
    peak = args.fma_peak or measured
    every = [v for r in raw for v in r.values()]
    loads = [v["load1_before"] for v in every]
    others = [v["others_cores"] for v in every]
    stolen = [v["stolen_cores"] for v in every]
    parts = [config_table(c, b, med, peak, args) for c, b in CONFIGS]
    notes = [
        f"B {args.batch}, H {args.heads}, D {args.dim}, float32; medians over rounds "
        f"(kernels interleaved, order rotating; rounds per L: {rounds_per_len(raw, args)}); {args.threads} threads each; % peak: of "
        + (f"--fma-peak {peak:g} GFLOP/s (the highest measured in these runs: {measured:.0f})" if args.fma_peak else
           f"the highest FMA peak focus measured in these runs, {peak:.0f} GFLOP/s (load lowers it)")
        + f"; fused ISA {focus_runs[0]['isa'] if focus_runs else '?'}.",
        "GFLOP/s count visible (query, key) pairs only (4 D per pair forward, 14 D forward + "
        "backward), so a causal run is credited half the pairs; PyTorch computes the hidden half "
        "all the same. MiB: peak resident memory beyond Q, K, V, dO and the gradients during the "
        "timed runs (VmHWM minus VmRSS before them).",
        f"\"skipped\": the reference kernel beyond {args.ref_max_gb:g} GiB of estimated score "
        f"matrices, torch beyond {args.torch_max_gb:g} GiB (or 3/4 of the available memory).",
        f"1-minute load average before the runs: median {statistics.median(loads):.2f}, max "
        f"{max(loads):.2f}; CPU used by other processes during the runs: median "
        f"{statistics.median(others):.2f} cores, max {max(others):.2f} (of {os.cpu_count()}); "
        f"steal: median {statistics.median(stolen):.2f} cores, max {max(stolen):.2f}.",
    ]
    if torch_runs:
        t = torch_runs[0]
        notes.append(f"torch {t['torch']}: OpenBLAS core {t['blas_core']}, OMP_WAIT_POLICY="
                     f"{t['OMP_WAIT_POLICY']}; textbook attention (no fused kernel in 1.13).")
    return ("\n".join(parts) + "\n" + "\n".join(f"- {n}" for n in notes) + "\n\nTargets:\n\n"
            + "\n".join(f"- {t}" for t in targets(med, peak, args)) + "\n")


def from_key(key):
    causal, backward, kernel = key
    return f"{'causal' if causal else 'noncausal'}/{'fwdbwd' if backward else 'fwd'}/{kernel}"


def to_key(name):
    causal, backward, kernel = name.split("/")
    return causal == "causal", backward == "fwdbwd", kernel


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build", help="build directory (focus)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--len", default="128,512,1024,2048,4096,8192", help="sequence lengths")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=0,
                    help="timed runs per length and program (0: the programs' own, 3..50 by size)")
    ap.add_argument("--ref-max-gb", type=float, default=12.0,
                    help="run the reference kernel only where the score matrices need at most this (GiB)")
    ap.add_argument("--torch-max-gb", type=float, default=12.0, help="attention_torch.py --max-mem-gb")
    ap.add_argument("--max-load", type=float, default=0, help="wait for load1 < this before each round (0: don't)")
    ap.add_argument("--max-wait", type=float, default=2400, help="seconds to wait for --max-load at most")
    ap.add_argument("--max-others", type=float, default=0,
                    help="repeat a run during which other processes used more cores than this (0: don't)")
    ap.add_argument("--retries", type=int, default=2, help="repeats allowed per run for --max-others")
    ap.add_argument("--fma-peak", type=float, default=0,
                    help="GFLOP/s for %% peak (0: the highest FMA peak focus measures during the runs)")
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--json-out", help="write every run's raw JSON here")
    ap.add_argument("--from-json", nargs="+", metavar="RAW",
                    help="run nothing: print the tables of these --json-out files, rounds pooled")
    args = ap.parse_args()
    args.len = [int(x) for x in args.len.split(",")]
    if args.from_json:
        raw = [{to_key(k): v for k, v in r.items()} for path in args.from_json
               for r in json.load(open(path))["rounds"]]
        print(report(raw, args))
        return
    if not os.access(os.path.join(args.build, "focus"), os.X_OK):
        raise SystemExit(f"compare_attention: {args.build}/focus missing (build first: make build)")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    raw = []
    for r in range(args.rounds):
        if args.max_load > 0:
            compare.wait_for_quiet(args.max_load, args.max_wait, log)
        log(f"round {r + 1}/{args.rounds} (load {compare.load1():.2f})")
        raw.append(one_round(r, args, log))
        if args.json_out:  # after every round: an interrupted session keeps its finished rounds
            with open(args.json_out, "w") as f:
                json.dump({"args": vars(args), "rounds": [{from_key(k): v for k, v in r.items()} for r in raw]},
                          f, indent=1)
    md = report(raw, args)
    print(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md)


if __name__ == "__main__":
    main()
