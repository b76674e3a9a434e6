#!/usr/bin/python3
"""The serving benchmark of issue 18: `focus serve` next to its Python twin (bench/serve_twin.py:
FastAPI + uvicorn + PyTorch 1.13) on the same model files, same machine, same run, interleaved.

Protocol, for each model (cnn_se, vit; both served by each server, one model loaded at a time):
 0. Model files: work/<m>/model_best.safetensors, trained when missing by `focus train` for
    --epochs (1) on --limit-train (3000) images (a short run: serving speed does not depend on
    accuracy). A fresh key (`focus keys create`, roles infer,metrics); the twin gets the same
    secret. Both servers start on free loopback ports and must be ready.
 1. Verify first: the first --check (32) test images one by one, a batch of 8 and a PNG through
    /v1/models/{m}/classify give the same probabilities on both servers within --tol (1e-4
    absolute: both compute in F32, only summation orders differ); no key gives 401 on both.
 2. Warm-up: a short wrk run on each server, then the idle RSS of each.
 3. Saturation, --rounds interleaved (focus, twin, focus, twin, ...): wrk -t1 -c--sat-conns
    (64) for --sat-s seconds, batch-1 V2 infer requests over 256 different test images;
    capacity = the median over rounds of 200-answers per second.
 4. Latency, --rounds interleaved: build/serve_load (open loop, Poisson arrivals, latency from
    each request's scheduled send time) at a low rate (unloaded: min(20, 5% of capacity) req/s
    over 4 connections), then at 50%, 80%, 100% and 10x of each server's own capacity, and the
    twin also at focus's rates; --conns (256) connections, --overload-conns (1024) at 10x.
    Each run starts once the server is idle again (its CPU < 5% of a core).
 5. Targets (issue 18, on 2 cores): focus's capacity >= 3x the twin's with an equal or lower
    p99 at saturation (same connections); at 80% of capacity p99 <= 3x the unloaded p50; at 10x
    the server stays up, serves >= 90% of its capacity, answers rejections (429/503) within 5 ms
    p99 (from the request's first byte written: the server's accept queue counts, the client's
    wait for one of its C connections does not; the p99 from the scheduled time is shown too),
    and its peak RSS stays within 1.5x of its idle RSS.
--focus-nodelay (diagnosis, not focus as shipped) preloads bench/nodelay_shim.c into focus:
TCP_NODELAY on every accepted socket.
Prints a markdown table (medians over rounds; status counts summed over rounds) and the targets,
writes everything to --json. The machine's other load is recorded per run (busy cores beyond the
server, the client and this script; steal). --quick: 1 round of short runs (~3 minutes).
Usage: /usr/bin/python3 bench/compare_serve.py [--build build] [--quick] [--rounds 3]
       [--models cnn_se,vit] [--servers focus,twin] [--json FILE] [--out FILE]
"""
import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time

import serve_common as sc

LEVELS = [0.5, 0.8, 1.0, 10.0]
STATUSES = ["200", "429", "503", "504", "other", "timeout", "error", "unsent"]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(sc.ROOT, "build"))
    ap.add_argument("--work", help="model files, keys, logs (default BUILD/serve-bench)")
    ap.add_argument("--models", default="cnn_se,vit")
    ap.add_argument("--servers", default="focus,twin", help="focus,twin | twin | focus")
    ap.add_argument("--quick", action="store_true", help="1 round of short runs (~3 minutes)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--sat-s", type=float, help="seconds of each saturation run")
    ap.add_argument("--run-s", type=float, help="measured seconds of each open-loop run")
    ap.add_argument("--warmup-s", type=float, help="unrecorded seconds before each open-loop run")
    ap.add_argument("--sat-conns", type=int, default=64)
    ap.add_argument("--conns", type=int, default=256)
    ap.add_argument("--overload-conns", type=int, default=1024)
    ap.add_argument("--twin-threads", type=int, default=1, help="torch threads of the twin")
    ap.add_argument("--twin-pool", type=int, default=40, help="FastAPI threadpool of the twin")
    ap.add_argument("--focus-nodelay", action="store_true",
                    help="diagnosis: run focus with bench/nodelay_shim.c preloaded (TCP_NODELAY on "
                         "every accepted socket)")
    ap.add_argument("--focus-args", default="", help="extra `focus serve` flags")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--limit-train", type=int, default=3000)
    ap.add_argument("--check", type=int, default=32)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--json", help="raw results (default WORK/serve_bench.json)")
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--render", metavar="JSON", help="print the tables of an earlier run's JSON")
    a = ap.parse_args()
    quick = {"rounds": 1, "sat_s": 3, "run_s": 2, "warmup_s": 0.5}
    full = {"rounds": 3, "sat_s": 8, "run_s": 6, "warmup_s": 1}
    for k, v in (quick if a.quick else full).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.work = a.work or os.path.join(a.build, "serve-bench")
    a.json = a.json or os.path.join(a.work, "serve_bench.json")
    a.models = a.models.split(",")
    a.servers = a.servers.split(",")
    return a


def start_servers(a, files, keys, secret):
    focus = os.path.join(a.build, "focus")
    key_file = os.path.join(a.work, "twin.key")
    with open(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(secret + "\n")
    specs = [f"{m}={p}" for m, p in files.items()]
    focus_env = {}
    if a.focus_nodelay:
        shim = os.path.join(a.work, "nodelay_shim.so")
        sc.run(["cc", "-O2", "-shared", "-fPIC", "-o", shim, os.path.join(sc.HERE, "nodelay_shim.c"),
                "-ldl"])
        focus_env["LD_PRELOAD"] = shim
    servers = []
    for name in a.servers:
        env = focus_env if name == "focus" else {}
        if name == "focus":
            cmd = lambda port: ([focus, "serve", "--host", "127.0.0.1", "--port", str(port),  # noqa: E731
                                 "--keys", keys] + sum((["--model", s] for s in specs), [])
                                + a.focus_args.split())
        else:
            cmd = lambda port: ([sc.PY, os.path.join(sc.HERE, "serve_twin.py"), "--port", str(port),  # noqa: E731
                                 "--key-file", key_file, "--threads", str(a.twin_threads),
                                 "--pool", str(a.twin_pool)]
                                + sum((["--model", s] for s in specs), []))
        sc.log(f"starting {name}")
        servers.append(sc.Server(name, cmd, a.work, env))
        sc.log(f"{name} ready on port {servers[-1].port}, RSS {servers[-1].rss_start:.0f} MiB")
    return servers


def probs_of(reply):
    return reply["outputs"][0]["data"]


def verify(servers, m, images, secret, a):
    """Same probabilities on every server (V2 singles, a batch, a PNG); 401 without a key."""
    hdr = {"X-API-Key": secret, "Content-Type": "application/json"}
    bodies = [sc.v2_body([img]) for img in images[:a.check]] + [sc.v2_body(images[:8])]
    got = {}
    for s in servers:
        out = []
        for b in bodies:
            st, r = sc.request(s.port, "POST", f"/v2/models/{m}/infer", b, hdr)
            if st != 200:
                raise SystemExit(f"compare_serve: {s.name} {m} infer -> {st} {r}")
            out.extend(probs_of(r))
        st, r = sc.request(s.port, "POST", f"/v1/models/{m}/classify?top=3", sc.png_gray(images[0]),
                           {"X-API-Key": secret, "Content-Type": "image/png"})
        if st != 200:
            raise SystemExit(f"compare_serve: {s.name} {m} classify -> {st} {r}")
        top = r["predictions"][0]["top"]
        st401, _ = sc.request(s.port, "POST", f"/v2/models/{m}/infer", bodies[0],
                              {"Content-Type": "application/json"})
        if st401 != 401:
            raise SystemExit(f"compare_serve: {s.name} answered {st401} to a request without a key")
        got[s.name] = (out, [(t["index"], t["prob"]) for t in top])
    names = list(got)
    report = {"values": len(got[names[0]][0]), "tol": a.tol, "max_abs_diff": 0.0}
    for other in names[1:]:
        x, y = got[names[0]][0], got[other][0]
        if len(x) != len(y):
            raise SystemExit(f"compare_serve: {names[0]} and {other} return {len(x)} / {len(y)} values")
        d = max(abs(u - v) for u, v in zip(x, y))
        (tx, ty) = got[names[0]][1], got[other][1]
        dp = max(abs(p - q) for (_, p), (_, q) in zip(tx, ty))
        if [i for i, _ in tx] != [i for i, _ in ty] or dp > a.tol or d > a.tol:
            raise SystemExit(f"compare_serve: {m}: {names[0]} and {other} differ: probabilities "
                             f"max |diff| {d:.3g}, classify top {tx} vs {ty} (tol {a.tol})")
        report["max_abs_diff"] = max(report["max_abs_diff"], d, dp)
    sc.log(f"{m}: {report['values']} probabilities and a PNG's top 3 agree across {names} "
           f"(max |diff| {report['max_abs_diff']:.2g} <= {a.tol}); no key -> 401 on each")
    return report


def med(runs, key, sub=None):
    vals = [(r[key][sub] if sub else r[key]) for r in runs
            if (r[key].get(sub) if sub else r.get(key)) is not None]
    return statistics.median(vals) if vals else None


def measure(servers, m, a, bodies, secret):
    path = f"/v2/models/{m}/infer"
    by = {s.name: s for s in servers}
    res = {"saturation": {s.name: [] for s in servers}, "runs": {}}
    for s in servers:  # warm-up, then the idle RSS
        sc.wrk(s, path, bodies, secret, a.sat_conns, 2)
        s.wait_quiet()
    res["idle_rss_mib"] = {s.name: s.rss() for s in servers}
    for r in range(a.rounds):
        for s in servers:
            s.wait_quiet()
            w = sc.wrk(s, path, bodies, secret, a.sat_conns, a.sat_s)
            res["saturation"][s.name].append(w)
            sc.log(f"{m} round {r + 1} {s.name} saturation: {w['ok_per_s']:.0f} req/s, p99 "
                   f"{w['p99_ms']:.1f} ms, server {w['server_cpu_cores']:.2f} cores, wrk "
                   f"{w['client_cpu_frac']:.2f}, non-2xx {w['non2xx']}, errors {w['errors']}")
    cap = {n: med(v, "ok_per_s") for n, v in res["saturation"].items()}
    res["capacity"] = cap
    plan = []  # (label, server, level, rate, connections)
    for s in servers:
        plan.append(("unloaded", s.name, None, min(20.0, 0.05 * cap[s.name]), 4))
    for level in LEVELS:
        conns = a.overload_conns if level > 1 else a.conns
        for s in servers:
            plan.append(("own", s.name, level, level * cap[s.name], conns))
        if "focus" in cap and "twin" in cap:
            plan.append(("focus_rate", "twin", level, level * cap["focus"], conns))
    for r in range(a.rounds):
        for label, name, level, rate, conns in plan:
            s = by[name]
            s.wait_quiet()
            x = sc.open_loop(os.path.join(a.build, "serve_load"), s, path, bodies, secret, rate,
                             conns, a.run_s, a.warmup_s, seed=r + 1)
            key = f"{name}:{label}:{level}"
            res["runs"].setdefault(key, []).append(x)
            lo, rj = x["latency_ms_ok"], x["latency_ms_reject"]
            sc.log(f"{m} round {r + 1} {key} @ {rate:.0f}/s: 200/s {x['ok_per_s']:.0f}, p50 "
                   f"{lo.get('p50', float('nan')):.2f} p99 {lo.get('p99', float('nan')):.2f} ms, "
                   f"rejects {rj['n']} (p99 {rj.get('p99', float('nan')):.2f}), {x['by_status']}, "
                   f"unsent {x['unsent_at_end']}, lag p99 {x['send_lag_ms'].get('p99', 0):.1f} ms, "
                   f"client {x['client_cpu_frac']:.2f} cores, server {x['server_cpu_cores']:.2f}, "
                   f"RSS peak {x['rss_peak_mib']:.0f}, alive {x['alive_after']}")
    res["rss_start_mib"] = {s.name: s.rss_start for s in servers}
    res["rss_end_mib"] = {s.name: s.rss() for s in servers}
    return res


def summarize(res):
    """Medians over rounds for each run kind; status counts summed."""
    out = {}
    for key, runs in res["runs"].items():
        counts = {k: sum(r["by_status"].get(k, 0) for r in runs) for k in STATUSES}
        out[key] = {
            "rate": med(runs, "rate"), "ok_per_s": med(runs, "ok_per_s"),
            "p50": med(runs, "latency_ms_ok", "p50"), "p99": med(runs, "latency_ms_ok", "p99"),
            "p50_all": med(runs, "latency_ms_all", "p50"), "p99_all": med(runs, "latency_ms_all", "p99"),
            "reject_p99": med(runs, "latency_ms_reject", "p99"),
            "reject_service_p99": med(runs, "service_ms_reject", "p99"),
            "service_p99": med(runs, "service_ms_ok", "p99"),
            "rejects": sum(r["latency_ms_reject"]["n"] for r in runs),
            "counts": counts,
            "lag_p99": med(runs, "send_lag_ms", "p99"),
            "client_cpu": med(runs, "client_cpu_frac"), "server_cpu": med(runs, "server_cpu_cores"),
            "rss_peak": max(r["rss_peak_mib"] for r in runs),
            "others": med([{"o": max(0.0, r["machine_busy_cores"] - r["server_cpu_cores"] -
                                     r["client_cpu_frac"])} for r in runs], "o"),
            "alive": all(r["alive_after"] for r in runs), "connections": runs[0]["connections"]}
    for name, runs in res["saturation"].items():
        out[f"{name}:saturation:None"] = {
            "ok_per_s": med(runs, "ok_per_s"), "p50": med(runs, "p50_ms"), "p99": med(runs, "p99_ms"),
            "non2xx": sum(r["non2xx"] for r in runs), "errors": sum(r["errors"] for r in runs),
            "client_cpu": med(runs, "client_cpu_frac"), "server_cpu": med(runs, "server_cpu_cores"),
            "rss_peak": max(r["rss_peak_mib"] for r in runs),
            "others": med([{"o": max(0.0, r["machine_busy_cores"] - r["server_cpu_cores"] -
                                     r["client_cpu_frac"])} for r in runs], "o")}
    return out


def f(v, nd=1):
    return "-" if v is None else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.{nd}f}")


def table(m, res, summ, sat_conns):
    rows = [f"**{m}** (capacities: " + ", ".join(f"{n} {f(c)} req/s" for n, c in res["capacity"].items())
            + "; RSS at start / idle after warm-up / at the end: "
            + ", ".join(f"{n} {f(res['rss_start_mib'][n])} / {f(v)} / {f(res['rss_end_mib'][n])} MiB"
                        for n, v in res["idle_rss_mib"].items()) + ")",
            "",
            "| server | load | offered req/s | conns | 200/s | p50 ms | p99 ms | reject p99 ms "
            "(from schedule / from send) | "
            "200 / 429 / 503 / 504 / other / timeout / error / unsent | server cores | client cores | "
            "peak RSS MiB | other load (cores) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    names = list(res["capacity"])
    for n in names:
        s = summ[f"{n}:saturation:None"]
        rows.append(f"| {n} | saturation (wrk, closed loop) | - | {sat_conns} | {f(s['ok_per_s'])} | "
                    f"{f(s['p50'], 2)} | {f(s['p99'], 2)} | - | non-2xx {s['non2xx']}, errors "
                    f"{s['errors']} | {f(s['server_cpu'], 2)} | {f(s['client_cpu'], 2)} | "
                    f"{f(s['rss_peak'])} | {f(s['others'], 2)} |")
    order = [(n, "unloaded", None) for n in names]
    for lv in LEVELS:
        order += [(n, "own", lv) for n in names]
    if "focus" in names and "twin" in names:
        order += [("twin", "focus_rate", lv) for lv in LEVELS]
    for n, label, lv in order:
        s = summ.get(f"{n}:{label}:{lv}")
        if s is None:
            continue
        what = ("unloaded" if label == "unloaded" else
                f"{lv:g}x own capacity" if label == "own" else f"{lv:g}x focus's capacity")
        c = s["counts"]
        p50, p99 = f(s["p50"], 2), f(s["p99"], 2)
        if c["unsent"]:  # requests never sent: all requests' latency, a lower bound
            p50, p99 = f">= {f(s['p50_all'], 2)}", f">= {f(s['p99_all'], 2)}"
        rows.append(f"| {n} | {what} | {f(s['rate'])} | {s['connections']} | {f(s['ok_per_s'])} | "
                    f"{p50} | {p99} | {f(s['reject_p99'], 2)} / {f(s['reject_service_p99'], 2)} | "
                    + " / ".join(str(c[k]) for k in STATUSES)
                    + f" | {f(s['server_cpu'], 2)} | {f(s['client_cpu'], 2)} | {f(s['rss_peak'])} | "
                    f"{f(s['others'], 2)} |")
    return rows


def targets(res, summ, srv="focus"):
    """The issue's targets for server `srv` -> list of (target, value, met)."""
    out = []
    cap = res["capacity"]
    if srv == "focus" and "twin" in cap:
        ratio = cap["focus"] / cap["twin"]
        p99f, p99t = summ["focus:saturation:None"]["p99"], summ["twin:saturation:None"]["p99"]
        out.append(("throughput >= 3x the twin's at equal or lower p99 (saturation)",
                    f"{ratio:.2f}x; p99 {f(p99f, 2)} vs {f(p99t, 2)} ms", ratio >= 3 and p99f <= p99t))
    un = summ.get(f"{srv}:unloaded:None")
    at80 = summ.get(f"{srv}:own:0.8")
    if un and at80 and un["p50"] and at80["p99"]:
        # With requests left unsent, the p99 of all requests (a lower bound), as in the table.
        p99 = at80["p99_all"] if at80["counts"]["unsent"] else at80["p99"]
        out.append(("p99 at 80% of capacity <= 3x unloaded p50",
                    f"{'>= ' if at80['counts']['unsent'] else ''}{f(p99, 2)} ms vs 3 x "
                    f"{f(un['p50'], 2)} = {f(3 * un['p50'], 2)} ms", p99 <= 3 * un["p50"]))
    ov = summ.get(f"{srv}:own:10.0")
    if ov:
        out.append(("10x overload: stays up", "alive" if ov["alive"] else "DOWN", ov["alive"]))
        out.append(("10x overload: serves >= 90% of capacity",
                    f"{f(ov['ok_per_s'])} req/s = {100 * ov['ok_per_s'] / cap[srv]:.0f}%",
                    ov["ok_per_s"] >= 0.9 * cap[srv]))
        rp, rs = ov["reject_p99"], ov["reject_service_p99"]
        out.append(("10x overload: rejections answered within 5 ms p99 (from the request's send)",
                    "no rejections" if rp is None else
                    f"{f(rs, 2)} ms from send, {f(rp, 2)} ms from its scheduled time "
                    f"({ov['rejects']} rejected)", rs is not None and rs <= 5))
        idle = res["idle_rss_mib"][srv]
        out.append(("10x overload: RSS within 1.5x of idle",
                    f"peak {f(ov['rss_peak'])} MiB / idle {f(idle)} MiB = {ov['rss_peak'] / idle:.2f}x",
                    ov["rss_peak"] <= 1.5 * idle))
    return out


def render(raw):
    """The markdown of a run's raw results (also --render FILE): header, tables, targets."""
    env = raw["env"]
    md = [f"Serving benchmark, {env['date']}, {env['cpu']} ({env['cores']} cores), load "
          f"{env['load_before'][0]:.2f} before / {env['load_after'][0]:.2f} after, "
          f"{env['rounds']} round(s), {env['minutes']:.1f} min; twin torch threads "
          f"{env['twin_threads']}, pool {env['twin_pool']}; focus flags '{env['focus_args']}'"
          f"{' + TCP_NODELAY shim (diagnosis)' if env['focus_nodelay_shim'] else ''}; "
          f"exit status after SIGTERM: {raw['exit_status']}", ""]
    for m, res in raw["models"].items():
        summ = summarize(res)
        res["summary"] = summ
        md += table(m, res, summ, env.get("sat_conns", 64)) + [""]
        for srv in res["capacity"]:
            t = targets(res, summ, srv)
            if t:
                md += [f"Targets, {m}, {srv}:", "", "| target | measured | met |", "|---|---|---|"]
                md += [f"| {x} | {v} | {'yes' if ok else 'NO'} |" for x, v, ok in t]
                md.append("")
                res.setdefault("targets", {})[srv] = [
                    {"target": x, "measured": v, "met": ok} for x, v, ok in t]
    return "\n".join(md)


def write(text, raw, a):
    print(text)
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(text + "\n")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(raw, fh, indent=1)
        sc.log(f"raw results: {a.json}")


def main():
    a = parse_args()
    if a.render:
        with open(a.render) as fh:
            raw = json.load(fh)
        a.json = None
        return write(render(raw), raw, a)
    os.makedirs(a.work, exist_ok=True)
    focus = os.path.join(a.build, "focus")
    for need in (focus, os.path.join(a.build, "serve_load")):
        if not os.path.exists(need):
            raise SystemExit(f"compare_serve: {need} missing (cmake --build {a.build} --target "
                             f"focus serve_load)")
    t_start = time.time()
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines()
                       if ln.startswith("Model name")), platform.processor())
    env = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": model_name,
           "cores": os.cpu_count(), "load_before": os.getloadavg(), "quick": a.quick,
           "rounds": a.rounds, "sat_s": a.sat_s, "run_s": a.run_s, "warmup_s": a.warmup_s,
           "sat_conns": a.sat_conns, "conns": a.conns, "overload_conns": a.overload_conns,
           "twin_threads": a.twin_threads, "twin_pool": a.twin_pool, "focus_args": a.focus_args,
           "focus_nodelay_shim": a.focus_nodelay}
    sc.log(f"{model_name}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    files = sc.ensure_models(focus, a.work, a.models, a.epochs, a.limit_train)
    if "focus" in a.servers:
        keys, secret = sc.make_key(focus, a.work)
    else:  # the twin alone needs only a secret
        keys, secret = None, secrets.token_hex(16)
    images = sc.test_images(256)
    bodies = os.path.join(a.work, "bodies.jsonl")
    with open(bodies, "w") as fh:
        for img in images:
            fh.write(sc.v2_body([img]) + "\n")
    servers = start_servers(a, files, keys, secret)
    raw = {"env": env, "models": {}}
    try:
        for m in a.models:
            check = verify(servers, m, images, secret, a)
            raw["models"][m] = {"check": check, **measure(servers, m, a, bodies, secret)}
    finally:
        raw["exit_status"] = {s.name: s.stop() for s in servers}
    env.update(load_after=os.getloadavg(), minutes=(time.time() - t_start) / 60)
    write(render(raw), raw, a)


if __name__ == "__main__":
    sys.exit(main())
