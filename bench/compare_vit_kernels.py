#!/usr/bin/python3
"""The ViT end to end with the fused attention kernels vs the reference (materialised) ones.

Speed: build/bench_models --model vit (training images/s at batch 128, inference at batch 1 and
256), run with FOCUS_ATTENTION=fused and =reference interleaved, alternating the order, for
--rounds rounds; prints medians and the fused/reference ratio.
Accuracy: with --train-images N > 0, also trains the ViT for one epoch on N images with each
kernel (same seed, same data order) and prints both validation accuracies: the kernels compute the
same function, so they must agree to within rounding-induced drift.

Usage: /usr/bin/python3 bench/compare_vit_kernels.py --build build [--rounds 5] [--iters 10]
       [--train-images 10000] [--model-config '{"stem": "conv"}'] [--json-out FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def run_json(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out[out.index("{"):])


def bench(build, kernel, iters, model_config):
    env = dict(os.environ, FOCUS_ATTENTION=kernel)
    cmd = [f"{build}/bench_models", "--model", "vit", "--iters", str(iters), "--json"]
    if model_config:
        cmd += ["--model-config", model_config]
    return run_json(cmd, env)


def pick(result, key):
    """Images/s of one phase ('train', 'infer_1', 'infer_256') from bench_models' JSON."""
    if key == "train":
        return result["train"]["images_per_s"]
    batch = int(key.split("_")[1])
    for r in result["infer"]:
        if r["batch"] == batch:
            return r["images_per_s"]
    raise KeyError(key)


def train_acc(build, kernel, images, model_config):
    env = dict(os.environ, FOCUS_ATTENTION=kernel)
    with tempfile.TemporaryDirectory() as out:
        cmd = [f"{build}/focus", "train", "--task", "fashion-mnist", "--model", "vit",
               "--epochs", "1", "--limit-train", str(images), "--val-size", "5000",
               "--augment", "false", "--lr", "3e-3", "--warmup-epochs", "0.3", "--out", out]
        if model_config:
            cmd += ["--model-config", model_config]
        subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        with open(os.path.join(out, "metrics.jsonl")) as f:
            last = [json.loads(line) for line in f if line.strip()][-1]
    return last["val_acc"], last["val_loss"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--train-images", type=int, default=0)
    ap.add_argument("--model-config", default="")
    ap.add_argument("--json-out", default="")
    a = ap.parse_args()

    phases = ["train", "infer_1", "infer_256"]
    got = {k: {p: [] for p in phases} for k in ("fused", "reference")}
    for r in range(a.rounds):
        order = ["fused", "reference"] if r % 2 == 0 else ["reference", "fused"]
        for k in order:
            res = bench(a.build, k, a.iters, a.model_config)
            for p in phases:
                got[k][p].append(pick(res, p))
        print(f"round {r + 1}/{a.rounds}: " + ", ".join(
            f"{k} train {got[k]['train'][-1]:.0f}" for k in order), file=sys.stderr)

    print(f"| ViT images/s (medians of {a.rounds} rounds) | fused | reference | fused / reference |")
    print("|---|---|---|---|")
    summary = {}
    for p in phases:
        f, ref = statistics.median(got["fused"][p]), statistics.median(got["reference"][p])
        summary[p] = {"fused": f, "reference": ref, "ratio": f / ref}
        print(f"| {p.replace('_', ' batch ')} | {f:.0f} | {ref:.0f} | {f / ref:.2f}x |")
    if a.train_images > 0:
        acc = {k: train_acc(a.build, k, a.train_images, a.model_config)
               for k in ("fused", "reference")}
        summary["one_epoch"] = {k: {"val_acc": v[0], "val_loss": v[1]} for k, v in acc.items()}
        print(f"\nOne epoch on {a.train_images} images, validation accuracy / loss: "
              + ", ".join(f"{k} {v[0] * 100:.2f}% / {v[1]:.4f}" for k, v in acc.items()))
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"raw": got, "summary": summary}, f, indent=2)


if __name__ == "__main__":
    main()
