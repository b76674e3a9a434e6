#!/usr/bin/python3
"""PyTorch twin of build/seq2seq_bench: encoder-decoder Transformer training throughput on the
batches and initial weights that `seq2seq_bench --dump-batches FILE` wrote (safetensors).

Model: nn.Transformer(norm_first=True, activation="gelu", batch_first=True) between embeddings
scaled by sqrt(E) plus sinusoidal positions (dropout after the sum) and an output projection tied
to the target embedding; attention-probability dropout set to the config's attn_dropout (torch's
layers would otherwise use `dropout` there, focus's default is 0). Step: zero_grad(set_to_none),
CrossEntropyLoss(ignore_index=0, label_smoothing), backward, clip_grad_norm_(1.0), AdamW(lr 1e-3,
weight decay 1e-2). Figures as seq2seq_bench: tokens/s = non-padding tokens over the timed steps
/ their total time, ms/step median, peak RSS; --breakdown times forward, backward, clip and
optimizer apart. Checks as seq2seq_bench: the eval-mode loss of batch 0 must be finite and not
below log(V) - 1 (it starts near 9.9 at V = 44, not log(V): see seq2seq_bench.cpp), and with the
dumped weights equal focus's (compare_seq2seq.py checks that); the training losses must be
finite and the last 10 average within 1 nat of log(V).
--autocast bf16 gives PyTorch's own mixed precision (the twin of seq2seq_bench --precision bf16):
the step's forward and loss run under torch.autocast("cpu", dtype=torch.bfloat16) (the loss itself
in f32, as autocast does), backward, clipping and AdamW outside it on f32 master weights; the
eval-mode loss of batch 0 is taken under autocast too, so it carries bf16's rounding of the
logits (compare_seq2seq.py widens its tolerance for it); the other checks stay as they are.
Run with Debian's python (torch lives there):
  /usr/bin/python3 bench/seq2seq_torch.py --batches FILE [--steps 30] [--warmup 3] [--threads 2]
      [--autocast off|bf16]
Limits: Linux only (peak memory from /proc); the file's batch count bounds warmup + steps.
"""
import argparse
import json
import math
import re
import statistics
import sys
import time

import torch_common as tc  # sets the environment before torch is imported
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

def sinusoids(max_len, dim):
    """(max_len, dim) as focus's SinusoidalPositionalEncoding: even i sin, odd i cos of
    pos / 10000^((i - i % 2) / dim), computed in double."""
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    i = torch.arange(dim, dtype=torch.float64)
    angle = pos / torch.pow(10000.0, (i - i % 2) / dim)
    return torch.where(i.long() % 2 == 0, torch.sin(angle), torch.cos(angle)).float()


class Seq2Seq(nn.Module):
    def __init__(self, c):
        super().__init__()
        E = c["d_model"]
        if c.get("positions", "sinusoidal") != "sinusoidal" or c.get("share_embeddings", False):
            raise SystemExit("seq2seq_torch: only sinusoidal positions and separate tables")
        if c.get("n_kv_heads", 0) not in (0, c["n_heads"]):
            raise SystemExit("seq2seq_torch: nn.Transformer has no grouped-query attention")
        self.src_emb = nn.Embedding(c["src_vocab"], E)
        self.tgt_emb = nn.Embedding(c["tgt_vocab"], E)
        self.transformer = nn.Transformer(
            d_model=E, nhead=c["n_heads"], num_encoder_layers=c["n_enc_layers"],
            num_decoder_layers=c["n_dec_layers"], dim_feedforward=c["d_ff"], dropout=c["dropout"],
            activation="gelu", batch_first=True, norm_first=True)
        for layer in list(self.transformer.encoder.layers) + list(self.transformer.decoder.layers):
            for attn in (getattr(layer, "self_attn", None), getattr(layer, "multihead_attn", None)):
                if attn is not None:
                    attn.dropout = c.get("attn_dropout", 0.0)
        self.dropout = nn.Dropout(c["dropout"])
        self.register_buffer("pe", sinusoids(c["max_len"], E), persistent=False)
        self.scale = math.sqrt(E)

    def embed(self, table, tokens):  # (B, L) -> (B, L, E)
        return self.dropout(table(tokens) * self.scale + self.pe[:tokens.shape[1]])

    def forward(self, src, src_len, tgt_in):  # -> logits (B, T, V)
        S, T = src.shape[1], tgt_in.shape[1]
        pad = torch.arange(S)[None, :] >= src_len[:, None]  # (B, S) True at padding
        causal = nn.Transformer.generate_square_subsequent_mask(T)  # (T, T)
        h = self.transformer(self.embed(self.src_emb, src), self.embed(self.tgt_emb, tgt_in),
                             tgt_mask=causal, src_key_padding_mask=pad,
                             memory_key_padding_mask=pad)  # (B, T, E)
        return F.linear(h, self.tgt_emb.weight)


def load_focus_params(model, params):
    """focus names -> torch's: encoder./decoder. under transformer., cross_attn ->
    multihead_attn, q/k/v_proj packed into in_proj_weight / in_proj_bias."""
    sd, packed = {}, {}
    for name, t in params.items():
        n = name
        if n.startswith(("encoder.", "decoder.")):
            n = "transformer." + n
        n = n.replace(".cross_attn.", ".multihead_attn.")
        m = re.match(r"(.*)\.([qkv])_proj\.(weight|bias)$", n)
        if m:
            packed.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = t
        else:
            sd[n] = t
    for (prefix, kind), d in packed.items():
        sd[f"{prefix}.in_proj_{kind}"] = torch.cat([d["q"], d["k"], d["v"]])
    model.load_state_dict(sd, strict=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", required=True, help="seq2seq_bench --dump-batches output")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--breakdown", action="store_true")
    ap.add_argument("--autocast", choices=["off", "bf16"], default="off",
                    help="bf16: forward and loss under torch.autocast (bf16), f32 master weights")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    threads = tc.setup_threads(args.threads)
    torch.manual_seed(1)
    tensors, meta = tc.read_safetensors(args.batches, "seq2seq_torch")
    cfg = json.loads(meta["config"])
    n = args.warmup + args.steps
    if n > int(meta["batches"]):
        raise SystemExit(f"seq2seq_torch: {args.batches} holds {meta['batches']} batches, "
                         f"warmup + steps = {n}")
    batches = [tuple(tensors[f"batch.{i}.{k}"] for k in ("src", "src_len", "tgt_in", "tgt_out"))
               for i in range(n)]
    model = Seq2Seq(cfg)
    load_focus_params(model, {k[6:]: v for k, v in tensors.items() if k.startswith("param.")})
    V = cfg["tgt_vocab"]
    log_v = math.log(V)
    crit = nn.CrossEntropyLoss(ignore_index=0, label_smoothing=args.label_smoothing)

    def loss_of(b):
        src, src_len, tgt_in, tgt_out = b
        with tc.autocast(args.autocast):
            return crit(model(src, src_len, tgt_in).reshape(-1, V), tgt_out.reshape(-1))

    model.eval()
    with torch.no_grad():
        loss_eval = loss_of(batches[0]).item()
    if not (math.isfinite(loss_eval) and loss_eval > log_v - 1.0):
        raise SystemExit(f"seq2seq_torch: eval loss of batch 0 {loss_eval} not finite and > "
                         f"log(V) - 1 = {log_v - 1}")
    model.train()
    tc.reset_peak_rss()
    rss0 = tc.rss_mib()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    params = list(model.parameters())
    losses, ph = [], {k: [] for k in ("step", "forward", "backward", "clip", "optimizer")}

    def step(b):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_of(b)
        losses.append(loss.item())
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, args.clip)
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        for k, v in zip(ph, (t4 - t0, t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            ph[k].append(v)

    for b in batches[:args.warmup]:
        step(b)
    for v in ph.values():
        v.clear()
    src_tok = tgt_tok = sent = 0
    for b in batches[args.warmup:]:
        step(b)
        src_tok += int(b[1].sum())
        tgt_tok += int((b[3] != 0).sum())
        sent += b[0].shape[0]
    late = statistics.mean(losses[-10:])  # random targets: about chance once the bias is gone
    if not (all(math.isfinite(v) for v in losses) and abs(late - log_v) < 1.0):
        raise SystemExit(f"seq2seq_torch: training losses not finite or the last 10 averaging "
                         f"{late} not within 1 of log(V) = {log_v}: {losses}")
    total = sum(ph["step"])
    train = {"steps": args.steps, "warmup": args.warmup, "median_ms": tc.median(ph["step"]) * 1e3,
             "total_s": total, "tgt_tokens": tgt_tok, "src_tokens": src_tok, "sentences": sent,
             "tgt_tokens_per_s": tgt_tok / total, "tokens_per_s": (src_tok + tgt_tok) / total,
             "sentences_per_s": sent / total, "loss_eval_first": loss_eval,
             "loss_first": losses[0], "loss_last": losses[-1], "log_v": log_v,
             "rss_before_mib": rss0, "peak_rss_mib": tc.peak_rss_mib()}
    if args.breakdown:
        train["breakdown_ms"] = {k: tc.median(ph[k]) * 1e3
                                 for k in ("forward", "backward", "clip", "optimizer")}
    out = {"framework": "torch", **tc.environment(threads), "autocast": args.autocast,
           "params": sum(p.numel() for p in params), "config": cfg, "train": train}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    t = train
    print(f"torch {torch.__version__} seq2seq: {out['params']} parameters, {threads} threads, "
          f"autocast {args.autocast}")
    print(f"training: {t['tgt_tokens_per_s']:.0f} target tokens/s, {t['tokens_per_s']:.0f} "
          f"source+target tokens/s, {t['sentences_per_s']:.1f} sentences/s, {t['median_ms']:.1f} "
          f"ms/step (median of {args.steps}), loss {t['loss_first']:.3f} (eval "
          f"{t['loss_eval_first']:.3f}, log V {log_v:.3f}) -> {t['loss_last']:.3f}, peak RSS "
          f"{t['peak_rss_mib']:.0f} MiB")
    for k, v in train.get("breakdown_ms", {}).items():
        print(f"  {k:<9} {v:7.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
