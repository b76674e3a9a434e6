#!/usr/bin/python3
"""Per-layer profile, focus next to PyTorch: runs build/profile_layers and the same rows in
PyTorch (the layers of torch_models.py at the shapes they see inside the model), interleaved over
--rounds, and prints a markdown table: per row the focus and torch time per step (count x
(forward + backward)), each side's share of its summed rows, and the focus/torch time ratio.
Rows marked "part of" break another row down and are not added to the sums.
Usage: /usr/bin/python3 bench/profile_layers.py --build build --model vit [--infer] [--batch 128]
Limits: layers timed alone, with warm caches; glue inside the models (reshapes, the autograd
graph walk) is not in the rows: compare their sum with the whole step printed below the table.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import time

import torch_common as tc
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_models import CnnSe, SqueezeExcitation, Vit, make_model

SELF_ATTN = "self-attention (4 proj + sdpa)"


def row(op, shape, count, inputs, grads, fn, part_of=""):
    return {"op": op, "shape": shape, "count": count, "inputs": inputs, "grads": grads, "fn": fn,
            "part_of": part_of}


def s(shape):
    return "(" + ", ".join(str(v) for v in shape) + ")"


def cnn_se_rows(N):
    rows, cin, H = [], 1, 28
    for c in (32, 64, 128):
        x, h = (N, cin, H, H), (N, c, H, H)
        for k in range(2):
            conv = nn.Conv2d(c if k else cin, c, 3, padding=1, bias=False)
            rows.append(row(f"conv3x3 {c if k else cin}->{c}", s(h if k else x), 1, [h if k else x],
                            [k == 1 or cin > 1], conv))
        rows.append(row("batch_norm", s(h), 2, [h], [True], nn.BatchNorm2d(c)))
        rows.append(row("relu", s(h), 2, [h], [True], F.relu))
        rows.append(row("squeeze_excitation", s(h), 1, [h], [True], SqueezeExcitation(c, 4)))
        rows.append(row("max_pool2d 2", s(h), 1, [h], [True], lambda t: F.max_pool2d(t, 2)))
        cin, H = c, H // 2
    last = (N, 128, H, H)
    rows.append(row("global_avg_pool2d", s(last), 1, [last], [True], lambda t: t.mean((2, 3))))
    rows.append(row("dropout 0.2", s((N, 128)), 1, [(N, 128)], [True], nn.Dropout(0.2)))
    rows.append(row("linear 128->10", s((N, 128)), 1, [(N, 128)], [True], nn.Linear(128, 10)))
    return rows


def vit_rows(N):
    T, D, Fw, H = 50, 64, 128, 4
    x, tok, wide, qkv = (N, 1, 28, 28), (N, T, D), (N, T, Fw), (N, H, T, D // H)

    def tokens(p, cls, pos):
        h = p.flatten(2).transpose(1, 2)                                # (N, P, D)
        return torch.cat([cls.expand(N, -1, -1), h], dim=1) + pos       # (N, T, D)

    def sdpa(q, k, v):  # as torch 1.13's multi_head_attention_forward, on (N*H, T, Dh)
        q, k, v = (t.reshape(N * H, T, D // H) for t in (q, k, v))
        w = torch.softmax(torch.bmm(q / math.sqrt(D // H), k.transpose(-2, -1)), dim=-1)
        return torch.bmm(w, v)

    mha = nn.MultiheadAttention(D, H, dropout=0.0, batch_first=True)
    return [
        row("patch_embed conv4x4/4 1->64", s(x), 1, [x], [False], nn.Conv2d(1, D, 4, stride=4)),
        row("tokens: flatten, cls concat, + positions", s((N, D, 7, 7)), 1,
            [(N, D, 7, 7), (1, 1, D), (T, D)], [True, True, True], tokens),
        row("dropout 0.1", s(tok), 9, [tok], [True], nn.Dropout(0.1)),
        row("dropout 0.1", s(wide), 4, [wide], [True], nn.Dropout(0.1)),
        row("layer_norm", s(tok), 9, [tok], [True], nn.LayerNorm(D)),
        row(SELF_ATTN, s(tok), 4, [tok], [True], lambda t: mha(t, t, t, need_weights=False)[0]),
        row("sdpa core", s(qkv) + " x3", 4, [qkv, qkv, qkv], [True] * 3, sdpa, SELF_ATTN),
        row("linear 64->64 (one projection)", s(tok), 16, [tok], [True], nn.Linear(D, D), SELF_ATTN),
        row("linear 64->128", s(tok), 4, [tok], [True], nn.Linear(D, Fw)),
        row("gelu", s(wide), 4, [wide], [True], F.gelu),
        row("linear 128->64", s(wide), 4, [wide], [True], nn.Linear(Fw, D)),
        row("add (residual)", s(tok) + " x2", 8, [tok, tok], [True, True], torch.add),
        row("cls select + linear 64->10", s(tok), 1, [tok], [True],
            (lambda head: lambda t: head(t[:, 0]))(nn.Linear(D, 10))),
    ]


def time_median(fn):
    fn()
    t0 = time.perf_counter()
    fn()
    reps = min(max(int(0.3 / max(time.perf_counter() - t0, 1e-6)), 5), 200)
    return tc.median(tc.time_calls(fn, 0, reps))


def time_row(r, infer, gen):
    if isinstance(r["fn"], nn.Module):
        r["fn"].train(not infer)
    ins = [torch.randn(*shape, generator=gen).requires_grad_(g and not infer)
           for shape, g in zip(r["inputs"], r["grads"])]
    out = {k: r[k] for k in ("op", "shape", "count", "part_of")}
    if infer:
        with torch.no_grad():
            if not torch.isfinite(r["fn"](*ins)).all():
                raise SystemExit(f"profile_layers: {r['op']} gives non-finite outputs")
            out["fwd_ms"], out["bwd_ms"] = 1e3 * time_median(lambda: r["fn"](*ins)), 0.0
        return out
    y0 = r["fn"](*ins)
    if not torch.isfinite(y0).all():
        raise SystemExit(f"profile_layers: {r['op']} gives non-finite outputs")
    g = torch.ones_like(y0)
    params = list(r["fn"].parameters()) if isinstance(r["fn"], nn.Module) else []

    def both():
        for t in ins + params:
            t.grad = None
        r["fn"](*ins).backward(g)

    fwd = time_median(lambda: r["fn"](*ins))
    out["fwd_ms"], out["bwd_ms"] = 1e3 * fwd, 1e3 * max(0.0, time_median(both) - fwd)
    return out


def torch_profile(model, batch, infer, gen):
    rows = [time_row(r, infer, gen) for r in (cnn_se_rows if model == "cnn_se" else vit_rows)(batch)]
    m = make_model(model)
    x = torch.randn(batch, 1, 28, 28, generator=gen)  # (N, 1, 28, 28)
    y = torch.randint(0, 10, (batch,), generator=gen)  # (N)
    if infer:
        m.eval()
        with torch.no_grad():
            step = time_median(lambda: m(x))
        return {"rows": rows, "step_ms": 1e3 * step}
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1e-2)

    def train_step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(m(x), y).backward()
        opt.step()

    step = time_median(train_step)
    logits = torch.randn(batch, 10, generator=gen, requires_grad=True)  # (N, 10)
    ce_f = time_median(lambda: F.cross_entropy(logits, y))
    ce_b = time_median(lambda: F.cross_entropy(logits, y).backward())
    rows.append({"op": "cross_entropy", "shape": s((batch, 10)), "count": 1, "part_of": "",
                 "fwd_ms": 1e3 * ce_f, "bwd_ms": 1e3 * max(0.0, ce_b - ce_f)})
    F.cross_entropy(m(x), y).backward()
    nparams = sum(p.numel() for p in m.parameters())
    rows.append({"op": "AdamW step", "shape": f"{nparams} parameters", "count": 1, "part_of": "",
                 "fwd_ms": 1e3 * time_median(opt.step), "bwd_ms": 0.0})
    return {"rows": rows, "step_ms": 1e3 * step}


def total(r):
    return r["count"] * (r["fwd_ms"] + r["bwd_ms"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--model", choices=["cnn_se", "vit"], required=True)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--infer", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--focus-env", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    tc.setup_threads(args.threads)
    gen = torch.Generator().manual_seed(3)
    cmd = [os.path.join(args.build, "profile_layers"), "--model", args.model, "--batch",
           str(args.batch), "--threads", str(args.threads), "--json"] + (["--infer"] if args.infer else [])
    env = dict(os.environ, **dict(kv.split("=", 1) for kv in args.focus_env))
    focus_runs, torch_runs, loads = [], [], []
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        focus_runs.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True,
                                                    env=env).stdout))
        torch_runs.append(torch_profile(args.model, args.batch, args.infer, gen))

    def med(runs, i, key):
        return statistics.median(r["rows"][i][key] for r in runs)

    n = len(focus_runs[0]["rows"])
    fr = [dict(focus_runs[0]["rows"][i], fwd_ms=med(focus_runs, i, "fwd_ms"),
               bwd_ms=med(focus_runs, i, "bwd_ms")) for i in range(n)]
    tr = [dict(torch_runs[0]["rows"][i], fwd_ms=med(torch_runs, i, "fwd_ms"),
               bwd_ms=med(torch_runs, i, "bwd_ms")) for i in range(n)]
    fsum = sum(total(r) for r in fr if not r["part_of"])
    tsum = sum(total(r) for r in tr if not r["part_of"])
    mode = f"inference forward, batch {args.batch}" if args.infer else f"training step, batch {args.batch}"
    print(f"{args.model}, {mode}: time per step in ms = count x (forward + backward)\n")
    print("| layer | shape | count | focus fwd / bwd ms | focus ms/step | focus share | "
          "torch fwd / bwd ms | torch ms/step | torch share | focus/torch |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for f, t in zip(fr, tr):
        assert f["op"] == t["op"], (f["op"], t["op"])
        label = f["op"] + (f" (part of {f['part_of']})" if f["part_of"] else "")
        print(f"| {label} | {f['shape']} | {f['count']} | {f['fwd_ms']:.2f} / {f['bwd_ms']:.2f} | "
              f"{total(f):.1f} | {100 * total(f) / fsum:.0f}% | {t['fwd_ms']:.2f} / {t['bwd_ms']:.2f} | "
              f"{total(t):.1f} | {100 * total(t) / tsum:.0f}% | {total(f) / max(total(t), 1e-9):.2f} |")
    fstep = statistics.median(r["step_ms"] for r in focus_runs)
    tstep = statistics.median(r["step_ms"] for r in torch_runs)
    print(f"| **sum of rows** | | | | {fsum:.1f} | | | {tsum:.1f} | | {fsum / tsum:.2f} |")
    print(f"| **whole {'forward' if args.infer else 'step'}** | | | | {fstep:.1f} | | | {tstep:.1f} | | "
          f"{fstep / tstep:.2f} |")
    print(f"\n{args.rounds} round(s), {args.threads} threads; load average before: "
          + ", ".join(f"{v:.2f}" for v in loads))


if __name__ == "__main__":
    main()
