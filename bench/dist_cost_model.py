#!/usr/bin/python3
"""Ring all-reduce cost model fitted to bench/allreduce_bench.cpp's measurements, predicting the
data-parallel speed-up of focus training (vit, g2p) on 4..64 machines at 10, 25 and 100 Gb/s.
Writes a markdown table (stdout) and an SVG plot (--svg). For docs/DISTRIBUTED.md.

Model (ring all-reduce of M bytes over N machines, Patarasuk & Yuan / NCCL's ring):
  T(N, M) = 2 (N - 1) alpha + 2 (N - 1) / N * M * (1 / B_link + 1 / B_host)
  alpha:  the per-message latency: fitted on the 2-rank TCP measurements (for N = 2:
          T = 2 alpha + M / B_meas; alpha = half the median time of the messages <= 1 KiB), plus
          --wire-us (5 us: a switch hop and NIC, assumed) per message;
  B_host: what the hosts' TCP stacks, copies and the reduction sustain, fitted as the slope of T
          against M for messages in [--fit-min-bytes, --fit-max-bytes] (64 KiB..4 MiB) on the
          2-rank TCP measurements (loopback or veth between network namespaces: no wire, all of it
          is host cost);
  B_link: the network, 10 / 25 / 100 Gb/s, at --link-efficiency (0.9) of the line rate.
Step time on N machines (weak scaling: each machine keeps the per-machine batch measured here,
so the global batch grows with N): t(N) = t_compute + T(N, 4 x parameters) without overlap
(focus today: the exchange starts after the backward pass) and max(t_compute, T) with perfect
overlap (an upper bound; what bucketed all-reduce during the backward pass, as DDP does, tends
to). Speed-up = N t_compute / t(N), against one machine that exchanges nothing.
t_compute: focus's measured step on one machine (1 process, its 2 cores) at that batch, from
bench/ddp_compare.py's JSON (median of the focus-1 runs).
Usage: /usr/bin/python3 bench/dist_cost_model.py --allreduce veth.jsonl --compare raw.json
         [--svg docs/distributed_speedup.svg]
"""
import argparse
import json
import statistics

MACHINES = [2, 4, 8, 16, 32, 64]
LINKS_GBPS = [10, 25, 100]
COLORS = {10: "#d62728", 25: "#1f77b4", 100: "#2ca02c"}


def fit(rows, stat, lo, hi):
    key = stat + "_us"
    small = [r[key] * 1e-6 for r in rows if r["bytes"] <= 1024]
    alpha = statistics.median(small) / 2
    big = [(r["bytes"], r[key] * 1e-6) for r in rows if lo <= r["bytes"] <= hi]
    if len(big) < 2:
        raise SystemExit(f"dist_cost_model: need >= 2 sizes in [{lo}, {hi}] bytes")
    mx = statistics.mean(b for b, _ in big)
    my = statistics.mean(t for _, t in big)
    slope = sum((b - mx) * (t - my) for b, t in big) / sum((b - mx) ** 2 for b, _ in big)
    return alpha, 1.0 / slope  # seconds, bytes / second


def allreduce_s(n, m, alpha, b_host, link_gbps, eff):
    b_link = link_gbps * 1e9 / 8 * eff
    return 2 * (n - 1) * alpha + 2 * (n - 1) / n * m * (1 / b_link + 1 / b_host)


def svg(models, curves, path):
    W, H, pad = 900, 380, 55
    pw = (W - 3 * pad) / 2
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">', f'<rect width="{W}" height="{H}" fill="white"/>']
    xs = MACHINES
    import math
    lx = lambda n, x0: x0 + (math.log2(n) - 1) / (math.log2(64) - 1) * pw
    for k, model in enumerate(models):
        x0 = pad + k * (pw + pad)
        ymax = 64
        ly = lambda s: H - pad - s / ymax * (H - 2 * pad)
        out.append(f'<text x="{x0 + pw / 2}" y="20" text-anchor="middle" font-size="14">{model}: '
                   f'predicted speed-up (weak scaling)</text>')
        out.append(f'<line x1="{x0}" y1="{H - pad}" x2="{x0 + pw}" y2="{H - pad}" stroke="black"/>')
        out.append(f'<line x1="{x0}" y1="{pad}" x2="{x0}" y2="{H - pad}" stroke="black"/>')
        for n in xs:
            out.append(f'<text x="{lx(n, x0)}" y="{H - pad + 16}" text-anchor="middle">{n}</text>')
        for s in range(0, 65, 16):
            out.append(f'<text x="{x0 - 6}" y="{ly(s) + 4}" text-anchor="end">{s}</text>')
            out.append(f'<line x1="{x0}" y1="{ly(s)}" x2="{x0 + pw}" y2="{ly(s)}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 + pw / 2}" y="{H - 12}" text-anchor="middle">machines</text>')
        ideal = " ".join(f"{lx(n, x0):.1f},{ly(n):.1f}" for n in xs)
        out.append(f'<polyline points="{ideal}" fill="none" stroke="#999" stroke-dasharray="2,3"/>')
        for link in LINKS_GBPS:
            for overlap, dash in ((False, ""), (True, ' stroke-dasharray="6,4"')):
                pts = " ".join(f"{lx(n, x0):.1f},{ly(curves[model][link][overlap][i]):.1f}"
                               for i, n in enumerate(xs))
                out.append(f'<polyline points="{pts}" fill="none" stroke="{COLORS[link]}" '
                           f'stroke-width="2"{dash}/>')
    ly0 = pad + 8
    for i, link in enumerate(LINKS_GBPS):
        out.append(f'<line x1="{pad + 10}" y1="{ly0 + 16 * i}" x2="{pad + 40}" y2="{ly0 + 16 * i}" '
                   f'stroke="{COLORS[link]}" stroke-width="2"/><text x="{pad + 45}" y="{ly0 + 16 * i + 4}">'
                   f'{link} Gb/s</text>')
    out.append(f'<text x="{pad + 10}" y="{ly0 + 52}">solid: exchange after backward (focus); '
               f'dashed: perfect overlap; dotted: ideal</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--allreduce", required=True, help="allreduce_bench output (2 ranks, TCP)")
    ap.add_argument("--compare", required=True, help="ddp_compare.py --json-out file")
    ap.add_argument("--wire-us", type=float, default=5.0)
    ap.add_argument("--link-efficiency", type=float, default=0.9)
    ap.add_argument("--stat", choices=["median", "min"], default="median",
                    help="which time of each size to fit (min: the least disturbed call, for a "
                         "loaded machine)")
    ap.add_argument("--fit-min-bytes", type=int, default=1 << 16)
    ap.add_argument("--fit-max-bytes", type=int, default=1 << 22)
    ap.add_argument("--svg")
    args = ap.parse_args()
    with open(args.allreduce) as f:
        rows = [json.loads(l) for l in f if l.strip().startswith("{")]
    alpha_host, b_host = fit(rows, args.stat, args.fit_min_bytes, args.fit_max_bytes)
    alpha = alpha_host + args.wire_us * 1e-6
    with open(args.compare) as f:
        runs = json.load(f)
    params = {r["model"]: r["params"] for r in runs if r["framework"] == "torch-ddp"}
    t_c = {m: statistics.median(r["ms_per_step"] for r in runs
                                if r["model"] == m and r["framework"] == "focus-1") / 1e3
           for m in params}
    models = [m for m in ("vit", "g2p") if m in params]
    print(f"fit on 2-rank TCP ({args.stat} times): alpha = {alpha_host * 1e6:.1f} us (+ {args.wire_us} us wire), "
          f"B_host = {b_host / 1e9:.2f} GB/s; links at {args.link_efficiency:.0%} of line rate\n")
    curves = {}
    print("| model | gradient | t_compute | link | " + " | ".join(f"N={n}" for n in MACHINES[1:]) + " |")
    print("|---|---|---|---|" + "---|" * (len(MACHINES) - 1))
    for m in models:
        M = 4 * params[m]
        curves[m] = {}
        for link in LINKS_GBPS:
            seq, ovl, cells = [], [], []
            for n in MACHINES:
                T = allreduce_s(n, M, alpha, b_host, link, args.link_efficiency)
                seq.append(n * t_c[m] / (t_c[m] + T))
                ovl.append(n * t_c[m] / max(t_c[m], T))
                if n > 2:
                    cells.append(f"{seq[-1]:.1f} ({ovl[-1]:.1f}); {T * 1e3:.1f} ms")
            curves[m][link] = {False: seq, True: ovl}
            print(f"| {m} | {M / 1e6:.2f} MB | {t_c[m] * 1e3:.0f} ms | {link} Gb/s | " +
                  " | ".join(cells) + " |")
    print("\ncells: speed-up without overlap (with perfect overlap); all-reduce time per step")
    if args.svg:
        svg(models, curves, args.svg)


if __name__ == "__main__":
    main()
