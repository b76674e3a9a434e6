#!/usr/bin/python3
"""`make bench-text-speed`: focus's text-transformer next to its PyTorch 1.13 twin
(bench/text_torch.py), batch-1 inference latency and training tokens/s (issue 20).

1. Model: --model FILE, or a small one trained here in seconds: `focus train --task text` for one
   epoch on the sentiment sentences (data cache, 2,700 train / 300 valid, word tokenizer) with
   the default text-transformer config (dim 64, depth 2, 4 heads, MLP 128) and max_len 128. Speed
   does not depend on the weights' quality.
2. Verify: `focus bench text` writes its logits of the batch-1 64-token input and of a padded batch;
   the twin loads the same file and must match within |a - b| <= 1e-4 + 1e-4 |b| (else exit 1).
3. Time: --rounds interleaved rounds; in each, for each thread count (--threads, default 1,2):
   focus then the twin, each a fresh process: inference (batch 1, --len token ids, --warmup
   untimed then --requests timed one by one: median, p99, requests/s, and the on-CPU median
   and p99, which leave out the waits for a core on a loaded machine) and training (one fixed
   batch of --train-batch x --len ids, --train-steps AdamW steps: tokens/s). Reported: the
   medians over rounds of each figure, and the ratios focus / twin.
Inputs are token ids, not text (the same formula on both sides; tokenizers are not compared).
The load average is recorded before and after: the figures are only as quiet as the machine.
Prints a markdown table and writes it with the raw numbers to --out (results.md, results.json).
Usage: /usr/bin/python3 bench/compare_text.py [--build build --out runs/text-speed --rounds 5
       --threads 1,2 --model FILE --quick]
"""
import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def sh(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def train_model(a):
    d = os.path.join(a.out, "data")
    os.makedirs(d, exist_ok=True)
    rows = []
    for site in ("amazon", "imdb", "yelp"):
        with open(os.path.join(ROOT, "data-cache", "sentiment", f"{site}.json")) as f:
            for r in json.load(f):
                t = " ".join(r["text"].split())
                if t:
                    rows.append((r["class"], t))
    random.Random(0).shuffle(rows)
    for name, part in (("train", rows[:2700]), ("valid", rows[2700:])):
        with open(os.path.join(d, f"{name}.tsv"), "w") as f:
            f.writelines(f"{c}\t{t}\n" for c, t in part)
    out = os.path.join(a.out, "model")
    sh([os.path.join(a.build, "focus"), "train", "--task", "text", "--train", os.path.join(d, "train.tsv"),
        "--valid", os.path.join(d, "valid.tsv"), "--epochs", "1", "--batch", "32", "--src-tokenizer", "word",
        "--threads", "1", "--model-config", '{"max_len": 128}', "--out", out])
    return os.path.join(out, "model_best.safetensors")


def focus_run(a, threads, extra):
    return json.loads(sh([os.path.join(a.build, "focus"), "bench", "text", "--model", a.model, "--threads",
                          str(threads), "--len", str(a.len), "--requests", str(a.requests), "--warmup",
                          str(a.warmup), "--train-batch", str(a.train_batch), "--train-steps",
                          str(a.train_steps)] + extra).strip().splitlines()[-1])


def torch_run(a, threads, extra):
    return json.loads(sh(["/usr/bin/python3", os.path.join(HERE, "text_torch.py"), a.model, "--threads",
                          str(threads), "--len", str(a.len), "--requests", str(a.requests), "--warmup",
                          str(a.warmup), "--train-batch", str(a.train_batch), "--train-steps",
                          str(a.train_steps)] + extra).strip().splitlines()[-1])


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_model():
    try:
        for line in sh(["lscpu"]).splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default="runs/text-speed")
    ap.add_argument("--model", help="a text model file (default: train a small one)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--len", type=int, default=64)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="2 rounds of 500 requests and 10 training steps")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.requests, a.train_steps = 2, 500, 10
    os.makedirs(a.out, exist_ok=True)
    threads = [int(t) for t in a.threads.split(",")]
    if not a.model:
        a.model = train_model(a)
    load_before = loadavg()
    check_file = os.path.join(a.out, "focus_check.json")
    focus_check = focus_run(a, 1, ["--no-infer", "--no-train"])
    with open(check_file, "w") as f:
        json.dump(focus_check, f)
    twin_check = torch_run(a, 1, ["--no-infer", "--no-train", "--check", check_file])
    print(f"verify: twin logits within tolerance (worst {twin_check['check_worst']:.4f} of it); "
          f"config {focus_check['config']}", file=sys.stderr)
    raw = {t: {"focus": {"infer": [], "train": []}, "torch": {"infer": [], "train": []}} for t in threads}
    for r in range(a.rounds):
        for t in threads:
            raw[t]["focus"]["infer"].append(focus_run(a, t, ["--no-train"])["infer"])
            raw[t]["torch"]["infer"].append(torch_run(a, t, ["--no-train"])["infer"])
            raw[t]["focus"]["train"].append(focus_run(a, t, ["--no-infer"])["train"])
            raw[t]["torch"]["train"].append(torch_run(a, t, ["--no-infer"])["train"])
            fi, ti = raw[t]["focus"]["infer"][-1], raw[t]["torch"]["infer"][-1]
            print(f"round {r + 1}, {t} thread(s): focus {fi['median_ms']:.3f} ms (p99 {fi['p99_ms']:.3f}), "
                  f"torch {ti['median_ms']:.3f} ms (p99 {ti['p99_ms']:.3f}); training focus "
                  f"{raw[t]['focus']['train'][-1]['tokens_per_s']:.0f}, torch "
                  f"{raw[t]['torch']['train'][-1]['tokens_per_s']:.0f} tokens/s", file=sys.stderr)
    load_after = loadavg()
    med = lambda rows, k: statistics.median(x[k] for x in rows)  # noqa: E731
    c = focus_check["config"]
    lines = [f"Machine: {cpu_model()}, {os.cpu_count()} CPUs, focus ISA {focus_check['isa']}, PyTorch "
             f"{twin_check['torch']} (BLAS core {twin_check['blas_core']}); load average {load_before} before, "
             f"{load_after} after.",
             f"Model: {a.model}: text_transformer dim {c['dim']}, depth {c['depth']}, {c['heads']} heads, "
             f"mlp_ratio {c['mlp_ratio']}, vocabulary {c['vocab_size']}, {c['num_classes']} classes. "
             f"Twin logits checked: worst {twin_check['check_worst']:.4f} of the tolerance 1e-4 + 1e-4 |x|.",
             f"{a.rounds} interleaved rounds; inference: batch 1, {a.len} token ids, {a.warmup} warm-up then "
             f"{a.requests} timed requests per run; training: batch {a.train_batch} x {a.len} tokens, "
             f"{a.train_steps} timed AdamW steps per run. Medians over the rounds.", "",
             "| threads | impl | median ms | p99 ms | p99 / median | on-CPU median / p99 ms | requests/s | training tokens/s |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    summary = {}
    for t in threads:
        s = {}
        for impl in ("focus", "torch"):
            i, tr = raw[t][impl]["infer"], raw[t][impl]["train"]
            s[impl] = {"median_ms": med(i, "median_ms"), "p99_ms": med(i, "p99_ms"),
                       "requests_per_s": med(i, "requests_per_s"), "tokens_per_s": med(tr, "tokens_per_s"),
                       "cpu_median_ms": med(i, "cpu_median_ms"), "cpu_p99_ms": med(i, "cpu_p99_ms")}
            s[impl]["p99_over_median"] = s[impl]["p99_ms"] / s[impl]["median_ms"]
            name = "focus" if impl == "focus" else "PyTorch twin"
            x = s[impl]
            lines.append(f"| {t} | {name} | {x['median_ms']:.3f} | {x['p99_ms']:.3f} | {x['p99_over_median']:.2f} | "
                         f"{x['cpu_median_ms']:.3f} / {x['cpu_p99_ms']:.3f} | "
                         f"{x['requests_per_s']:.0f} | {x['tokens_per_s']:.0f} |")
        s["throughput_ratio"] = s["focus"]["requests_per_s"] / s["torch"]["requests_per_s"]
        s["median_latency_ratio"] = s["torch"]["median_ms"] / s["focus"]["median_ms"]
        s["training_ratio"] = s["focus"]["tokens_per_s"] / s["torch"]["tokens_per_s"]
        summary[t] = s
    lines.append("")
    for t in threads:
        s = summary[t]
        lines.append(f"{t} thread(s): focus / twin throughput {s['throughput_ratio']:.2f}x (target >= 3x), "
                     f"median latency twin / focus {s['median_latency_ratio']:.2f}x, focus p99 / median "
                     f"{s['focus']['p99_over_median']:.2f} (target <= 2; on-CPU "
                     f"{s['focus']['cpu_p99_ms'] / s['focus']['cpu_median_ms']:.2f}); training tokens/s focus / twin "
                     f"{s['training_ratio']:.2f}x")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"model": a.model, "load_before": load_before, "load_after": load_after, "cpu": cpu_model(),
                   "focus_check": focus_check, "twin_check": twin_check, "summary": summary, "raw": raw}, f, indent=2)


if __name__ == "__main__":
    main()
