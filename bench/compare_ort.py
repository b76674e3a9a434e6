#!/usr/bin/python3
"""focus inference next to ONNX Runtime (issue 21): the same weights in both, outputs checked
against each other before anything is timed, then interleaved rounds; prints a markdown table of
images/s medians (min..max over rounds), focus/ORT ratios and the load average of every run.

Steps, for cnn_se and vit:
  1. weights: `bench_models --save-weights` writes the seeded model after a few AdamW steps (so
     batch norm's statistics are not trivial) as a focus model file (BUILD/ort_bench/M.safetensors);
  2. export:  bench/ort_export.py builds the PyTorch twin from that file and writes M.onnx
     (--opset 17, dynamic batch, constants folded, eval mode); it also runs the twin on the check
     batch;
  3. verify:  one fixed batch of 256 N(0, 1) images (BUILD/ort_bench/check.f32) through focus
     (`bench_models --weights F --dump-logits`) and ONNX Runtime (bench/ort_infer.js --input);
     max |focus - ORT| over the (256, 10) logits must be <= --tol * max(1, max |logit|), else
     exit 1.
     Default 1e-4: fp32 sums of a few thousand terms in another order, through ~10 layers, differ
     by ~1e-6 relative (measured: 1.4e-6 on logits of magnitude 3.7); a wrong layer (a missing
     batch norm, a transposed weight, GELU tanh vs erf) moves logits by 1e-2 or more.
  4. time:    rounds of bench_models --weights F --skip-train --infer-batch 1,256 and
     ort_infer.js --batch 1,256 (and bench/torch_models.py, PyTorch 1.13 eager, unless --no-torch),
     all at --threads (2), alternating the order (focus, ORT, torch | torch, ORT, focus) so slow
     drifts hit both sides alike. Each program verifies its own outputs (finite, deterministic,
     batch-1 = row 0) and reports the median call; the table shows the median over rounds.
ONNX Runtime: npm onnxruntime-node (its CPU library ships in the package), intra-op threads
--threads, inter-op 1, all graph optimisations, sequential execution, its default spinning
threads (--ort-no-spin turns spinning off: kinder to a shared machine, as focus's passive OpenMP
wait; the table says which was used).
PyTorch's figure is its twin with its own seeded weights (speed does not depend on the values) and
its fair settings (bench/torch_common.py).
Usage: /usr/bin/python3 bench/compare_ort.py --build build [--rounds 3] [--iters 10] [--quick]
       [--no-torch] [--out table.md] [--json-out raw.json]
onnxruntime-node must be in BUILD/ort/node_modules (`make bench-ort` installs it).
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from compare import children_cpu_s, cpu_busy_s, load1  # noqa: E402

PY = "/usr/bin/python3"
MODELS = ["cnn_se", "vit"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, env_extra=None, parse=True):
    """Runs cmd from the repo root; -> its JSON stdout with the load, other processes' cores and
    the wall time of the run added (parse=False: the raw stdout)."""
    env = dict(os.environ, **(env_extra or {}))
    load = load1()
    t0, (busy0, _), own0 = time.time(), cpu_busy_s(), children_cpu_s()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=os.path.dirname(HERE))
    wall = time.time() - t0
    others = max(0.0, (cpu_busy_s()[0] - busy0 - (children_cpu_s() - own0)) / wall)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"compare_ort: {' '.join(cmd)} failed with status {p.returncode}")
    if not parse:
        return p.stdout
    out = json.loads(p.stdout)
    out.update(load1_before=load, others_cores=others, wall_s=wall)
    return out


def read_f32(path):
    import array
    a = array.array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    return a


def write_check_batch(path, n=256, seed=21):
    """(N, 1, 28, 28) float32 N(0, 1) values from a fixed seed (numpy), written raw."""
    import numpy as np
    np.random.default_rng(seed).standard_normal((n, 1, 28, 28), dtype=np.float32).tofile(path)


def prepare(args, work, ort_env):
    """Weights, ONNX export and the verification for every model; -> {model: verification}."""
    bench = os.path.join(args.build, "bench_models")
    check = os.path.join(work, "check.f32")
    write_check_batch(check)
    verified = {}
    for m in args.models:
        w, onnx = os.path.join(work, f"{m}.safetensors"), os.path.join(work, f"{m}.onnx")
        run([bench, "--model", m, "--threads", str(args.threads), "--save-weights", w], parse=False)
        outs = {k: os.path.join(work, f"{m}.{k}.f32") for k in ("focus", "ort", "torch")}
        exported = json.loads(run([PY, os.path.join(HERE, "ort_export.py"), "--weights", w,
                                   "--out", onnx, "--opset", str(args.opset),
                                   "--check-input", check,
                                   "--check-output", outs["torch"]], parse=False))
        run([bench, "--model", m, "--threads", str(args.threads), "--weights", w,
             "--dump-logits", check, outs["focus"]], parse=False)
        run(["node", os.path.join(HERE, "ort_infer.js"), "--model", onnx, "--threads",
             str(args.threads), "--input", check, "--output", outs["ort"]], ort_env, parse=False)
        y = {k: read_f32(p) for k, p in outs.items()}
        if not len(y["focus"]) == len(y["ort"]) == len(y["torch"]) == 256 * 10:
            raise SystemExit(f"compare_ort: {m}: output sizes {[len(v) for v in y.values()]}, "
                             "expected 256 x 10")
        bad = [k for k, v in y.items() if not all(math.isfinite(x) for x in v)]
        if bad:
            raise SystemExit(f"compare_ort: {m}: non-finite outputs from {bad}")
        scale = max(1.0, max(abs(v) for v in y["focus"]))
        diff = {k: max(abs(a - b) for a, b in zip(y["focus"], y[k])) for k in ("ort", "torch")}
        ok = diff["ort"] <= args.tol * scale
        verified[m] = {"max_abs_logit": scale, "max_abs_diff_ort": diff["ort"],
                       "max_abs_diff_torch_twin": diff["torch"], "tolerance": args.tol * scale,
                       "ok": ok, "onnx": exported}
        log(f"verify {m}: max |focus - ORT| = {diff['ort']:.3g}, max |focus - torch twin| = "
            f"{diff['torch']:.3g} over (256, 10) logits of magnitude <= {scale:.3g} "
            f"(tolerance {args.tol * scale:.3g}): {'ok' if ok else 'FAILED'}")
        if not ok:
            raise SystemExit(f"compare_ort: {m}: focus and ONNX Runtime disagree on the same "
                             "weights; nothing timed")
    return verified


def one_round(r, args, work, ort_env):
    batches = ",".join(str(b) for b in args.batch)
    res = {}
    for m in args.models:
        w, onnx = os.path.join(work, f"{m}.safetensors"), os.path.join(work, f"{m}.onnx")
        jobs = {
            "focus": ([os.path.join(args.build, "bench_models"), "--model", m, "--weights", w,
                       "--threads", str(args.threads), "--skip-train", "--infer-batch", batches,
                       "--iters", str(args.iters), "--json"], None),
            "ort": (["node", os.path.join(HERE, "ort_infer.js"), "--model", onnx, "--threads",
                     str(args.threads), "--batch", batches, "--iters", str(args.iters)]
                    + (["--no-spin"] if args.ort_no_spin else []), ort_env),
        }
        if not args.no_torch:
            jobs["torch"] = ([PY, os.path.join(HERE, "torch_models.py"), "--model", m,
                              "--threads", str(args.threads), "--skip-train", "--infer-batch",
                              batches, "--iters", str(args.iters), "--json"], None)
        order = list(jobs) if r % 2 == 0 else list(reversed(jobs))
        for fw in order:
            out = run(*jobs[fw])
            res[(m, fw)] = out
            ips = ", ".join(f"b{x['batch']} {x['images_per_s']:.0f}" for x in out["infer"])
            log(f"  round {r + 1} {m} {fw}: {ips} images/s ({out['wall_s']:.0f} s, load before "
                f"{out['load1_before']:.2f}, other processes {out['others_cores']:.2f} cores)")
    return res


def ips(res, m, fw, b):
    return next(x["images_per_s"] for x in res[(m, fw)]["infer"] if x["batch"] == b)


def fmt(v):
    return f"{v:,.0f}"


def cell(vals):
    return f"{fmt(statistics.median(vals))} ({fmt(min(vals))}..{fmt(max(vals))})"


def table(rounds, args, verified, machine):
    fws = ["focus", "ort"] + ([] if args.no_torch else ["torch"])
    head = "| model | batch | focus images/s | ONNX Runtime images/s | focus / ORT |"
    sep = "|---|---:|---:|---:|---:|"
    if not args.no_torch:
        head += " PyTorch 1.13 eager images/s | focus / torch |"
        sep += "---:|---:|"
    ort_version = rounds[0][(args.models[0], "ort")]["onnxruntime"]
    lines = [f"focus vs ONNX Runtime {ort_version} inference, "
             f"fp32, {args.threads} threads (ORT spinning {'off' if args.ort_no_spin else 'on'}), "
             f"{len(rounds)} rounds, medians (min..max over rounds); "
             f"{machine}", "", head + " load avg (1 min) before the runs |", sep + "---|"]
    for m in args.models:
        for b in args.batch:
            v = {fw: [ips(res, m, fw, b) for res in rounds] for fw in fws}
            row = f"| {m} | {b} | {cell(v['focus'])} | {cell(v['ort'])} | " \
                  f"{statistics.median(v['focus']) / statistics.median(v['ort']):.2f} |"
            if not args.no_torch:
                row += f" {cell(v['torch'])} | " \
                       f"{statistics.median(v['focus']) / statistics.median(v['torch']):.2f} |"
            loads = [res[(m, fw)]["load1_before"] for res in rounds for fw in fws]
            lines.append(row + f" {min(loads):.1f}..{max(loads):.1f} |")
    lines.append("")
    lines.append("Verified before timing on one batch of 256 (same weights): " + "; ".join(
        f"{m} max |focus - ORT| {v['max_abs_diff_ort']:.2g} (tolerance {v['tolerance']:.2g})"
        for m, v in verified.items()))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build", help="build directory (bench_models, ort/)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10, help="timed calls at batch 256 (more at 1)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", default="1,256", help="inference batches, comma-separated")
    ap.add_argument("--models", default="cnn_se,vit")
    ap.add_argument("--tol", type=float, default=1e-4,
                    help="max |focus - ORT| allowed, times max(1, max |logit|)")
    ap.add_argument("--opset", type=int, default=17, help="ONNX opset of the export (14..17)")
    ap.add_argument("--ort-no-spin", action="store_true",
                    help="ORT's intra-op threads sleep when idle instead of spinning")
    ap.add_argument("--no-torch", action="store_true", help="leave out PyTorch 1.13 eager")
    ap.add_argument("--quick", action="store_true", help="one round, 3 timed calls at batch 256")
    ap.add_argument("--out", help="markdown table to write")
    ap.add_argument("--json-out", help="raw results to write")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.iters = 1, 3
    args.batch = [int(b) for b in args.batch.split(",")]
    args.models = args.models.split(",")
    if not set(args.models) <= set(MODELS):
        raise SystemExit(f"compare_ort: --models takes {MODELS}")
    node_modules = os.path.abspath(os.path.join(args.build, "ort", "node_modules"))
    if not os.path.isdir(os.path.join(node_modules, "onnxruntime-node")):
        raise SystemExit(f"compare_ort: no onnxruntime-node in {node_modules} (make bench-ort, or "
                         f"npm install --ignore-scripts --prefix {args.build}/ort "
                         "onnxruntime-node@1.30.0)")
    ort_env = {"NODE_PATH": node_modules}
    work = os.path.join(args.build, "ort_bench")
    os.makedirs(work, exist_ok=True)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines()
                  if ln.startswith("Model name")), "unknown CPU")
    machine = f"{model}, {os.cpu_count()} cores, load at start {os.getloadavg()[0]:.2f}"
    log(f"machine: {machine}")
    verified = prepare(args, work, ort_env)
    rounds = []
    for r in range(args.rounds):
        rounds.append(one_round(r, args, work, ort_env))
    md = table(rounds, args, verified, machine)
    print(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md)
    if args.json_out:
        raw = {"machine": machine, "verified": verified,
               "rounds": [{f"{m}/{fw}": v for (m, fw), v in res.items()} for res in rounds]}
        with open(args.json_out, "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
