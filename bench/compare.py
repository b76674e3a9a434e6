#!/usr/bin/python3
"""focus next to PyTorch 1.13: runs focus's benchmarks and their PyTorch twins in turns, several
rounds, and prints a markdown table of medians and focus/torch ratios next to the targets.

One round runs, for each benchmark, focus then torch (torch then focus on odd rounds, so slow
drifts in the machine's state hit both sides alike):
  GEMM:   `focus bench gemm --json` and bench/gemm_torch.py at the same shapes;
  models: bench_models and bench/torch_models.py for cnn_se and vit (training images/s at batch
          128, inference images/s at batch 1 and 256, peak resident memory per phase).
--precision bf16 measures mixed-precision training instead: per model, `bench_models --precision
bf16`, torch_models.py in f32 and torch_models.py --autocast bf16 (PyTorch's own bf16 recipe),
in that order (reversed on odd rounds); the table gives training images/s and training peak
memory of the three with the ratios focus-bf16/torch-f32 and focus-bf16/torch-autocast-bf16, and
no GEMM or inference rows.
Each program verifies its results before timing and reports medians of repeated calls; the table
gives the median over rounds (and the spread, min..max). PyTorch runs with its fair settings
(OpenBLAS on focus's core for the CPU, OMP_WAIT_POLICY=PASSIVE, 2 threads; see torch_common.py); focus runs
with its defaults. The 1-minute load average is recorded before every run: other processes on
the machine distort the figures (--max-load waits for a quiet machine first).
Run with Debian's python (torch lives there):
  /usr/bin/python3 bench/compare.py --build build [--rounds 3] [--precision f32|bf16] [--out table.md]
      [--json-out raw.json]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH_PY = "/usr/bin/python3"
GEMM_SHAPES = ["2048", "1024x1024x64", "1024x64x1024", "6272x128x1152",
               "32x784x288", "64x196x576", "128x49x1152", "6400x128x64"]
GEMM_NOTES = {
    "2048": "square",
    "1024x1024x64": "attention-like: scores Q K^T",
    "1024x64x1024": "attention-like: P V",
    "6272x128x1152": "conv 128->128 3x3 at 7x7, batch-128 im2col",
    "32x784x288": "cnn_se stage 1 conv2, per image (O x HW x C*9)",
    "64x196x576": "cnn_se stage 2 conv2, per image",
    "128x49x1152": "cnn_se stage 3 conv2, per image",
    "6400x128x64": "vit linear1 at batch 128 (6400 tokens x 64 -> 128)",
}
MODELS = ["cnn_se", "vit"]
# The OpenBLAS core is set by torch_common.py (the one focus picks for this CPU).
TORCH_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
# The runs of one round and one benchmark, per --precision: focus, then torch's.
FRAMEWORKS = {"f32": ["focus", "torch"], "bf16": ["focus", "torch", "torch_bf16"]}


def load1():
    return os.getloadavg()[0]


def cpu_busy_s():
    """(busy, stolen): CPU seconds the machine's guest has run, and those the hypervisor took,
    since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(v[:7]) - v[3] - v[4]) / hz, v[7] / hz


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_for_quiet(max_load, max_wait_s, log):
    t0 = time.time()
    while load1() >= max_load:
        if time.time() - t0 > max_wait_s:
            log(f"load {load1():.2f} still >= {max_load} after {max_wait_s:.0f} s: measuring anyway")
            return False
        log(f"load {load1():.2f} >= {max_load}: waiting 120 s")
        time.sleep(120)
    return True


def run_json(cmd, env_extra, log):
    env = dict(os.environ, **env_extra)
    load = load1()
    t0, (busy0, stolen0), own0 = time.time(), cpu_busy_s(), children_cpu_s()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=os.path.dirname(HERE))
    wall = time.time() - t0
    busy1, stolen1 = cpu_busy_s()
    # Cores kept busy by other processes while this run ran (the machine's busy time minus ours),
    # and cores' worth of time the hypervisor gave to other guests (steal).
    others = max(0.0, (busy1 - busy0 - (children_cpu_s() - own0)) / wall)
    stolen = (stolen1 - stolen0) / wall
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"compare: {' '.join(cmd)} failed with status {p.returncode}")
    prog = os.path.basename(cmd[1] if cmd[0] == TORCH_PY else cmd[0])
    what = " ".join(c for c in cmd[1:] if c in MODELS or c in ("gemm", "bf16"))
    log(f"  {prog} {what} ({wall:.0f} s, load before {load:.2f}, other processes {others:.2f} "
        f"cores, stolen {stolen:.2f} cores)")
    out = json.loads(p.stdout)
    out["load1_before"] = load
    out["others_cores"] = others
    out["stolen_cores"] = stolen
    return out


def note_machine(res, loads, others, stolen):
    """Appends each run's load, other processes' cores and stolen cores to the lists."""
    loads += [v["load1_before"] for v in res.values()]
    others += [v["others_cores"] for v in res.values()]
    stolen += [v["stolen_cores"] for v in res.values()]


def write_outputs(md, raw, args):
    """Prints the markdown table and writes it (--out) and the raw runs (--json-out)."""
    print(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(raw, f, indent=1)


def one_round(r, args, log, shapes_file):
    order = FRAMEWORKS[args.precision] if r % 2 == 0 else FRAMEWORKS[args.precision][::-1]
    sizes = ",".join(args.gemm_sizes)
    jobs = {
        ("gemm", "focus"): ([os.path.join(args.build, "focus"), "bench", "gemm", "--json",
                             "--threads", str(args.threads), "--sizes", sizes, "--reps", str(args.gemm_reps)],
                            args.focus_env),
        ("gemm", "torch"): ([TORCH_PY, os.path.join(HERE, "gemm_torch.py"), "--json",
                             "--threads", str(args.threads), "--sizes", sizes, "--reps", str(args.gemm_reps)],
                            TORCH_ENV),
    }
    for m in MODELS:
        common = ["--model", m, "--batch", str(args.batch), "--iters", str(args.iters),
                  "--threads", str(args.threads), "--json"]
        jobs[(m, "focus")] = ([os.path.join(args.build, "bench_models")] + common
                              + (["--precision", "bf16"] if args.precision == "bf16" else []),
                              args.focus_env)
        jobs[(m, "torch")] = ([TORCH_PY, os.path.join(HERE, "torch_models.py")] + common, TORCH_ENV)
        jobs[(m, "torch_bf16")] = (jobs[(m, "torch")][0] + ["--autocast", "bf16"], TORCH_ENV)
    res = {}
    for bench in (["gemm"] if args.precision == "f32" else []) + MODELS:
        for fw in order:
            cmd, env = jobs[(bench, fw)]
            if fw != "focus" and bench in MODELS:
                cmd = cmd + ["--expect-shapes", shapes_file[bench]]
            for attempt in range(args.retries + 1):
                res[(bench, fw)] = run_json(cmd, env, log)
                if args.max_others <= 0 or res[(bench, fw)]["others_cores"] <= args.max_others:
                    break
                if attempt < args.retries:
                    log(f"  other processes used {res[(bench, fw)]['others_cores']:.2f} cores "
                        f"(> {args.max_others}): again in 60 s")
                    time.sleep(60)
            if fw == "focus" and bench in MODELS and bench not in shapes_file:
                path = os.path.join(args.workdir, f"focus_{bench}_shapes.json")
                with open(path, "w") as f:
                    json.dump({"param_shapes": res[(bench, fw)]["param_shapes"]}, f)
                shapes_file[bench] = path
    return res


def gemm_key(s):
    p = [int(v) for v in s.split("x")]
    return (p[0], p[0], p[0]) if len(p) == 1 else tuple(p)


def metrics(res, args):
    """{(framework, section, label): value} for one round's results."""
    out = {}
    for fw in FRAMEWORKS[args.precision]:
        if ("gemm", fw) in res:
            g = {(x["M"], x["N"], x["K"]): x["gflops"] for x in res[("gemm", fw)]["results"]}
            for s in args.gemm_sizes:
                out[(fw, "gemm", s)] = g[gemm_key(s)]
        for m in MODELS:
            r = res[(m, fw)]
            out[(fw, m, "train")] = r["train"]["images_per_s"]
            out[(fw, m, "train_mem")] = r["train"]["peak_rss_mib"]
            for inf in r["infer"]:
                out[(fw, m, f"infer{inf['batch']}")] = inf["images_per_s"]
                out[(fw, m, f"infer{inf['batch']}_mem")] = inf["peak_rss_mib"]
    return out


def fmt(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def summary(rounds):
    """(median, min, max) over rounds, each {key: value}."""
    keys = rounds[0].keys()
    return ({k: statistics.median(r[k] for r in rounds) for k in keys},
            {k: min(r[k] for r in rounds) for k in keys},
            {k: max(r[k] for r in rounds) for k in keys})


def machine_note(env_info):
    loads = env_info["loads"]
    return (f"1-minute load average before the runs: median {statistics.median(loads):.2f}, "
            f"max {max(loads):.2f} (it includes the previous run's own threads); CPU used by other "
            f"processes during the runs: median {statistics.median(env_info['others']):.2f} cores, "
            f"max {max(env_info['others']):.2f} (of {os.cpu_count()}); CPU taken by the hypervisor "
            f"(steal): median {statistics.median(env_info['stolen']):.2f} cores, "
            f"max {max(env_info['stolen']):.2f}.")


def focus_note(args, env_info):
    return (f"focus: {env_info['focus_blas']}"
            + (f"; extra environment {args.focus_env}" if args.focus_env
               else "; default environment (the programs set OMP_WAIT_POLICY=PASSIVE, as the CLI)"))


def table(rounds, args, env_info):
    med, lo, hi = summary(rounds)
    rows = []

    def row(label, key, unit, target=None, higher_better=True):
        f, t = med[("focus",) + key], med[("torch",) + key]
        ratio = f / t
        verdict = ""
        if target is not None:
            kind, want = target
            ok = (ratio if kind == "ratio" else f) >= want
            verdict = ("met" if ok else "**missed**") + f" (>= {want:g}{'x' if kind == 'ratio' else ' ' + unit})"
        spread = f"{fmt(lo[('focus',) + key])}..{fmt(hi[('focus',) + key])} / " \
                 f"{fmt(lo[('torch',) + key])}..{fmt(hi[('torch',) + key])}"
        rows.append(f"| {label} | {unit} | {fmt(f)} | {fmt(t)} | {ratio:.2f}"
                    f"{'' if higher_better else ' (lower is better)'} | {verdict} | {spread} |")

    peak = statistics.median(env_info["fma_peak"])
    for s in args.gemm_sizes:
        target = ("abs", 200) if s == "2048" else None
        M, N, K = gemm_key(s)
        pct = 100 * med[("focus", "gemm", s)] / peak
        row(f"GEMM {M}x{N}x{K} ({GEMM_NOTES.get(s, '')}; focus {pct:.0f}% of peak)",
            ("gemm", s), "GFLOP/s", target)
    for m in MODELS:
        row(f"{m} training, batch {args.batch}", (m, "train"), "images/s", ("ratio", 1.5))
        row(f"{m} inference, batch 1", (m, "infer1"), "images/s", ("ratio", 2))
        row(f"{m} inference, batch 256", (m, "infer256"), "images/s", ("ratio", 2))
    for m in MODELS:
        row(f"{m} peak RSS, training", (m, "train_mem"), "MiB", higher_better=False)
        row(f"{m} peak RSS, inference batch 256", (m, "infer256_mem"), "MiB", higher_better=False)
    head = ["| benchmark | unit | focus | torch 1.13 | focus/torch | target | spread focus / torch (min..max) |",
            "|---|---|---:|---:|---:|---|---|"]
    notes = [
        f"Medians over {len(rounds)} rounds (focus and torch interleaved); "
        f"{args.threads} threads each; measured FMA peak (focus bench gemm) {peak:.0f} GFLOP/s.",
        machine_note(env_info),
        focus_note(args, env_info),
        f"torch {env_info['torch']}: OpenBLAS core {env_info['torch_blas_core']}, "
        "OMP_WAIT_POLICY=PASSIVE.",
    ]
    return "\n".join(head + rows) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def table_bf16(rounds, args, env_info):
    """The --precision bf16 table: training rows of focus bf16, torch f32, torch autocast bf16."""
    med, lo, hi = summary(rounds)
    rows = ["| benchmark | unit | focus bf16 | torch f32 | torch autocast bf16 | focus-bf16/torch-f32 "
            "| focus-bf16/torch-bf16 | spread focus / torch f32 / torch bf16 (min..max) |",
            "|---|---|---:|---:|---:|---:|---:|---|"]
    for m in MODELS:
        for label, key, unit, higher in ((f"{m} training, batch {args.batch}", "train", "images/s", True),
                                         (f"{m} peak RSS, training", "train_mem", "MiB", False)):
            f, t, b = (med[(fw, m, key)] for fw in FRAMEWORKS["bf16"])
            note = "" if higher else " (lower is better)"
            spread = " / ".join(f"{fmt(lo[(fw, m, key)])}..{fmt(hi[(fw, m, key)])}"
                                for fw in FRAMEWORKS["bf16"])
            rows.append(f"| {label} | {unit} | {fmt(f)} | {fmt(t)} | {fmt(b)} | {f / t:.2f}{note} "
                        f"| {f / b:.2f}{note} | {spread} |")
    notes = [
        f"Medians over {len(rounds)} rounds (focus bf16, torch f32 and torch autocast bf16 "
        f"interleaved); {args.threads} threads each; {args.iters} timed training steps per run. "
        "focus: bench_models --precision bf16; torch autocast bf16: forward and loss under "
        "torch.autocast(\"cpu\", dtype=torch.bfloat16), backward and AdamW on f32 master weights.",
        machine_note(env_info),
        focus_note(args, env_info),
        f"torch {env_info['torch']}: OpenBLAS core {env_info['torch_blas_core']}, "
        "OMP_WAIT_POLICY=PASSIVE.",
    ]
    return "\n".join(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build", help="build directory (focus, bench_models)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10, help="timed training steps per run")
    ap.add_argument("--batch", type=int, default=128, help="training batch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32",
                    help="bf16: focus's models with --precision bf16 beside torch f32 and torch "
                         "autocast bf16, training rows only (no GEMM or inference rows)")
    ap.add_argument("--gemm-sizes", default=",".join(GEMM_SHAPES))
    ap.add_argument("--gemm-reps", type=int, default=20,
                    help="timed calls per GEMM shape (the programs' own default gives 2048^3 only 3)")
    ap.add_argument("--max-load", type=float, default=0, help="wait for load1 < this before each round (0: don't)")
    ap.add_argument("--max-others", type=float, default=0,
                    help="repeat a run during which other processes used more cores than this (0: don't)")
    ap.add_argument("--retries", type=int, default=3, help="repeats allowed per run for --max-others")
    ap.add_argument("--max-wait", type=float, default=2400, help="seconds to wait for --max-load at most")
    ap.add_argument("--focus-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the focus runs (repeatable), e.g. OMP_WAIT_POLICY=PASSIVE")
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("--json-out", help="write every run's raw JSON here")
    ap.add_argument("--workdir", default=None, help="scratch folder (default: the build folder)")
    args = ap.parse_args()
    args.gemm_sizes = args.gemm_sizes.split(",")
    args.focus_env = dict(kv.split("=", 1) for kv in args.focus_env)
    args.workdir = args.workdir or args.build
    for exe in ("focus", "bench_models") if args.precision == "f32" else ("bench_models",):
        if not os.access(os.path.join(args.build, exe), os.X_OK):
            raise SystemExit(f"compare: {args.build}/{exe} missing (build first: make build)")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    shapes_file, rounds, raw, loads, peaks, others, stolen = {}, [], [], [], [], [], []
    for r in range(args.rounds):
        if args.max_load > 0:
            wait_for_quiet(args.max_load, args.max_wait, log)
        log(f"round {r + 1}/{args.rounds} (load {load1():.2f})")
        res = one_round(r, args, log, shapes_file)
        rounds.append(metrics(res, args))
        raw.append({f"{b}/{fw}": v for (b, fw), v in res.items()})
        note_machine(res, loads, others, stolen)
        if args.precision == "f32":
            peaks.append(res[("gemm", "focus")]["fma_peak_gflops"])
    if args.precision == "f32":
        env_info = {"loads": loads, "others": others, "stolen": stolen, "fma_peak": peaks, "focus_blas": raw[0]["gemm/focus"]["backend"],
                    "torch": raw[0]["gemm/torch"]["torch"],
                    "torch_blas_core": raw[0]["gemm/torch"]["blas_core"]}
        md = table(rounds, args, env_info)
    else:
        t = raw[0][f"{MODELS[0]}/torch"]
        env_info = {"loads": loads, "others": others, "stolen": stolen,
                    "focus_blas": raw[0][f"{MODELS[0]}/focus"]["blas"], "torch": t["torch"],
                    "torch_blas_core": t["blas_core"]}
        md = table_bf16(rounds, args, env_info)
    write_outputs(md, {"rounds": raw, "env": env_info}, args)


if __name__ == "__main__":
    main()
