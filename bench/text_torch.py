#!/usr/bin/python3
"""The PyTorch 1.13 twin of focus's text-transformer (src/focus/models/text_transformer.hpp), for
`make bench-text-speed` (bench/compare_text.py); the focus side is `focus bench text`.

Same model, rebuilt from the focus model file: the config comes from its `model_config`
metadata, the weights from its tensors (q/k/v_proj packed into torch's in_proj; every tensor
must be used, every shape must match):
  tok_embed Embedding(V, D) + pos_embed (max_len, D), dropout, depth x nn.TransformerEncoderLayer
  (pre-norm, GELU, d_ff = round(mlp_ratio * D), batch_first; attention dropout = attn_dropout),
  padding (id 0) masked as keys, final LayerNorm, attention pooling (a learned query (1, 1, D)
  through nn.MultiheadAttention with the padding mask), head Linear(D, K).
Same inputs as `focus bench text`: row r, position t -> 1 + (r * 9973 + t * 7919 + 17) mod (V - 1),
labels (r * 7 + 3) mod K.
  --check FILE   focus's `bench text` JSON: the twin's logits of the same batch-1 input and the
                 padded batch (rows of 64, 40, 17, 5 ids) must match focus's within
                 |a - b| <= 1e-4 + 1e-4 |b| (exit status 1 otherwise).
  inference      batch 1, --len ids (no padding), eval + torch.inference_mode (torch's fused
                 encoder-layer fast path applies), --warmup untimed requests, then --requests
                 timed one by one: median, p99 (nearest rank), mean, requests/s; also the median
                 and p99 of each request's on-CPU time (time.thread_time: this thread only, so
                 it undercounts at more than 1 thread, where torch's pool does part of the work).
  training       one fixed batch (--train-batch x --len ids, fixed labels), train mode:
                 zero_grad + forward + cross-entropy + backward + AdamW (lr 1e-3, weight decay
                 1e-2), --train-steps timed after --train-warmup: median step, tokens/s.
Prints one JSON line. Usage: /usr/bin/python3 bench/text_torch.py MODEL.safetensors [--threads 1
       --len 64 --requests 2000 --warmup 200 --train-batch 32 --train-steps 20 --check FOCUS.json
       --no-train --no-infer]
"""
import argparse
import json
import math
import sys
import time

import torch_common as tc
import torch
import torch.nn as nn
import torch.nn.functional as F


class AttentionPooling(nn.Module):
    def __init__(self, dim, heads, attn_dropout):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, dim) * 0.02)  # (1, 1, D)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=attn_dropout, batch_first=True)

    def forward(self, h, pad):  # (N, L, D), (N, L) bool -> (N, D)
        q = self.query.expand(h.shape[0], 1, h.shape[2])
        return self.attn(q, h, h, key_padding_mask=pad, need_weights=False)[0].squeeze(1)


class TextTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, H = c["dim"], c["heads"]
        self.tok_embed = nn.Embedding(c["vocab_size"], D)
        self.pos_embed = nn.Module()
        self.pos_embed.weight = nn.Parameter(torch.randn(c["max_len"], D) * 0.02)  # (Lmax, D)
        self.dropout = nn.Dropout(c["dropout"])
        self.blocks = nn.ModuleList()
        for _ in range(c["depth"]):
            layer = nn.TransformerEncoderLayer(D, H, round(c["mlp_ratio"] * D), c["dropout"],
                                               activation="gelu", batch_first=True, norm_first=True)
            layer.self_attn.dropout = c["attn_dropout"]  # focus: attn_dropout on the probabilities
            self.blocks.append(layer)
        self.norm = nn.LayerNorm(D)
        self.pool = AttentionPooling(D, H, c["attn_dropout"])
        self.head = nn.Linear(D, c["num_classes"])

    def forward(self, ids):  # (N, L) int64 -> (N, K)
        pad = ids == 0  # (N, L)
        h = self.dropout(self.tok_embed(ids) + self.pos_embed.weight[: ids.shape[1]])
        for b in self.blocks:
            h = b(h, src_key_padding_mask=pad)
        return self.head(self.pool(self.norm(h), pad))


def load_model(path):
    tensors, meta = tc.read_safetensors(path, "text_torch")
    if meta.get("model") != "text_transformer":
        raise SystemExit(f"text_torch: {path} holds a {meta.get('model')!r} model, not text_transformer")
    defaults = {"vocab_size": 1000, "max_len": 128, "num_classes": 2, "dim": 64, "depth": 2,
                "heads": 4, "mlp_ratio": 2.0, "dropout": 0.1, "attn_dropout": 0.0}
    cfg = {**defaults, **json.loads(meta["model_config"])}
    model = TextTransformer(cfg)
    sd = tc.focus_state_dict(model, tensors, path, "text_torch")
    model.load_state_dict(sd)
    return model, cfg


def bench_ids(lengths, L, V):
    """(rows, L) int64 as focus bench text: the formula above, right-padded with 0."""
    x = torch.zeros(len(lengths), L, dtype=torch.long)
    for r, n in enumerate(lengths):
        for t in range(min(n, L)):
            x[r, t] = 1 + (r * 9973 + t * 7919 + 17) % (V - 1)
    return x


def percentile(v, q):  # nearest rank, as focus bench text
    v = sorted(v)
    k = math.ceil(q * len(v))
    return v[min(len(v) - 1, max(k, 1) - 1)]


def check(model, cfg, L, path):
    with open(path) as f:
        ref = json.load(f)["check"]
    V = cfg["vocab_size"]
    worst = 0.0
    with torch.inference_mode():
        got = [(model(bench_ids([L], L, V)).flatten().tolist(), ref["batch1_logits"]),
               (model(bench_ids(ref["padded_lengths"], L, V)).flatten().tolist(), ref["padded_logits"])]
    for a, b in got:
        if len(a) != len(b):
            raise SystemExit(f"text_torch: {len(a)} logits against focus's {len(b)}")
        for x, y in zip(a, b):
            worst = max(worst, abs(x - y) / (1e-4 + 1e-4 * abs(y)))
    return worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--len", type=int, default=64)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--train-warmup", type=int, default=3)
    ap.add_argument("--check", help="focus bench text JSON to compare logits with")
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--no-infer", action="store_true")
    a = ap.parse_args()
    threads = tc.setup_threads(a.threads)
    torch.manual_seed(0)
    model, cfg = load_model(a.model)
    model.eval()
    L, V, K = a.len, cfg["vocab_size"], cfg["num_classes"]
    if L > cfg["max_len"]:
        raise SystemExit(f"text_torch: --len {L} exceeds the model's max_len {cfg['max_len']}")
    out = {"config": cfg, "len": L, "input": "token ids", **tc.environment(threads)}
    if a.check:
        worst = check(model, cfg, L, a.check)
        out["check_worst"] = worst  # <= 1 passes
        if worst > 1:
            print(json.dumps(out))
            print(f"text_torch: logits differ from focus's: {worst:.2f} x the tolerance", file=sys.stderr)
            sys.exit(1)
    if not a.no_infer:
        x1 = bench_ids([L], L, V)
        ms, cpu = [], []
        with torch.inference_mode():
            for _ in range(a.warmup):
                model(x1)
            all0 = time.perf_counter()
            for _ in range(a.requests):
                c0 = time.thread_time()
                t0 = time.perf_counter()
                z = model(x1)
                ms.append(1e3 * (time.perf_counter() - t0))
                cpu.append(1e3 * (time.thread_time() - c0))
                if not math.isfinite(float(z[0, 0])):
                    raise SystemExit("text_torch: a non-finite logit")
            total = time.perf_counter() - all0
        out["infer"] = {"requests": a.requests, "median_ms": percentile(ms, 0.5), "p99_ms": percentile(ms, 0.99),
                        "mean_ms": sum(ms) / len(ms), "requests_per_s": a.requests / total,
                        "cpu_median_ms": percentile(cpu, 0.5), "cpu_p99_ms": percentile(cpu, 0.99)}
    if not a.no_train:
        B = a.train_batch
        xb = bench_ids([L] * B, L, V)
        y = torch.tensor([(r * 7 + 3) % K for r in range(B)])
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
        losses, steps = [], []
        for s in range(a.train_warmup + a.train_steps):
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), y)
            loss.backward()
            opt.step()
            losses.append(float(loss))
            if s >= a.train_warmup:
                steps.append(time.perf_counter() - t0)
        if not all(math.isfinite(l) for l in losses):
            raise SystemExit("text_torch: a non-finite training loss")
        med = percentile(steps, 0.5)
        out["train"] = {"batch": B, "len": L, "steps": a.train_steps, "median_step_ms": 1e3 * med,
                        "tokens_per_s": B * L / med, "loss_first": losses[0], "loss_last": losses[-1]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
