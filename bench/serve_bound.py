#!/usr/bin/env python3
"""The p99 an ideal batching server could reach at 80% of its capacity (issue 18's target: <= 3x
its unloaded p50), from the model's measured cost, by simulation.

The ideal server: E executors (one per core), each running one batch at a time to completion
with nothing else on its core: no HTTP threads, no load generator, no other process, no context
switches. A request costs H microseconds of CPU outside the model (HTTP, decoding, the answer:
fitted from the real server's CPU per request) plus the model's time per image at the batch's
size (measured here, on one thread, by build/bench_models). Poisson arrivals; a free executor
takes the oldest requests under a batch policy. Latency = the wait + the batch's time + L0, the
part of the unloaded latency that is not server CPU (loopback, client), from the measured
unloaded p50. Each policy's capacity is its saturation throughput; the p99 is taken at 50% and
80% of it. The real server can only be slower: this is a bound, not a prediction.

    /usr/bin/python3 bench/serve_bound.py --build build --model cnn_se --unloaded-p50-ms 1.12 \\
        --overhead-us 170 [--cores 2,4,8]
"""
import argparse
import collections
import random
import re
import subprocess
import sys

BATCHES = [1, 2, 4, 8, 16, 32, 64]


def measure_table(build, model):
    """Images/s by batch size, one thread (bench_models' inference rows)."""
    out = subprocess.run([f"{build}/bench_models", "--model", model, "--skip-train", "--infer-batch",
                          ",".join(map(str, BATCHES)), "--threads", "1", "--iters", "20"],
                         check=True, capture_output=True, text=True).stdout
    table = {int(b): float(r) for b, r in re.findall(r"inference batch\s+(\d+):\s+([\d.]+) images/s", out)}
    if sorted(table) != BATCHES:
        sys.exit(f"serve_bound: could not read bench_models' inference rows:\n{out}")
    return table


def per_image_s(table, b):
    return 1.0 / table[max(k for k in table if k <= b)]


POLICIES = {  # name -> (batch size from (queue length, head's wait s), batch size at saturation)
    "no batching": (lambda q, w: 1, 1),
    "fixed 4": (lambda q, w: 4, 4),
    "all queued, <= 64": (lambda q, w: 64, 64),
    "half the queue, <= 8": (lambda q, w: min(8, (q + 1) // 2), 8),
    "1 + wait / 0.5 ms, <= 8": (lambda q, w: min(8, 1 + int(w / 0.5e-3)), 8),
    "4 when > 4 queued, else 1": (lambda q, w: 4 if q > 4 else 1, 4),
}


def simulate(table, h, l0, lam, policy, executors, n, seed):
    rng = random.Random(seed)
    t, arrivals = 0.0, []
    for _ in range(n):
        t += rng.expovariate(lam)
        arrivals.append(t)
    free = [0.0] * executors
    queue = collections.deque()
    lat, i = [], 0
    while i < n or queue:
        e = min(range(executors), key=free.__getitem__)
        now = free[e]
        while i < n and arrivals[i] <= now:
            queue.append(arrivals[i])
            i += 1
        if not queue:
            free[e] = arrivals[i]
            continue
        b = max(1, min(len(queue), policy(len(queue), now - queue[0])))
        took = b * (h + per_image_s(table, b))
        for _ in range(b):
            lat.append(now + took - queue.popleft() + l0)
        free[e] = now + took
    lat.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build", help="where bench_models is")
    ap.add_argument("--model", default="cnn_se")
    ap.add_argument("--table", help="images/s by batch instead of measuring: 1:3158,2:3653,...")
    ap.add_argument("--overhead-us", type=float, required=True, help="server CPU per request outside the model")
    ap.add_argument("--unloaded-p50-ms", type=float, required=True, help="the real server's, measured")
    ap.add_argument("--cores", default="2", help="executors (one per core) to simulate, comma-separated")
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    table = ({int(k): float(v) for k, v in (x.split(":") for x in a.table.split(","))} if a.table
             else measure_table(a.build, a.model))
    if 1 not in table:
        sys.exit("serve_bound: the table needs batch 1")
    h, p50u = a.overhead_us * 1e-6, a.unloaded_p50_ms * 1e-3
    l0 = p50u - h - per_image_s(table, 1)
    if l0 < 0:
        sys.exit(f"serve_bound: the unloaded p50 {a.unloaded_p50_ms} ms is below one request's CPU")
    print(f"{a.model}: images/s by batch, one thread: " + ", ".join(f"{k}: {v:.0f}" for k, v in sorted(table.items())))
    print(f"overhead {a.overhead_us:.0f} us/request, unloaded p50 {a.unloaded_p50_ms:.2f} ms "
          f"(server CPU {1e3 * (h + per_image_s(table, 1)):.2f} ms + L0 {1e3 * l0:.2f} ms); target p99 <= "
          f"{3 * a.unloaded_p50_ms:.2f} ms")
    print("| cores | policy | capacity req/s | p99 at 50%, ms | p99 at 80%, ms | p99 at 80% / unloaded p50 |")
    print("|---:|---|---:|---:|---:|---:|")
    for cores in (int(c) for c in a.cores.split(",")):
        for name, (policy, bsat) in POLICIES.items():
            cap = cores / (h + per_image_s(table, bsat))
            _, p99_50 = simulate(table, h, l0, 0.5 * cap, policy, cores, a.requests, a.seed)
            _, p99_80 = simulate(table, h, l0, 0.8 * cap, policy, cores, a.requests, a.seed)
            print(f"| {cores} | {name} | {cap:,.0f} | {1e3 * p99_50:.2f} | {1e3 * p99_80:.2f} | "
                  f"**{p99_80 / p50u:.1f}x** |")


if __name__ == "__main__":
    main()
