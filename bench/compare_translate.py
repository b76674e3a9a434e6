#!/usr/bin/python3
"""focus next to PyTorch 1.13 on g2p decoding: runs build/translate_bench and
bench/translate_torch.py on the same trained focus model file and the same CMUdict test words, in
turns for several rounds (focus first on even rounds), and prints a markdown table of medians over
rounds: greedy words/s with the KV cache and without it, at each batch, the cache's speedup on
each side, and focus/torch. A first translate_bench run writes the source ids and focus's outputs
(--dump-sources) that the twin decodes and checks itself against (>= 99% equal outputs). Each
program verifies its cached and uncached outputs agree before timing. Load, other processes' CPU
and steal are recorded per run, as in compare.py.
Run with Debian's python (torch lives there):
  /usr/bin/python3 bench/compare_translate.py --build build --model runs/g2p/model_best.safetensors
      [--rounds 3] [--words 1000] [--batch 1,64] [--out t.md] [--json-out raw.json]
"""
import argparse
import os
import statistics
import sys
import tempfile

from compare import TORCH_ENV, TORCH_PY, load1, note_machine, run_json, write_outputs

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--model", required=True, help="a focus g2p model file")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--words", type=int, default=1000)
    ap.add_argument("--batch", default="1,64")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="also write the markdown table here")
    ap.add_argument("--json-out", help="write every run's raw JSON here")
    args = ap.parse_args()
    bench = os.path.join(args.build, "translate_bench")
    if not os.access(bench, os.X_OK):
        raise SystemExit(f"compare_translate: {bench} missing (build first)")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        sources = os.path.join(tmp, "sources.json")
        common = ["--model", args.model, "--batch", args.batch, "--reps", str(args.reps),
                  "--threads", str(args.threads), "--json"]
        run_json([bench, "--model", args.model, "--words", str(args.words), "--batch", "1",
                  "--reps", "1", "--dump-sources", sources, "--json"], {}, log)
        jobs = {"focus": ([bench, "--words", str(args.words)] + common, {}),
                "torch": ([TORCH_PY, os.path.join(HERE, "translate_torch.py"), "--sources", sources]
                          + common, TORCH_ENV)}
        rounds, raw, loads, others, stolen = [], [], [], [], []
        for r in range(args.rounds):
            log(f"round {r + 1}/{args.rounds} (load {load1():.2f})")
            order = ["focus", "torch"] if r % 2 == 0 else ["torch", "focus"]
            res = {fw: run_json(*jobs[fw], log) for fw in order}
            raw.append(res)
            note_machine(res, loads, others, stolen)
            rounds.append({(fw, x["batch"], path): x[path]["words_per_s"]
                           for fw, v in res.items() for x in v["results"]
                           for path in ("cached", "uncached")})
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    rows = ["| batch | path | focus words/s | torch words/s | focus/torch |", "|---:|---|---:|---:|---:|"]
    batches = sorted({k[1] for k in med})
    for b in batches:
        for path, name in (("cached", "KV cache"), ("uncached", "no cache")):
            f, t = med[("focus", b, path)], med[("torch", b, path)]
            rows.append(f"| {b} | {name} | {f:,.1f} | {t:,.1f} | {f / t:.2f} |")
        rows.append(f"| {b} | cache speedup | {med[('focus', b, 'cached')] / med[('focus', b, 'uncached')]:.2f}x "
                    f"| {med[('torch', b, 'cached')] / med[('torch', b, 'uncached')]:.2f}x | |")
    agree = raw[0]["torch"]["results"][0]["agree_with_focus"]
    notes = [
        f"Medians over {len(rounds)} rounds (focus and torch interleaved), {args.threads} threads "
        f"each; {args.words} CMUdict test words, greedy, {args.reps} timed passes per path and run; "
        f"model {args.model}.",
        f"torch's greedy outputs equal focus's on {agree} of {args.words} words.",
        f"1-minute load average before the runs: median {statistics.median(loads):.2f}, max "
        f"{max(loads):.2f}; CPU used by other processes during the runs: median "
        f"{statistics.median(others):.2f} cores, max {max(others):.2f} (of {os.cpu_count()}); "
        f"steal: median {statistics.median(stolen):.2f} cores, max {max(stolen):.2f}.",
    ]
    write_outputs("\n".join(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n", raw, args)


if __name__ == "__main__":
    main()
