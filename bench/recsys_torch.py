#!/usr/bin/python3
"""The PyTorch 1.13 twin of focus's sasrec (src/focus/models/sasrec.hpp), for `make bench-recsys`.

Same model: item Embedding(V, D) ~ N(0, 1/D) shared with the output (logits = h @ E^T), learned
positions ~ N(0, 0.02^2), dropout, depth x pre-norm nn.TransformerEncoderLayer (GELU, d_ff =
mlp_ratio * D, batch_first, norm_first) under a causal mask, a final LayerNorm. Same data: the
user,item,timestamp CSV focus wrote (interactions.csv of a synthetic run), leave-one-out (last
item tests, the one before validates), a training draw = the training fold's last max_len + 1
items (inputs right-padded with 0, targets -100 on padding); only the target positions are
projected (full softmax over every item). Same training: AdamW (weight decay 0.05), a linear
warm-up of one epoch then cosine to min_lr, gradient clipping at 1.0, shuffled users, drop_last
batches; validation HR@1 each epoch keeps the best model. Test: HR@10 / NDCG@10 of the test item
against every item (ties count against the target, as focus).
Prints one JSON line: {"targets_per_s": [...per epoch], "hr": .., "ndcg": .., "epochs": ..}.
Usage: /usr/bin/python3 bench/recsys_torch.py interactions.csv [--epochs 50 --batch 128
       --lr 2e-3 --dim 64 --depth 2 --heads 2 --max-len 50 --threads 2 --no-eval]
"""
import argparse
import csv
import json
import math
import random
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_csv(path):
    users, items, order = {}, {"<pad>": 0}, []
    with open(path) as f:
        r = csv.reader(f)
        next(r)
        for k, (u, i, t) in enumerate(r):
            if i not in items:
                items[i] = len(items)
            users.setdefault(u, []).append((int(t), k, items[i]))
    seqs = [[i for _, _, i in sorted(ev)] for ev in users.values()]
    return [s for s in seqs if len(s) >= 3], len(items)


class SasRec(nn.Module):
    def __init__(self, V, L, D, depth, heads, mlp_ratio, dropout):
        super().__init__()
        self.items = nn.Embedding(V, D)
        nn.init.normal_(self.items.weight, 0, 1 / math.sqrt(D))
        self.pos = nn.Parameter(torch.randn(L, D) * 0.02)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(D, heads, round(mlp_ratio * D), dropout, activation="gelu",
                                                               batch_first=True, norm_first=True) for _ in range(depth))
        self.norm = nn.LayerNorm(D)

    def hidden(self, x):
        L = x.shape[1]
        h = self.drop(self.items(x) + self.pos[:L])
        mask = torch.triu(torch.full((L, L), float("-inf")), 1)
        for b in self.blocks:
            h = b(h, src_mask=mask)
        return self.norm(h)

    def last_scores(self, x):
        h = self.hidden(x)
        last = (x != 0).sum(1) - 1
        return h[torch.arange(x.shape[0]), last] @ self.items.weight.t()


def pad(rows, fill):
    L = max(len(r) for r in rows)
    return torch.tensor([r + [fill] * (L - len(r)) for r in rows], dtype=torch.long)


def train_batch(seqs, users, L):
    xs, ys = [], []
    for u in users:
        w = seqs[u][:-2][-(L + 1):]
        xs.append(w[:-1] if len(w) > 1 else w)
        ys.append(w[1:] if len(w) > 1 else [-100])
    return pad(xs, 0), pad(ys, -100)


def ranks(model, seqs, L, fold):
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(seqs), 256):
            chunk = seqs[s:s + 256]
            hist = [q[:len(q) - (1 if fold == "test" else 2)][-L:] for q in chunk]
            tgt = torch.tensor([q[-1] if fold == "test" else q[-2] for q in chunk])
            sc = model.last_scores(pad(hist, 0))
            sc[:, 0] = float("-inf")
            t = sc[torch.arange(len(chunk)), tgt].unsqueeze(1)
            out += ((sc >= t).sum(1) - 1).tolist()
    model.train()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr", type=float, default=1e-5)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--mlp-ratio", type=float, default=1.0)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-eval", action="store_true", help="time training only (no validation, no test)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    seqs, V = read_csv(a.csv)
    model = SasRec(V, a.max_len, a.dim, a.depth, a.heads, a.mlp_ratio, a.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.05)
    train_users = [u for u, s in enumerate(seqs) if len(s) >= 4]
    steps = len(train_users) // a.batch
    total, warm = max(1, steps * a.epochs), min(steps * a.epochs - 1, steps)
    lr_at = lambda s: a.lr * (s + 1) / warm if s < warm else a.min_lr + 0.5 * (a.lr - a.min_lr) * (
        1 + math.cos(math.pi * (s - warm) / max(1, total - warm)))
    step, best, best_state, tps = 0, -1.0, None, []
    for epoch in range(a.epochs):
        order = train_users[:]
        random.shuffle(order)
        t0, targets = time.perf_counter(), 0
        for b in range(steps):
            x, y = train_batch(seqs, order[b * a.batch:(b + 1) * a.batch], a.max_len)
            keep = (y != -100).flatten().nonzero().squeeze(1)
            h = model.hidden(x).reshape(-1, a.dim).index_select(0, keep)
            loss = F.cross_entropy(h @ model.items.weight.t(), y.flatten().index_select(0, keep))
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            opt.zero_grad(set_to_none=False)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            targets += int(keep.numel())
        tps.append(targets / (time.perf_counter() - t0))
        if not a.no_eval:
            hr1 = sum(r < 1 for r in ranks(model, seqs, a.max_len, "valid")) / len(seqs)
            if hr1 > best:
                best, best_state = hr1, {k: v.clone() for k, v in model.state_dict().items()}
    res = {"targets_per_s": tps, "epochs": a.epochs, "parameters": sum(p.numel() for p in model.parameters())}
    if not a.no_eval:
        model.load_state_dict(best_state)
        r = ranks(model, seqs, a.max_len, "test")
        res["hr"] = sum(x < 10 for x in r) / len(r)
        res["ndcg"] = sum(1 / math.log2(x + 2) for x in r if x < 10) / len(r)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
