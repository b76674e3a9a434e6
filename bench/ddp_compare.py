#!/usr/bin/python3
"""focus on 2 MPI ranks next to PyTorch DDP on 2 processes (gloo), same machine, same model and
global batch, run in turns; also focus in 1 process with 2 threads, and the share of focus's step
spent in the gradient exchange. For docs/DISTRIBUTED.md.

Each round runs, for vit and g2p, focus then torch (torch first on odd rounds):
  focus 2 ranks: mpirun -np 2 -x FOCUS_NUM_THREADS=1 build/focus train ... --epochs 2; the figure
                 is epoch 2's (warm) throughput from metrics.jsonl (images/s or source + target
                 tokens/s over the training loop, evaluation excluded), and its comm_seconds /
                 epoch_seconds (rank 0's time in the exchange: copies, MPI calls and the wait for
                 rank 1, inside the backward's callbacks and after it); once with the all-reduce
                 overlapped with the backward (the default, "focus-2") and once without
                 (--dist-overlap false, "focus-2-blocking"), in turns;
  focus 1 process: the same command without mpirun, FOCUS_NUM_THREADS=2 (the machine's 2 cores);
  torch DDP:     bench/ddp_torch.py (2 processes, 1 thread each; see its docstring).
vit: focus's default vit, global batch 128 (64 a rank), no augmentation, Fashion-MNIST for focus
     (random images for torch: the time does not depend on the pixels).
g2p: the default g2p transformer, --max-tokens 4096 global batches; focus trains on CMUdict
     (the first --g2p-words lines, --limit-train of their training words), torch on seq2seq_bench's CMUdict-shaped synthetic batches (the same
     length distribution, not the same words: tokens/s comparable, not identical batches).
The 1-minute load average is recorded before each run, and each run's peak RSS (the largest
process: a rank, or the one process). Medians over rounds are reported.
A/B of two focus builds: --baseline-build DIR runs DIR/focus too, right after each focus run of
--build (same arguments; "@base" after its name), e.g. the commit before a change.
--blocking false skips the blocking-all-reduce runs, --torch false the PyTorch runs.
A run past --timeout seconds (600) is killed with every process of its session and reported as
hung, outside the medians (PyTorch's gloo has hung that way, one worker spinning).
Usage: /usr/bin/python3 bench/ddp_compare.py --build build [--rounds 3] [--models g2p]
       [--baseline-build DIR] [--json-out raw.json]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# No --oversubscribe: 2 ranks fit the 2 cores, and oversubscribed OpenMPI yields the CPU in every
# progress loop (large all-reduces then took 5-50x longer on a loaded machine).
MPIRUN = ["mpirun", "--allow-run-as-root", "-np", "2", "-x", "FOCUS_NUM_THREADS=1"]


def focus_args(build, model, out, steps, limit_g2p, cmudict):
    focus = os.path.join(build, "focus")
    if model == "vit":
        return [focus, "train", "--model", "vit", "--batch", "128", "--val-size", "256",
                "--limit-train", str(256 + 128 * steps), "--augment", "false", "--epochs", "2",
                "--out", out]
    return [focus, "train", "--task", "g2p", "--cmudict", cmudict, "--limit-train", str(limit_g2p),
            "--epochs", "2", "--eval-limit", "20", "--beam", "1", "--out", out]


def run_measured(cmd, env, timeout):
    """Runs cmd in a session of its own; returns (CompletedProcess, peak RSS in KiB of the largest
    process under it), or (None, 0) when it ran past `timeout` seconds: then every process of its
    session (mpirun's ranks, torch's workers) is killed, so a hung run leaves nothing spinning
    on the cores the next run measures."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True,
                             start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid != 0:
                break
            if time.monotonic() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                os.wait4(p.pid, 0)
                print(f"ddp_compare: {' '.join(cmd[:4])} ... ran past {timeout:.0f} s: killed",
                      file=sys.stderr)
                return None, 0
            time.sleep(0.2)
        p.returncode = os.waitstatus_to_exitcode(status)
        try:  # whatever the run left in its session (a torch worker after its teardown)
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, p.returncode, out.read(), err.read()), usage.ru_maxrss


def hung(framework, model, load, timeout):
    return {"framework": framework, "model": model, "hung": True, "load1": load,
            "timeout_s": timeout}


def run_focus(build, model, ranks, steps, limit_g2p, cmudict, timeout, overlap=True, tag=""):
    out = tempfile.mkdtemp(prefix=f"focus-ddp-{model}-")
    try:
        cmd = focus_args(build, model, out, steps, limit_g2p, cmudict)
        if not overlap:
            cmd += ["--dist-overlap", "false"]
        env = dict(os.environ)
        if ranks == 2:
            cmd = MPIRUN + cmd
        else:
            env["FOCUS_NUM_THREADS"] = "2"
        name = f"focus-{ranks}" + ("" if overlap else "-blocking") + tag
        load = os.getloadavg()[0]
        r, rss_kb = run_measured(cmd, env, timeout)
        if r is None:
            return hung(name, model, load, timeout)
        if r.returncode != 0:
            raise SystemExit(f"ddp_compare: {' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
        with open(os.path.join(out, "metrics.jsonl")) as f:
            rec = [json.loads(l) for l in f if l.strip()][-1]
        per_s = rec["images_per_s"] if model == "vit" else rec["tokens_per_s"]
        res = {"framework": name, "model": model, "per_s": per_s, "load1": load,
               "peak_rss_mib": rss_kb / 1024,
               "epoch_seconds": rec["epoch_seconds"], "steps": rec["step"] // 2}
        if ranks == 2:
            res["comm_seconds"] = rec["comm_seconds"]
            res["comm_fraction"] = rec["comm_seconds"] / rec["epoch_seconds"]
        res["ms_per_step"] = rec["epoch_seconds"] / res["steps"] * 1e3
        return res
    finally:
        shutil.rmtree(out, ignore_errors=True)


def run_torch(model, steps, batches, timeout):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "ddp_torch.py"), "--model", model,
           "--steps", str(steps), "--warmup", "3"]
    if model == "g2p":
        cmd += ["--batches", batches]
    load = os.getloadavg()[0]
    r, rss_kb = run_measured(cmd, dict(os.environ), timeout)
    if r is None:
        return hung("torch-ddp", model, load, timeout)
    if r.returncode != 0:
        raise SystemExit(f"ddp_compare: {' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res["load1"] = load
    res["peak_rss_mib"] = rss_kb / 1024
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--vit-steps", type=int, default=30)
    ap.add_argument("--g2p-steps", type=int, default=20, help="torch's timed g2p steps")
    ap.add_argument("--g2p-limit", type=int, default=8000, help="focus's g2p training words")
    ap.add_argument("--models", default="vit,g2p")
    ap.add_argument("--cmudict", default="data-cache/cmudict/dict.txt")
    ap.add_argument("--g2p-words", type=int, default=10000, help="CMUdict lines kept")
    ap.add_argument("--one-process", default="true", choices=["true", "false"],
                    help="also run focus in 1 process x 2 threads")
    ap.add_argument("--baseline-build", help="also run DIR/focus after each focus run (A/B)")
    ap.add_argument("--blocking", default="true", choices=["true", "false"],
                    help="also run focus 2 ranks with the blocking all-reduce")
    ap.add_argument("--torch", default="true", choices=["true", "false"])
    ap.add_argument("--timeout", type=float, default=600,
                    help="seconds a run may take before it counts as hung and is killed")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="focus-ddp-")
    batches = os.path.join(tmp, "g2p_batches.safetensors")
    subprocess.run([os.path.join(args.build, "seq2seq_bench"), "--dump-batches", batches,
                    "--steps", str(args.g2p_steps), "--warmup", "3"], check=True,
                   capture_output=True)
    # A prefix of CMUdict: the g2p runs' dev and test sets (evaluated per epoch and at the end,
    # outside the measured loop) stay small.
    cmudict = os.path.join(tmp, "dict.txt")
    with open(args.cmudict, encoding="latin-1") as f, open(cmudict, "w", encoding="latin-1") as g:
        for i, line in enumerate(f):
            if i >= args.g2p_words:
                break
            g.write(line)
    runs = []
    models = args.models.split(",")
    for rnd in range(args.rounds):
        for model in models:
            steps = args.vit_steps if model == "vit" else args.g2p_steps
            order = ["focus", "torch"] if rnd % 2 == 0 else ["torch", "focus"]
            # (build, tag) pairs: the build under test, then the baseline; swapped on odd rounds.
            builds = [(args.build, "")] + ([(args.baseline_build, "@base")]
                                           if args.baseline_build else [])
            if rnd % 2 == 1:
                builds.reverse()
            overlaps = [True, False] if args.blocking == "true" else [True]
            for who in order:
                if who == "focus":
                    for overlap in (overlaps if rnd % 2 == 0 else overlaps[::-1]):
                        for build, tag in builds:
                            runs.append(run_focus(build, model, 2, steps, args.g2p_limit, cmudict,
                                                  args.timeout, overlap, tag))
                            print(json.dumps(runs[-1]), file=sys.stderr)
                    if args.one_process == "true":
                        for build, tag in builds:
                            runs.append(run_focus(build, model, 1, steps, args.g2p_limit, cmudict,
                                                  args.timeout, tag=tag))
                            print(json.dumps(runs[-1]), file=sys.stderr)
                elif args.torch == "true":
                    runs.append(run_torch(model, steps, batches, args.timeout))
                    print(json.dumps(runs[-1]), file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(runs, f, indent=1)
    def med(model, fw, key="per_s"):
        xs = [r[key] for r in runs
              if r["model"] == model and r["framework"] == fw and not r.get("hung")]
        return (statistics.median(xs), min(xs), max(xs)) if xs else (float("nan"),) * 3

    print("| model | focus, 2 ranks x 1 thread, overlapped | PyTorch DDP (gloo), 2 x 1 | "
          "focus / torch | focus step in the exchange | focus, 2 ranks, blocking all-reduce | "
          "its step in the exchange | focus, 1 process x 2 threads |")
    print("|---|---|---|---|---|---|---|---|")
    for model in models:
        f2, t2 = med(model, "focus-2"), med(model, "torch-ddp")
        f1, fb = med(model, "focus-1"), med(model, "focus-2-blocking")
        cf = med(model, "focus-2", "comm_fraction")
        cb = med(model, "focus-2-blocking", "comm_fraction")
        unit = "images/s" if model == "vit" else "tokens/s"
        print(f"| {model} | {f2[0]:.0f} {unit} ({f2[1]:.0f}..{f2[2]:.0f}) | {t2[0]:.0f} "
              f"({t2[1]:.0f}..{t2[2]:.0f}) | {f2[0] / t2[0]:.2f}x | {100 * cf[0]:.1f}% "
              f"({100 * cf[1]:.1f}..{100 * cf[2]:.1f}) | {fb[0]:.0f} ({fb[1]:.0f}..{fb[2]:.0f}) | "
              f"{100 * cb[0]:.1f}% | {f1[0]:.0f} ({f1[1]:.0f}..{f1[2]:.0f}) |")
    # Every configuration: median (min..max) throughput, peak RSS and load.
    print()
    print("| model | run | median (min..max) | focus-2 / it | peak RSS MiB, median (max) | "
          "load, median (max) |")
    print("|---|---|---|---|---|---|")
    for model in models:
        names = sorted({r["framework"] for r in runs if r["model"] == model})
        base = med(model, "focus-2")[0]
        for fw in names:
            v, rss, load = med(model, fw), med(model, fw, "peak_rss_mib"), med(model, fw, "load1")
            print(f"| {model} | {fw} | {v[0]:.0f} ({v[1]:.0f}..{v[2]:.0f}) | {base / v[0]:.2f}x | "
                  f"{rss[0]:.0f} ({rss[2]:.0f}) | {load[0]:.1f} ({load[2]:.1f}) |")
    stuck = [r for r in runs if r.get("hung")]
    torn = [r for r in runs if r.get("teardown_hung")]
    if stuck or torn:
        print()
    for r in stuck:
        print(f"hung and killed after {r['timeout_s']:.0f} s (not in the medians): "
              f"{r['framework']} {r['model']}")
    for r in torn:
        print(f"measured, then hung in its teardown (killed; counted): {r['framework']} {r['model']}")


if __name__ == "__main__":
    main()
