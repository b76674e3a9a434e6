#!/usr/bin/python3
"""cnn_se training at batch 128, focus next to PyTorch 1.13, for the convolution kernel choice:
runs bench_models (focus's default, and once per --focus-conv value with FOCUS_CONV set) and
bench/torch_models.py in turns, the order rotating with the round, several rounds, and prints the
medians over rounds of wall images/s (each run's median step) and of images per CPU-second (the
process's CPU time over the timed steps, all threads: the steadier figure when other processes
load the machine), with focus/torch ratios. Each program verifies that its training loss falls
before it times (bench_models.cpp, torch_models.py). The 1-minute load average before each run
and the cores other processes used during it are printed and kept in --json-out.
Usage: /usr/bin/python3 bench/compare_cnn_train.py --build build [--rounds 5] [--iters 10]
       [--focus-conv im2col] [--json-out raw.json]
"""
import argparse
import json
import os
import statistics
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH_PY = "/usr/bin/python3"


def busy_cores_s():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:8]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def run(name, cmd, env_extra):
    env = dict(os.environ, **env_extra)
    load = os.getloadavg()[0]
    t0, busy0, own0 = time.time(), busy_cores_s(), os.times()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=os.path.dirname(HERE))
    wall = time.time() - t0
    own1 = os.times()
    own = (own1.children_user + own1.children_system) - (own0.children_user + own0.children_system)
    if p.returncode != 0:
        raise SystemExit(f"{name} failed ({p.returncode}):\n{p.stderr}")
    t = json.loads(p.stdout)["train"]
    others = max(0.0, (busy_cores_s() - busy0 - own) / wall)
    r = {"name": name, "images_per_s": t["images_per_s"],
         "images_per_cpu_s": t["batch"] / (t["cpu_ms_per_step"] * 1e-3),
         "load1_before": load, "others_cores": others}
    print(f"  {name:24s} {r['images_per_s']:8.1f} images/s  {r['images_per_cpu_s']:8.1f} images/CPU-s"
          f"  (load before {load:.2f}, others {others:.2f} cores)", flush=True)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--focus-conv", action="append", default=[], help="extra focus runs with FOCUS_CONV=VALUE")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    common = ["--model", "cnn_se", "--batch", "128", "--infer-batch", "1", "--iters", str(args.iters),
              "--threads", str(args.threads), "--json"]
    runs = [("focus", [os.path.join(args.build, "bench_models")] + common, {})]
    runs += [(f"focus FOCUS_CONV={k}", [os.path.join(args.build, "bench_models")] + common, {"FOCUS_CONV": k})
             for k in args.focus_conv]
    runs.append(("torch", [TORCH_PY, os.path.join(HERE, "torch_models.py")] + common,
                 {"OMP_WAIT_POLICY": "PASSIVE"}))
    res = {name: [] for name, _, _ in runs}
    for rnd in range(args.rounds):
        print(f"round {rnd + 1}/{args.rounds}", flush=True)
        k = rnd % len(runs)
        for name, cmd, env in runs[k:] + runs[:k]:
            res[name].append(run(name, cmd, env))
    med = {n: {m: statistics.median(r[m] for r in rs) for m in ("images_per_s", "images_per_cpu_s")}
           for n, rs in res.items()}
    print(f"\ncnn_se training, batch 128, {args.threads} threads, medians of {args.rounds} interleaved rounds")
    print("| run | images/s | images/CPU-s | / torch (wall) | / torch (CPU) | spread images/s (min..max) |")
    print("|---|---:|---:|---:|---:|---|")
    for n, rs in res.items():
        w = [r["images_per_s"] for r in rs]
        print(f"| {n} | {med[n]['images_per_s']:,.0f} | {med[n]['images_per_cpu_s']:,.0f} | "
              f"{med[n]['images_per_s'] / med['torch']['images_per_s']:.2f} | "
              f"{med[n]['images_per_cpu_s'] / med['torch']['images_per_cpu_s']:.2f} | {min(w):,.0f}..{max(w):,.0f} |")
    loads = [r["load1_before"] for rs in res.values() for r in rs]
    others = [r["others_cores"] for rs in res.values() for r in rs]
    print(f"\nload1 before runs: median {statistics.median(loads):.2f}, max {max(loads):.2f}; "
          f"other processes: median {statistics.median(others):.2f} cores, max {max(others):.2f}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
