#!/usr/bin/python3
"""focus next to PyTorch 1.13 on explanation latency (one image at a time): runs
build/explain_bench (default ViT and cnn_se, random weights) and bench/explain_torch.py (the same
architectures from bench/torch_models.py, explained the way a PyTorch user does it) in turns for
several rounds and prints a markdown table of the median milliseconds per method with the
torch/focus ratio (> 1: focus is faster). Each program verifies its explanations before timing.
  /usr/bin/python3 bench/compare_explain.py --build build [--rounds 3] [--threads 2] [--out t.md]
"""
import argparse
import os
import statistics
import sys

from compare import TORCH_ENV, TORCH_PY, load1, note_machine, run_json, write_outputs

HERE = os.path.dirname(os.path.abspath(__file__))


def times(run):
    return {(m["model"].split("(")[0], k): v["explain_ms"]
            for m in run["image"] for k, v in m["methods"].items()}


def table(runs, args, loads, others, stolen):
    keys = sorted(times(runs[0]["torch"]).keys())
    rows = ["| model | method | focus ms | torch ms | torch/focus |", "|---|---|---:|---:|---:|"]
    for k in keys:
        f = statistics.median(times(r["focus"])[k] for r in runs)
        t = statistics.median(times(r["torch"])[k] for r in runs)
        rows.append(f"| {k[0]} | {k[1]} | {f:.2f} | {t:.2f} | {t / f:.2f} |")
    notes = [f"Medians over {len(runs)} rounds of the per-run medians ({args.reps} calls each), "
             f"{args.threads} threads each, batch 1, default model configs, random weights.",
             f"1-minute load average before the runs: median {statistics.median(loads):.2f}; CPU "
             f"used by other processes: median {statistics.median(others):.2f} cores; steal: median "
             f"{statistics.median(stolen):.2f} cores."]
    return "\n".join(rows) + "\n\n" + "\n".join(f"- {s}" for s in notes) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("--json-out", help="write every run's raw JSON here")
    args = ap.parse_args()
    bench = os.path.join(args.build, "explain_bench")
    if not os.access(bench, os.X_OK):
        raise SystemExit(f"compare_explain: {bench} missing (build first)")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    common = ["--reps", str(args.reps), "--threads", str(args.threads), "--json"]
    jobs = {"focus": ([bench] + common, {}),
            "torch": ([TORCH_PY, os.path.join(HERE, "explain_torch.py")] + common, TORCH_ENV)}
    runs, loads, others, stolen = [], [], [], []
    for r in range(args.rounds):
        log(f"round {r + 1}/{args.rounds} (load {load1():.2f})")
        order = ["focus", "torch"] if r % 2 == 0 else ["torch", "focus"]
        res = {fw: run_json(*jobs[fw], log) for fw in order}
        runs.append(res)
        note_machine(res, loads, others, stolen)
    write_outputs(table(runs, args, loads, others, stolen), runs, args)


if __name__ == "__main__":
    main()
