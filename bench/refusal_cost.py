#!/usr/bin/python3
"""What one refusal costs in CPU, server side and client side (issue 18's 10x-overload targets).

`focus serve` (one model of the serving benchmark's work folder, bench/compare_serve.py) gets a
fixed-rate open-loop run of build/serve_load whose every request is refused on the event thread:
  --kind 401: a wrong key (refused from the headers, the body dropped unread);
  --kind 429: the right key and --queue-capacity 1, far above capacity (queue_full from the
             headers; the few admitted requests are computed and answered 200, so their cost is in
             the figure too: the table says how many there were).
For each --rates R: the server's utime + stime (/proc/PID/stat) over the run, serve_load's own CPU
seconds, the requests answered, and per answered refusal the server's (less the served requests'
share, --sat-cores / --capacity per 200) and the client's (per request) microseconds of CPU. Then the arithmetic of the 10x target: at 10x capacity C (10 C offered), the
server computing 0.9 C and refusing the other 9.1 C, the cores that refusals and the client take
beside the compute.
Usage: /usr/bin/python3 bench/refusal_cost.py [--build build] [--model cnn_se] [--kind 401]
       [--rates 2000,5000,10000] [--seconds 6] [--capacity 3244] [--focus-args '...']
"""
import argparse
import json
import os
import subprocess
import time

import serve_common as sc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(sc.ROOT, "build"))
    ap.add_argument("--work", help="the serving benchmark's folder (default BUILD/serve-bench)")
    ap.add_argument("--model", default="cnn_se")
    ap.add_argument("--kind", choices=["401", "429"], default="401")
    ap.add_argument("--rates", default="2000,5000,10000")
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--connections", type=int, default=1024)
    ap.add_argument("--capacity", type=float, default=3244,
                    help="req/s the server answers at saturation (for the 10x arithmetic; default: cnn_se, "
                         "docs/BENCHMARKS.md, run of 2026-12-07 07:44 UTC)")
    ap.add_argument("--sat-cores", type=float, default=1.31,
                    help="the server's cores at that capacity (saturation run): with --capacity, its CPU "
                         "per served request")
    ap.add_argument("--focus-args", default="")
    ap.add_argument("--json")
    a = ap.parse_args()
    served_us = 1e6 * a.sat_cores / a.capacity  # server CPU per served request
    work = a.work or os.path.join(a.build, "serve-bench")
    model = os.path.join(work, a.model, "model_best.safetensors")
    bodies = os.path.join(work, "bodies.jsonl")
    for f in (model, bodies):
        if not os.path.exists(f):
            raise SystemExit(f"refusal_cost: {f} is missing: run bench/compare_serve.py --quick once")
    own = os.path.join(work, "refusal-cost")  # its own key file: a benchmark may be using work's
    os.makedirs(own, exist_ok=True)
    keys, secret = sc.make_key(os.path.join(a.build, "focus"), own)
    extra = a.focus_args.split() + (["--queue-capacity", "1"] if a.kind == "429" else [])
    srv = sc.Server("focus-refusals", lambda port: [os.path.join(a.build, "focus"), "serve", "--host", "127.0.0.1",
                                                   "--port", str(port), "--keys", keys, "--model",
                                                   f"{a.model}={model}"] + extra, own)
    key = "fk_wrong" if a.kind == "401" else secret
    rows = []
    try:
        for rate in [float(r) for r in a.rates.split(",")]:
            srv.wait_quiet()
            cpu0, t0 = srv.cpu(), time.time()
            cmd = [os.path.join(a.build, "serve_load"), "--port", str(srv.port), "--path",
                   f"/v2/models/{a.model}/infer", "--header", f"X-API-Key: {key}", "--body-file", bodies,
                   "--rate", str(rate), "--connections", str(a.connections), "--duration", str(a.seconds),
                   "--warmup", "0", "--timeout", "10", "--arrivals", "constant"]
            p = subprocess.run(cmd, capture_output=True, text=True, check=True)
            r = json.loads(p.stdout)
            srv.wait_quiet()  # its backlog is part of the cost
            server_s, wall = srv.cpu() - cpu0, time.time() - t0
            st = r["by_status"]
            refused = st.get("other", 0) + st.get("429", 0) + st.get("503", 0)
            ok = st.get("200", 0)
            rows.append({"rate": rate, "refused": refused, "ok": ok, "unsent": st.get("unsent", 0),
                         "server_cpu_s": server_s, "client_cpu_s": r["client_cpu_s"], "wall_s": wall,
                         "server_us_per_refusal": (1e6 * server_s - served_us * ok) / max(1, refused),
                         "client_us_per_refusal": 1e6 * r["client_cpu_s"] / max(1, refused + ok),
                         "reject_p99_from_send_ms": (r.get("service_ms_reject") or {}).get("p99"),
                         "load1": os.getloadavg()[0]})
            sc.log(json.dumps(rows[-1]))
    finally:
        srv.stop()
    print(f"Refusal cost, {a.kind}, model {a.model}, focus flags '{a.focus_args}', "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.2f} after\n")
    print("| offered req/s | refused | 200 | unsent | server CPU s | client CPU s | server us / refusal "
          "| client us / request | refusal p99 from send ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in rows:
        print(f"| {w['rate']:,.0f} | {w['refused']:,} | {w['ok']:,} | {w['unsent']:,} | {w['server_cpu_s']:.2f} | "
              f"{w['client_cpu_s']:.2f} | {w['server_us_per_refusal']:.1f} | {w['client_us_per_refusal']:.1f} | "
              + (f"{w['reject_p99_from_send_ms']:.2f}" if w['reject_p99_from_send_ms'] is not None else '-') + " |")
    # The 10x arithmetic with the highest-rate row's unit costs: serving x req/s of the 10 C offered
    # takes x * served_us + (10 C - x) * refusal_us on the server and 10 C * client_us on the client.
    w = max(rows, key=lambda x: x["rate"])
    offered, served = 10 * a.capacity, 0.9 * a.capacity
    ref_us, cli_us = w["server_us_per_refusal"], w["client_us_per_refusal"]
    srv_cores = (offered - served) * ref_us / 1e6
    cli_cores = offered * cli_us / 1e6
    serve_cores = served * served_us / 1e6
    most = (2 - cli_cores - offered * ref_us / 1e6) / ((served_us - ref_us) / 1e6)
    print(f"\nAt 10x of {a.capacity:,.0f} req/s ({offered:,.0f} offered), serving 90% ({served:,.0f} req/s x "
          f"{served_us:.0f} us = {serve_cores:.2f} cores) and refusing {offered - served:,.0f} a second x "
          f"{ref_us:.1f} us = {srv_cores:.2f} cores, with the client at {offered:,.0f} x {cli_us:.1f} us = "
          f"{cli_cores:.2f} cores: {serve_cores + srv_cores + cli_cores:.2f} cores of the machine's 2. "
          f"Two cores serve at most {max(0, most):,.0f} req/s = {max(0, most) / a.capacity:.0%} of capacity.")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"kind": a.kind, "model": a.model, "focus_args": a.focus_args, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
