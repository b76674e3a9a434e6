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
--precision bf16 measures mixed-precision training: each round runs `seq2seq_bench --precision
bf16`, seq2seq_torch.py in f32 and seq2seq_torch.py --autocast bf16 (PyTorch's own bf16 recipe), in
that order (reversed on odd rounds), and the table gives the medians of the three with the ratios
focus-bf16/torch-f32 and focus-bf16/torch-autocast-bf16. Both torch runs' eval losses must agree
with focus's within --loss-tol, 2e-2 by default there: bf16's rounding of the logits moves the
loss (about 10 nats at the start) by up to 1.3e-3 under torch's autocast and 3.7e-3 with every
tensor in bf16 (measured on 10 batches of 5 seeds), so two bf16 schemes may differ by about 5e-3;
a wrong model or batch moves it by tenths.
Run with Debian's python (torch lives there):
  /usr/bin/python3 bench/compare_seq2seq.py --build build [--rounds 3] [--threads 2]
      [--precision f32|bf16] [--out t.md]
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
# The runs of one round, per --precision, and their columns' names in the bf16 table.
FRAMEWORKS = {"f32": ["focus", "torch"], "bf16": ["focus", "torch", "torch_bf16"]}
BF16_NAMES = {"focus": "focus bf16", "torch": "torch f32", "torch_bf16": "torch autocast bf16"}
LOSS_TOL = {"f32": 1e-3, "bf16": 2e-2}


def fmt(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def check_runs(res, tol):
    f = res["focus"]["train"]
    for fw in [fw for fw in res if fw != "focus"]:
        t = res[fw]["train"]
        for k in ("tgt_tokens", "src_tokens", "sentences"):
            if f[k] != t[k]:
                raise SystemExit(f"compare_seq2seq: {k} differ: focus {f[k]}, {fw} {t[k]}")
        d = abs(f["loss_eval_first"] - t["loss_eval_first"])
        if d > tol:
            raise SystemExit(f"compare_seq2seq: eval losses of batch 0 differ by {d:.2e} > {tol}: "
                             f"focus {f['loss_eval_first']}, {fw} {t['loss_eval_first']}")


def med(runs, fw, key, sub=None):
    """(median, min, max) over rounds of one run's training figure (or its breakdown's)."""
    vals = [(r[fw]["train"][sub] if sub else r[fw]["train"])[key] for r in runs]
    return statistics.median(vals), min(vals), max(vals)


def machine_note(loads, others, stolen):
    return (f"1-minute load average before the runs: median {statistics.median(loads):.2f}, max "
            f"{max(loads):.2f}; CPU used by other processes during the runs: median "
            f"{statistics.median(others):.2f} cores, max {max(others):.2f} (of {os.cpu_count()}); CPU "
            f"taken by the hypervisor (steal): median {statistics.median(stolen):.2f} cores, max "
            f"{max(stolen):.2f}.")


def table(runs, args, loads, others, stolen):
    rows = ["| metric | focus | torch | focus/torch | spread focus / torch (min..max) |",
            "|---|---:|---:|---:|---|"]
    for label, key, higher in ROWS:
        (f, flo, fhi), (t, tlo, thi) = med(runs, "focus", key), med(runs, "torch", key)
        rows.append(f"| {label} | {fmt(f)} | {fmt(t)} | {f / t:.2f}{'' if higher else ' (lower is better)'} "
                    f"| {fmt(flo)}..{fmt(fhi)} / {fmt(tlo)}..{fmt(thi)} |")
    if args.breakdown:
        for p in PHASES:
            f, t = med(runs, "focus", p, "breakdown_ms")[0], med(runs, "torch", p, "breakdown_ms")[0]
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
        machine_note(loads, others, stolen),
    ]
    return "\n".join(rows) + "\n\n" + "\n".join(f"- {s}" for s in notes) + "\n"


def table_bf16(runs, args, loads, others, stolen):
    """The --precision bf16 table: focus bf16, torch f32 and torch autocast bf16 side by side."""
    fws = FRAMEWORKS["bf16"]
    rows = ["| metric | " + " | ".join(BF16_NAMES[fw] for fw in fws)
            + " | focus-bf16/torch-f32 | focus-bf16/torch-bf16 | spread "
            + " / ".join(BF16_NAMES[fw] for fw in fws) + " (min..max) |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for label, key, higher in ROWS:
        stats = [med(runs, fw, key) for fw in fws]
        f, t, b = (m for m, _, _ in stats)
        note = "" if higher else " (lower is better)"
        rows.append(f"| {label} | {fmt(f)} | {fmt(t)} | {fmt(b)} | {f / t:.2f}{note} | "
                    f"{f / b:.2f}{note} | " + " / ".join(f"{fmt(lo)}..{fmt(hi)}" for _, lo, hi in stats)
                    + " |")
    if args.breakdown:
        for p in PHASES:
            f, t, b = (med(runs, fw, p, "breakdown_ms")[0] for fw in fws)
            rows.append(f"| {p} ms (median) | {f:.1f} | {t:.1f} | {b:.1f} | {f / t:.2f} (lower is "
                        f"better) | {f / b:.2f} (lower is better) | |")
    first = {fw: runs[0][fw]["train"] for fw in fws}
    notes = [
        f"Medians over {len(runs)} rounds (focus bf16, torch f32 and torch autocast bf16 "
        f"interleaved), {args.threads} threads each"
        f"{' (focus data-parallel: the rows of a batch split across them)' if args.data_parallel else ''}; "
        f"{args.steps} timed training steps after {args.warmup} warm-up, one length-bucketed "
        f"batch each (<= {args.max_tokens} padded tokens, batch * max(S, T)); "
        f"{first['focus']['sentences']} sentences, {first['focus']['src_tokens']} source + "
        f"{first['focus']['tgt_tokens']} target tokens timed per run. focus: seq2seq_bench "
        "--precision bf16; torch autocast bf16: forward and loss under torch.autocast(\"cpu\", "
        "dtype=torch.bfloat16), backward, clipping and AdamW on f32 master weights.",
        "Same batches and initial weights: eval loss of batch 0 "
        + ", ".join(f"{BF16_NAMES[fw]} {first[fw]['loss_eval_first']:.6f}" for fw in fws)
        + f" (log V {first['focus']['log_v']:.4f}, tolerance {args.loss_tol:g}); first training "
        "loss (dropout differs) " + ", ".join(f"{BF16_NAMES[fw]} {first[fw]['loss_first']:.4f}"
                                              for fw in fws)
        + "; last " + ", ".join(f"{BF16_NAMES[fw]} {first[fw]['loss_last']:.4f}" for fw in fws) + ".",
        machine_note(loads, others, stolen),
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
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32",
                    help="bf16: focus with --precision bf16 beside torch f32 and torch autocast bf16")
    ap.add_argument("--loss-tol", type=float, default=None,
                    help="eval-loss agreement (default 1e-3 in f32, 2e-2 in bf16)")
    ap.add_argument("--max-load", type=float, default=0, help="wait for load1 < this before each round")
    ap.add_argument("--max-wait", type=float, default=1200)
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("--json-out", help="write every run's raw JSON here")
    args = ap.parse_args()
    if args.loss_tol is None:
        args.loss_tol = LOSS_TOL[args.precision]
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
                          + (["--data-parallel"] if args.data_parallel else [])
                          + (["--precision", "bf16"] if args.precision == "bf16" else []), {}),
                "torch": ([TORCH_PY, os.path.join(HERE, "seq2seq_torch.py"), "--batches",
                           batches] + common, TORCH_ENV)}
        jobs["torch_bf16"] = (jobs["torch"][0] + ["--autocast", "bf16"], TORCH_ENV)
        runs, loads, others, stolen = [], [], [], []
        for r in range(args.rounds):
            if args.max_load > 0:
                wait_for_quiet(args.max_load, args.max_wait, log)
            log(f"round {r + 1}/{args.rounds} (load {load1():.2f})")
            order = FRAMEWORKS[args.precision] if r % 2 == 0 else FRAMEWORKS[args.precision][::-1]
            res = {fw: run_json(*jobs[fw], log) for fw in order}
            check_runs(res, args.loss_tol)
            runs.append(res)
            note_machine(res, loads, others, stolen)
    write_outputs((table if args.precision == "f32" else table_bf16)(runs, args, loads, others, stolen),
                  runs, args)


if __name__ == "__main__":
    main()
