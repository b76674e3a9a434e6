#!/usr/bin/python3
"""focus next to PyTorch 1.13 on encoder-decoder Transformer training (the g2p model): writes
the batches and initial weights once (build/seq2seq_bench --dump-batches), then runs
build/seq2seq_bench and bench/seq2seq_torch.py on them in turns for several rounds (focus first on
even rounds, torch first on odd ones) and prints a markdown table of medians over rounds: target
tokens/s, source+target tokens/s, sentences/s, ms/step, peak RSS, and focus/torch ratios.
Cross-checks before the table: both programs saw the same tokens, and their eval-mode losses of
batch 0 (same weights, same batch, no dropout) agree within --loss-tol. --data-parallel runs
focus's step as `focus train --data-parallel true` does (torch unchanged). --breakdown adds the
median forward / backward / clip / optimizer times of each. The 1-minute load average, the CPU
used by other processes and the CPU the hypervisor took (steal) during each run are recorded.
Run with Debian's python (torch lives there):
  /usr/bin/python3 bench/compare_seq2seq.py --build build [--rounds 3] [--threads 2] [--out t.md]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

from compare import (TORCH_ENV, TORCH_PY, load1, note_machine, run_json, wait_for_quiet,
                     write_outputs)

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = [("target tokens/s", "tgt_tokens_per_s", True), ("source+target tokens/s", "tokens_per_s", True),
        ("sentences/s", "sentences_per_s", True), ("ms/step (median)", "median_ms", False),
        ("peak RSS MiB", "peak_rss_mib", False)]
PHASES = ("forward", "backward", "clip", "optimizer")


def fmt(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def check_runs(res, tol):
    f, t = res["focus"]["train"], res["torch"]["train"]
    for k in ("tgt_tokens", "src_tokens", "sentences"):
        if f[k] != t[k]:
            raise SystemExit(f"compare_seq2seq: {k} differ: focus {f[k]}, torch {t[k]}")
    d = abs(f["loss_eval_first"] - t["loss_eval_first"])
    if d > tol:
        raise SystemExit(f"compare_seq2seq: eval losses of batch 0 differ by {d:.2e} > {tol}: "
                         f"focus {f['loss_eval_first']}, torch {t['loss_eval_first']}")


def table(runs, args, loads, others, stolen):
    def med(fw, key, sub=None):
        vals = [(r[fw]["train"][sub] if sub else r[fw]["train"])[key] for r in runs]
        return statistics.median(vals), min(vals), max(vals)

    rows = ["| metric | focus | torch | focus/torch | spread focus / torch (min..max) |",
            "|---|---:|---:|---:|---|"]
    for label, key, higher in ROWS:
        (f, flo, fhi), (t, tlo, thi) = med("focus", key), med("torch", key)
        rows.append(f"| {label} | {fmt(f)} | {fmt(t)} | {f / t:.2f}{'' if higher else ' (lower is better)'} "
                    f"| {fmt(flo)}..{fmt(fhi)} / {fmt(tlo)}..{fmt(thi)} |")
    if args.breakdown:
        for p in PHASES:
            f, t = med("focus", p, "breakdown_ms")[0], med("torch", p, "breakdown_ms")[0]
            rows.append(f"| {p} ms (median) | {f:.1f} | {t:.1f} | {f / t:.2f} (lower is better) | |")
    f0, t0 = runs[0]["focus"]["train"], runs[0]["torch"]["train"]
    notes = [
        f"Medians over {len(runs)} rounds (focus and torch interleaved), {args.threads} threads "
        f"each{' (focus data-parallel: the rows of a batch split across them)' if args.data_parallel else ''}; "
        f"{args.steps} timed training steps after {args.warmup} warm-up, one length-bucketed "
        f"batch each (<= {args.max_tokens} padded tokens, batch * max(S, T)); {f0['sentences']} "
        f"sentences, {f0['src_tokens']} source + {f0['tgt_tokens']} target tokens timed per run.",
        f"Same batches and initial weights: eval loss of batch 0 focus {f0['loss_eval_first']:.6f}, "
        f"torch {t0['loss_eval_first']:.6f} (log V {f0['log_v']:.4f}); first training loss "
        f"(dropout differs) focus {f0['loss_first']:.4f}, torch {t0['loss_first']:.4f}; last "
        f"focus {f0['loss_last']:.4f}, torch {t0['loss_last']:.4f}.",
        f"1-minute load average before the runs: median {statistics.median(loads):.2f}, max "
        f"{max(loads):.2f}; CPU used by other processes during the runs: median "
        f"{statistics.median(others):.2f} cores, max {max(others):.2f} (of {os.cpu_count()}); CPU "
        f"taken by the hypervisor (steal): median {statistics.median(stolen):.2f} cores, max "
        f"{max(stolen):.2f}.",
    ]
    return "\n".join(rows) + "\n\n" + "\n".join(f"- {s}" for s in notes) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model-config", default="{}", help="JSON keys overriding the g2p model")
    ap.add_argument("--breakdown", action="store_true", help="time the step's phases apart")
    ap.add_argument("--data-parallel", action="store_true",
                    help="focus splits each batch across the threads (focus train --data-parallel true)")
    ap.add_argument("--loss-tol", type=float, default=1e-3)
    ap.add_argument("--max-load", type=float, default=0, help="wait for load1 < this before each round")
    ap.add_argument("--max-wait", type=float, default=1200)
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("--json-out", help="write every run's raw JSON here")
    args = ap.parse_args()
    bench = os.path.join(args.build, "seq2seq_bench")
    if not os.access(bench, os.X_OK):
        raise SystemExit(f"compare_seq2seq: {bench} missing (build first)")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    common = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--threads",
              str(args.threads), "--json"] + (["--breakdown"] if args.breakdown else [])
    with tempfile.TemporaryDirectory() as tmp:
        batches = os.path.join(tmp, "batches.safetensors")
        subprocess.run([bench, "--dump-batches", batches, "--steps", str(args.steps), "--warmup",
                        str(args.warmup), "--max-tokens", str(args.max_tokens),
                        "--model-config", args.model_config], check=True)
        jobs = {"focus": ([bench, "--max-tokens", str(args.max_tokens), "--model-config",
                           args.model_config] + common
                          + (["--data-parallel"] if args.data_parallel else []), {}),
                "torch": ([TORCH_PY, os.path.join(HERE, "seq2seq_torch.py"), "--batches",
                           batches] + common, TORCH_ENV)}
        runs, loads, others, stolen = [], [], [], []
        for r in range(args.rounds):
            if args.max_load > 0:
                wait_for_quiet(args.max_load, args.max_wait, log)
            log(f"round {r + 1}/{args.rounds} (load {load1():.2f})")
            order = ["focus", "torch"] if r % 2 == 0 else ["torch", "focus"]
            res = {fw: run_json(*jobs[fw], log) for fw in order}
            check_runs(res, args.loss_tol)
            runs.append(res)
            note_machine(res, loads, others, stolen)
    write_outputs(table(runs, args, loads, others, stolen), runs, args)


if __name__ == "__main__":
    main()
