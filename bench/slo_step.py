#!/usr/bin/python3
"""Issue 22's controller benchmark: a load step from 50% to 150% of the f32 variant's capacity
against `focus serve`, once with the model fixed in f32 and once with the latency SLO controller
(--slo-p99-ms: the default ladder, f32 then int8, and early shedding), same model file, same machine,
the two configurations alternated round by round.

Protocol: the f32 server's capacity (wrk, closed loop, --sat-conns connections, batch-1 V2
requests over 256 Fashion-MNIST test images); then for each configuration a fresh server and
--windows windows of --window-s seconds at 50% of that capacity followed by --windows windows at
150% (open loop, Poisson arrivals, build/serve_load, latency from each request's scheduled send
time). Per window: the p99 of the answered (200) requests, their rate, the refusals (429) and the
controller's rung (from /metrics). The figure of merit: the share of windows whose p99 is within
the SLO, with and without the controller, and the goodput during the step.
Usage: /usr/bin/python3 bench/slo_step.py [--build build] [--model FILE] [--slo-ms 20]
       [--window-s 5] [--windows 6] [--rounds 1] [--json FILE]
"""
import argparse
import json
import os
import re

import serve_common as sc


def rung_of(server, secret):
    _, body = sc.request(server.port, "GET", "/metrics", headers={"X-API-Key": secret})
    m = re.search(r'focus_slo_rung\{model="m"\} (\d+)', body if isinstance(body, str) else "")
    return int(m.group(1)) if m else 0


def step(a, focus, keys, secret, bodies, model, cap, with_slo):
    extra = (["--slo-p99-ms", str(a.slo_ms), "--slo-window-ms", "1000"]
             if with_slo else [])
    name = "controller" if with_slo else "fixed_f32"
    srv = sc.Server(name, lambda port: [focus, "serve", "--host", "127.0.0.1", "--port", str(port),
                                        "--keys", keys, "--model", f"m={model}"] + extra, a.work)
    load = os.path.join(a.build, "serve_load")
    windows = []
    try:
        for level in [0.5] * a.windows + [1.5] * a.windows:
            r = sc.open_loop(load, srv, "/v2/models/m/infer", bodies, secret, level * cap, a.conns,
                             a.window_s, 0, len(windows) + 1)
            w = {"level": level, "ok_per_s": r.get("ok_per_s", 0), "p99_ms": r["latency_ms_ok"].get("p99"),
                 "counts": r["by_status"], "rung": rung_of(srv, secret) if with_slo else 0,
                 "alive": r["alive_after"]}
            windows.append(w)
            sc.log(f"{name} {level:.1f}x: {w['ok_per_s']:.0f} ok/s, p99 {w['p99_ms']} ms, rung {w['rung']}, "
                   f"counts {w['counts']}")
    finally:
        srv.stop()
    return windows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default="build")
    p.add_argument("--work", default="build/slo-bench")
    p.add_argument("--model", default="")
    p.add_argument("--slo-ms", type=float, default=20)
    p.add_argument("--window-s", type=float, default=5)
    p.add_argument("--windows", type=int, default=6)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--sat-conns", type=int, default=64)
    p.add_argument("--conns", type=int, default=256)
    p.add_argument("--json", default="")
    a = p.parse_args()
    os.makedirs(a.work, exist_ok=True)
    focus = os.path.join(a.build, "focus")
    model = a.model or sc.ensure_models(focus, a.work, ["cnn_se"], 1, 3000)["cnn_se"]
    keys, secret = sc.make_key(focus, a.work)
    bodies = os.path.join(a.work, "bodies.jsonl")
    with open(bodies, "w") as fh:
        for img in sc.test_images(256):
            fh.write(sc.v2_body([img]) + "\n")
    sc.log(f"model {model}, SLO p99 {a.slo_ms} ms, load {os.getloadavg()[0]:.2f}")
    srv = sc.Server("capacity", lambda port: [focus, "serve", "--host", "127.0.0.1", "--port", str(port),
                                              "--keys", keys, "--model", f"m={model}"], a.work)
    sc.wrk(srv, "/v2/models/m/infer", bodies, secret, a.sat_conns, 2)
    cap = sc.wrk(srv, "/v2/models/m/infer", bodies, secret, a.sat_conns, 5)["ok_per_s"]
    srv.stop()
    sc.log(f"f32 capacity {cap:.0f} req/s")
    res = {"model": model, "slo_ms": a.slo_ms, "capacity": cap, "window_s": a.window_s, "rounds": []}
    for r in range(a.rounds):
        rnd = {}
        for with_slo in (False, True):
            rnd["controller" if with_slo else "fixed_f32"] = step(a, focus, keys, secret, bodies, model, cap, with_slo)
        res["rounds"].append(rnd)
    print(f"\nSLO p99 {a.slo_ms:g} ms, f32 capacity {cap:.0f} req/s, {a.windows} windows of {a.window_s:g} s "
          f"at 50% then {a.windows} at 150%, {a.rounds} round(s), load {os.getloadavg()[0]:.2f} after\n")
    print("| configuration | phase | windows within SLO | median p99 ms | answered req/s | refused (429) |")
    print("|---|---|---:|---:|---:|---:|")
    for name in ("fixed_f32", "controller"):
        for level in (0.5, 1.5):
            ws = [w for rnd in res["rounds"] for w in rnd[name] if w["level"] == level]
            ok = [w for w in ws if w["p99_ms"] is not None and w["p99_ms"] <= a.slo_ms]
            p99s = sorted(w["p99_ms"] for w in ws if w["p99_ms"] is not None)
            med = p99s[len(p99s) // 2] if p99s else float("nan")
            rate = sum(w["ok_per_s"] for w in ws) / max(1, len(ws))
            refused = sum(w["counts"].get("429", 0) for w in ws)
            total = sum(sum(w["counts"].values()) for w in ws)
            print(f"| {name} | {int(level * 100)}% | {len(ok)}/{len(ws)} | {med:.1f} | {rate:.0f} | "
                  f"{100 * refused / max(1, total):.1f}% |")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
