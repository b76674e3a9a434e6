#!/usr/bin/python3
"""PyTorch twin of build/translate_bench: greedy g2p decoding words/s with and without a KV cache,
on the same trained focus model file and the same source words.

Model: seq2seq_torch.Seq2Seq (nn.Transformer, pre-norm GELU, embeddings * sqrt(E) + sinusoidal
positions, output tied to the target embedding) loaded with the focus model file's weights.
Inputs: the JSON that `translate_bench --dump-sources FILE` writes (source ids of the test words
and focus's greedy outputs for them).
Without a cache: every step runs transformer.decoder over the whole prefix (the encoder once per
batch), as focus's uncached path. With a cache: the decoder layers written out by hand (torch 1.13
has no KV cache): self-attention K/V appended per step, the cross-attention K/V of the memory
projected once, finished words dropped from the batch, as focus's greedy_search.
Verify first, time second: the two paths must agree on every word, and agree with focus's
outputs on at least 99% of them (float sums differ in order; a near tie may flip).
Figures as translate_bench: words/s = words / seconds to decode them all in batches of --batch
(encoder included), median of --reps passes.
Run with Debian's python (torch lives there):
  /usr/bin/python3 bench/translate_torch.py --model M.safetensors --sources S.json [--batch 1,64]
"""
import argparse
import json
import math
import time

import torch_common as tc  # sets the environment before torch is imported
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from seq2seq_torch import Seq2Seq, load_focus_params  # noqa: E402

PAD, BOS, EOS = 0, 1, 2  # focus's Vocab specials


def source_batch(sources):
    """[[ids]] -> src (B, S) right-padded with PAD, src_len (B)."""
    S = max(len(s) for s in sources)
    src = torch.full((len(sources), S), PAD, dtype=torch.long)
    for i, s in enumerate(sources):
        src[i, :len(s)] = torch.tensor(s, dtype=torch.long)
    return src, torch.tensor([len(s) for s in sources], dtype=torch.long)


def encode(model, src, src_len):
    pad = torch.arange(src.shape[1])[None, :] >= src_len[:, None]  # (B, S) True at padding
    memory = model.transformer.encoder(model.embed(model.src_emb, src), src_key_padding_mask=pad)
    return memory, pad


def append_tokens(out, rows, nxt, more):
    """Appends each live row's next token (not </s>) to its word's output; returns the indices
    (into rows) of the rows that go on: not finished, and more steps allowed."""
    keep = []
    for i, (r, v) in enumerate(zip(rows, nxt)):
        if v != EOS:
            out[r].append(v)
            if more:
                keep.append(i)
    return keep


def greedy_uncached(model, src, src_len, max_len):
    memory, pad = encode(model, src, src_len)
    B = src.shape[0]
    out = [[] for _ in range(B)]
    rows = list(range(B))
    for t in range(max_len):
        if not rows:
            break
        prefix = torch.tensor([[BOS] + out[r] for r in rows], dtype=torch.long)  # (A, t + 1)
        causal = torch.nn.Transformer.generate_square_subsequent_mask(t + 1)
        h = model.transformer.decoder(model.embed(model.tgt_emb, prefix), memory, tgt_mask=causal,
                                      memory_key_padding_mask=pad)
        nxt = F.linear(h[:, -1], model.tgt_emb.weight).argmax(-1).tolist()  # (A)
        keep = append_tokens(out, rows, nxt, t + 1 < max_len)
        if len(keep) != len(rows) and keep:
            idx = torch.tensor(keep)
            memory, pad = memory[idx], pad[idx]
        rows = [rows[i] for i in keep]
    return out


def heads(x, H):  # (A, L, E) -> (A, H, L, Dh)
    A, L, E = x.shape
    return x.view(A, L, H, E // H).transpose(1, 2)


def attend(q, k, v, mask=None):  # q (A, H, 1, Dh), k/v (A, H, L, Dh), mask (A, 1, 1, L) additive
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s + mask
    return (s.softmax(-1) @ v).transpose(1, 2).flatten(2)  # (A, 1, E)


def greedy_cached(model, src, src_len, max_len):
    memory, pad = encode(model, src, src_len)
    layers = model.transformer.decoder.layers
    H, E = layers[0].self_attn.num_heads, memory.shape[2]
    B = src.shape[0]
    # Cross K/V once per layer; self K/V grown per step.
    cross = []
    for L in layers:
        w, b = L.multihead_attn.in_proj_weight, L.multihead_attn.in_proj_bias
        cross.append((heads(F.linear(memory, w[E:2 * E], b[E:2 * E]), H),
                      heads(F.linear(memory, w[2 * E:], b[2 * E:]), H)))
    mask = torch.zeros(pad.shape, dtype=memory.dtype).masked_fill(pad, float("-inf"))[:, None, None]
    selfkv = [None] * len(layers)
    out = [[] for _ in range(B)]
    rows = list(range(B))
    tok = torch.full((B, 1), BOS, dtype=torch.long)
    for t in range(max_len):
        if not rows:
            break
        x = model.tgt_emb(tok) * model.scale + model.pe[t:t + 1]  # (A, 1, E)
        for i, L in enumerate(layers):
            a = L.self_attn
            qkv = F.linear(L.norm1(x), a.in_proj_weight, a.in_proj_bias)
            q, k, v = (heads(z, H) for z in qkv.split(E, dim=-1))
            if selfkv[i] is not None:
                k, v = torch.cat([selfkv[i][0], k], 2), torch.cat([selfkv[i][1], v], 2)
            selfkv[i] = (k, v)
            x = x + a.out_proj(attend(q, k, v))
            c = L.multihead_attn
            q = heads(F.linear(L.norm2(x), c.in_proj_weight[:E], c.in_proj_bias[:E]), H)
            x = x + c.out_proj(attend(q, cross[i][0], cross[i][1], mask))
            x = x + L.linear2(F.gelu(L.linear1(L.norm3(x))))
        h = model.transformer.decoder.norm(x)
        nxt = F.linear(h[:, -1], model.tgt_emb.weight).argmax(-1).tolist()
        keep = append_tokens(out, rows, nxt, t + 1 < max_len)
        if len(keep) != len(rows) and keep:
            idx = torch.tensor(keep)
            selfkv = [(k[idx], v[idx]) for k, v in selfkv]
            cross = [(k[idx], v[idx]) for k, v in cross]
            mask = mask[idx]
        rows = [rows[j] for j in keep]
        tok = torch.tensor([[nxt[j]] for j in keep], dtype=torch.long)
    return out


def decode_all(model, sources, batch, fn, max_len):
    out = []
    for lo in range(0, len(sources), batch):
        src, src_len = source_batch(sources[lo:lo + batch])
        out += fn(model, src, src_len, max_len)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="focus seq2seq model file (g2p)")
    ap.add_argument("--sources", required=True, help="translate_bench --dump-sources output")
    ap.add_argument("--batch", default="1,64")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    threads = tc.setup_threads(args.threads)
    params, meta = tc.read_safetensors(args.model, "translate_torch")
    cfg = json.loads(meta["model_config"])
    cfg["dropout"] = 0.0
    model = Seq2Seq(cfg)
    load_focus_params(model, params)
    model.eval()
    with open(args.sources) as f:
        dump = json.load(f)
    sources, focus_out = dump["sources"], dump["outputs"]
    max_len = cfg["max_len"]
    results = []
    with torch.no_grad():
        for batch in (int(b) for b in args.batch.split(",")):
            cached = decode_all(model, sources, batch, greedy_cached, max_len)
            uncached = decode_all(model, sources, batch, greedy_uncached, max_len)
            if cached != uncached:
                bad = next(i for i, (a, b) in enumerate(zip(cached, uncached)) if a != b)
                raise SystemExit(f"translate_torch: batch {batch} word {bad}: cached and uncached "
                                 "greedy outputs differ")
            agree = sum(a == b for a, b in zip(cached, focus_out))
            if agree < 0.99 * len(sources):
                raise SystemExit(f"translate_torch: agrees with focus on {agree} of "
                                 f"{len(sources)} words (< 99%): not the same model")
            r = {"batch": batch, "words": len(sources),
                 "output_tokens": sum(len(o) for o in cached), "agree_with_focus": agree}
            for name, fn in (("cached", greedy_cached), ("uncached", greedy_uncached)):
                t = []
                for _ in range(args.reps):
                    t0 = time.perf_counter()
                    decode_all(model, sources, batch, fn, max_len)
                    t.append(time.perf_counter() - t0)
                s = tc.median(t)
                r[name] = {"median_s": s, "words_per_s": len(sources) / s,
                           "tokens_per_s": r["output_tokens"] / s}
            r["cache_speedup"] = r["uncached"]["median_s"] / r["cached"]["median_s"]
            results.append(r)
    out = {"framework": "torch", **tc.environment(threads), "results": results}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"torch translate: {len(sources)} words, {threads} threads, greedy")
    for r in results:
        print(f"batch {r['batch']:4d}: KV cache {r['cached']['words_per_s']:8.1f} words/s, no cache "
              f"{r['uncached']['words_per_s']:8.1f} words/s, cache {r['cache_speedup']:.2f}x, "
              f"agrees with focus on {r['agree_with_focus']}/{r['words']}")


if __name__ == "__main__":
    main()
