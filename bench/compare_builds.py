#!/usr/bin/env python3
"""A/B two builds of focus on the same machine: bench_models (cnn_se, vit: training at batch 128,
inference at batch 1 and 256) and seq2seq_bench (the g2p training step), interleaved A, B, A, B...
for --rounds rounds; prints the median of each figure per build and the ratio B / A.
Used for build-option changes (e.g. FOCUS_ARCH native vs x86-64-v3); both builds verify their
outputs before timing (bench_models, seq2seq_bench do).
  bench/compare_builds.py --a build-native --b build --rounds 5 [--json out.json]"""
import argparse, json, statistics, subprocess, sys


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def figures(build, threads):
    f = {}
    for model in ("cnn_se", "vit"):
        j = run([f"{build}/bench_models", "--model", model, "--threads", str(threads), "--json"])
        for r in j["infer"]:
            f[f"{model} inference b{r['batch']} (images/s)"] = r["images_per_s"]
        f[f"{model} training b{j['train']['batch']} (images/s)"] = j["train"]["images_per_s"]
    j = run([f"{build}/seq2seq_bench", "--threads", str(threads), "--data-parallel", "--max-tokens",
             "1000", "--steps", "20", "--warmup", "3", "--model-config",
             '{"d_model":192,"d_ff":768}', "--json"])
    f["g2p training step (tokens/s)"] = j["train"]["tokens_per_s"]
    return f


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    a = p.parse_args()
    runs = {a.a: [], a.b: []}
    for r in range(a.rounds):
        for build in (a.a, a.b):
            runs[build].append(figures(build, a.threads))
            print(f"round {r + 1} {build} done", file=sys.stderr)
    keys = list(runs[a.a][0])
    med = {b: {k: statistics.median(x[k] for x in runs[b]) for k in keys} for b in runs}
    print(f"{'figure':44s} {a.a:>14s} {a.b:>14s} {'B/A':>6s}")
    for k in keys:
        print(f"{k:44s} {med[a.a][k]:14.1f} {med[a.b][k]:14.1f} {med[a.b][k] / med[a.a][k]:6.3f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"a": a.a, "b": a.b, "rounds": runs, "medians": med}, f, indent=1)


if __name__ == "__main__":
    main()
