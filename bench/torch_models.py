#!/usr/bin/python3
"""PyTorch twin of bench/bench_models.cpp: focus's cnn_se and vit rebuilt in PyTorch layer by
layer, with the same measurements (training and inference images/s, peak resident memory).

The architectures mirror src/focus/models/{cnn_se,vit}.cpp with their default configs:
  cnn_se: per stage c in (32, 64, 128): conv3x3 (no bias) - BN - ReLU, conv3x3 - BN - ReLU,
          SE(c, reduction 4), maxpool 2; global average pool, dropout 0.2, Linear(128, 10).
  vit:    patch 4 conv embedding (dim 64), class token, learned positions (50, 64), dropout 0.1,
          4 pre-norm GELU encoder layers (4 heads, MLP 128, dropout 0.1, attention dropout 0),
          final LayerNorm, class-token pooling, Linear(64, 10).
The parameter names and shapes are checked against focus's (torch's packed in_proj is split into
focus's q/k/v_proj first): pass --expect-shapes FILE (focus's bench JSON); without it the counts
are checked against the defaults' (299,202 and 139,018). A mismatch exits with status 1.
Protocol (same as bench_models.cpp): verify first (inference: finite, deterministic, batch-1 output
= row 0 of the large batch; training: finite losses that fall over the warm-up steps on one fixed
batch), then time (medians of repeated calls). Inference runs before training, each phase after a
reset of the peak-RSS counter, so each phase's peak is its own.
--autocast bf16 gives PyTorch's own mixed precision (the twin of bench_models --precision bf16):
the training step's forward and loss run under torch.autocast("cpu", dtype=torch.bfloat16), the
backward and the optimizer outside it on f32 master weights (PyTorch's recipe); the inference
calls (verification and timing) run under autocast too. The checks stay; only the batch-1 vs row-0
tolerance widens to bf16's rounding (see verify_inference).
Usage: /usr/bin/python3 bench/torch_models.py --model cnn_se|vit [--batch 128] [--iters 20]
       [--autocast off|bf16] [--json]
"""
import argparse
import json
import math
import time
import sys

import torch_common as tc
import torch
import torch.nn as nn
import torch.nn.functional as F

EXPECTED_PARAMS = {"cnn_se": 299202, "vit": 139018}


class SqueezeExcitation(nn.Module):
    def __init__(self, c, reduction):
        super().__init__()
        self.fc1 = nn.Linear(c, max(1, c // reduction))
        self.fc2 = nn.Linear(max(1, c // reduction), c)

    def forward(self, x):  # (N, C, H, W)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))  # (N, C)
        return x * s[:, :, None, None]


class Stage(nn.Module):
    def __init__(self, cin, cout, reduction, momentum):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, eps=1e-5, momentum=momentum)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5, momentum=momentum)
        self.se = SqueezeExcitation(cout, reduction)

    def forward(self, x):  # (N, C, H, W) -> (N, O, H/2, W/2)
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        return F.max_pool2d(self.se(h), 2)


class CnnSe(nn.Module):
    def __init__(self, in_channels=1, num_classes=10, channels=(32, 64, 128), se_reduction=4,
                 dropout=0.2, bn_momentum=0.1):
        super().__init__()
        stages, cin = [], in_channels
        for c in channels:
            stages.append(Stage(cin, c, se_reduction, bn_momentum))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x):  # (N, 1, 28, 28) -> (N, classes)
        for s in self.stages:
            x = s(x)
        return self.head(self.dropout(x.mean((2, 3))))


class LearnedPositionalEncoding(nn.Module):
    def __init__(self, max_len, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(max_len, dim) * 0.02)  # (Lmax, D)

    def forward(self, x):  # (B, L, D)
        return x + self.weight[: x.shape[1]]


class Vit(nn.Module):
    def __init__(self, image_size=28, in_channels=1, num_classes=10, patch=4, dim=64, depth=4,
                 heads=4, mlp_ratio=2.0, dropout=0.1, attn_dropout=0.0):
        super().__init__()
        tokens = (image_size // patch) ** 2 + 1  # T: patches + class token
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = LearnedPositionalEncoding(tokens, dim)
        self.dropout = nn.Dropout(dropout)
        blocks = []
        for _ in range(depth):
            layer = nn.TransformerEncoderLayer(dim, heads, round(mlp_ratio * dim), dropout,
                                               activation="gelu", layer_norm_eps=1e-5,
                                               batch_first=True, norm_first=True)
            layer.self_attn.dropout = attn_dropout  # torch gives the attention `dropout` too
            blocks.append(layer)
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):  # (N, C, S, S) -> (N, classes)
        h = self.patch_embed(x).flatten(2).transpose(1, 2)                      # (N, P, D)
        h = torch.cat([self.cls_token.expand(h.shape[0], -1, -1), h], dim=1)   # (N, T, D)
        h = self.dropout(self.pos_embed(h))
        for b in self.blocks:
            h = b(h)
        return self.head(self.norm(h)[:, 0])


def make_model(name):
    return CnnSe() if name == "cnn_se" else Vit()


def focus_named_shapes(model):
    """{name: shape} in focus's naming: in_proj_weight/bias split into q/k/v_proj."""
    out = {}
    for name, p in model.named_parameters():
        for packed, leaf in (("in_proj_weight", "weight"), ("in_proj_bias", "bias")):
            if name.endswith(packed):
                prefix = name[: -len(packed)]
                for i, proj in enumerate(("q_proj", "k_proj", "v_proj")):
                    out[f"{prefix}{proj}.{leaf}"] = list(p.chunk(3, 0)[i].shape)
                break
        else:
            out[name] = list(p.shape)
    return out


def check_architecture(model, name, expect_file):
    shapes = focus_named_shapes(model)
    count = sum(p.numel() for p in model.parameters())
    if expect_file:
        with open(expect_file) as f:
            want = json.load(f)["param_shapes"]
        if shapes != want:
            only_t = sorted(set(shapes) - set(want))
            only_f = sorted(set(want) - set(shapes))
            diff = sorted(k for k in set(shapes) & set(want) if shapes[k] != want[k])
            raise SystemExit(f"torch_models: {name} differs from focus's: only in torch {only_t}, "
                             f"only in focus {only_f}, shapes differ {diff}")
    elif count != EXPECTED_PARAMS[name]:
        raise SystemExit(f"torch_models: {name} has {count} parameters, focus's default has "
                         f"{EXPECTED_PARAMS[name]}")
    return count, shapes


def verify_inference(model, batch, gen, mode):
    """Eval outputs: finite, (N, 10), deterministic, row 0 independent of the batch."""
    x = torch.randn(batch, 1, 28, 28, generator=gen)  # (N, 1, 28, 28)
    y1, y2 = model(x).float(), model(x).float()
    if y1.shape != (batch, 10) or not torch.isfinite(y1).all():
        raise SystemExit(f"torch_models: inference output {tuple(y1.shape)} not finite (N, 10)")
    if not torch.equal(y1, y2):
        raise SystemExit("torch_models: eval outputs differ between two identical calls")
    y0 = model(x[:1]).float()
    # Under bf16 autocast the logits are bf16 (a relative step of 2^-8 to 2^-7): one different
    # rounding on the way (a batch of 1 may take other GEMM kernels) moves them by whole steps, so
    # the f32 tolerance would be one step's fraction. Measured here (torch 1.13, AVX512-BF16, both
    # models, 3 seeds): no difference at all; mixing rows of the batch would move them by O(1).
    tol = (2e-2, 2e-3) if mode == "bf16" else (1e-4, 1e-5)
    if not torch.allclose(y0[0], y1[0], rtol=tol[0], atol=tol[1]):
        raise SystemExit(f"torch_models: batch-1 output differs from row 0 of the batch by "
                         f"{(y0[0] - y1[0]).abs().max().item():.3g}")
    return x


def bench_inference(model, batch, iters, gen, mode):
    tc.reset_peak_rss()
    rss0 = tc.rss_mib()
    model.eval()
    with torch.no_grad(), tc.autocast(mode):
        x = verify_inference(model, batch, gen, mode)
        reps = infer_reps(batch, iters)
        times = tc.time_calls(lambda: model(x), warmup=max(3, reps // 10), reps=reps)
    med = tc.median(times)
    return {"batch": batch, "reps": reps, "median_ms": med * 1e3, "images_per_s": batch / med,
            "rss_before_mib": rss0, "peak_rss_mib": tc.peak_rss_mib()}


def infer_reps(batch, iters):
    """Timed calls at an inference batch: iters at 256 images, up to 50 * iters at batch 1."""
    return max(iters, min(50 * iters, round(iters * 256 / batch)))


def bench_train(model, batch, iters, gen, mode, warmup=5):
    tc.reset_peak_rss()
    rss0 = tc.rss_mib()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    x = torch.randn(batch, 1, 28, 28, generator=gen)  # (N, 1, 28, 28)
    y = torch.randint(0, 10, (batch,), generator=gen)  # (N)
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        with tc.autocast(mode):  # cross_entropy runs in f32 under autocast: an f32 loss
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())

    for _ in range(warmup):
        step()
    if not all(math.isfinite(v) for v in losses) or not losses[-1] < losses[0]:
        raise SystemExit(f"torch_models: training losses do not fall on a fixed batch: {losses}")
    cpu0 = time.process_time()  # all threads: steadier than wall time on a loaded machine
    times = tc.time_calls(step, warmup=0, reps=iters)
    cpu_ms = (time.process_time() - cpu0) * 1e3 / iters
    med = tc.median(times)
    return {"batch": batch, "iters": iters, "median_ms": med * 1e3, "images_per_s": batch / med,
            "cpu_ms_per_step": cpu_ms, "loss_first": losses[0], "loss_after_warmup": losses[warmup - 1],
            "rss_before_mib": rss0, "peak_rss_mib": tc.peak_rss_mib()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["cnn_se", "vit"], required=True)
    ap.add_argument("--batch", type=int, default=128, help="training batch")
    ap.add_argument("--infer-batch", default="1,256", help="inference batches, comma-separated")
    ap.add_argument("--iters", type=int, default=20, help="timed training steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--expect-shapes", help="focus bench JSON whose param_shapes must match")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--autocast", choices=["off", "bf16"], default="off",
                    help="bf16: forward and loss under torch.autocast (bf16), f32 master weights")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    threads = tc.setup_threads(args.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = make_model(args.model)
    count, shapes = check_architecture(model, args.model, args.expect_shapes)
    out = {"framework": "torch", "model": args.model, **tc.environment(threads),
           "autocast": args.autocast, "params": count, "param_shapes": shapes, "infer": []}
    for b in (int(s) for s in args.infer_batch.split(",")):
        out["infer"].append(bench_inference(model, b, args.iters, gen, args.autocast))
    if not args.skip_train:
        out["train"] = bench_train(model, args.batch, args.iters, gen, args.autocast)
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()
        return
    print(f"torch {out['torch']} {args.model}: {count} parameters, {threads} threads, "
          f"OpenBLAS core {out['blas_core']}, autocast {args.autocast}")
    for r in out["infer"]:
        print(f"inference batch {r['batch']:4d}: {r['images_per_s']:10.1f} images/s "
              f"({r['median_ms']:.3f} ms/call, peak RSS {r['peak_rss_mib']:.0f} MiB)")
    if "train" in out:
        t = out["train"]
        print(f"training  batch {t['batch']:4d}: {t['images_per_s']:10.1f} images/s "
              f"({t['median_ms']:.1f} ms/step, loss {t['loss_first']:.3f} -> "
              f"{t['loss_after_warmup']:.3f}, peak RSS {t['peak_rss_mib']:.0f} MiB)")


if __name__ == "__main__":
    main()
