#!/usr/bin/python3
"""PyTorch twin of bench/explain_bench.cpp: the same explanations of focus's default ViT and
cnn_se (bench/torch_models.py), one image at a time, done the way a PyTorch user does them:
  attention / rollout: the encoder layers run by hand with the attention written out (the fused
    fast path returns no weights; need_weights=True returns a copy outside the graph), rollout = prod_l (0.5 * mean_h A_l + 0.5 I), the class token's row;
  grad-rollout: the same maps kept in the graph, retain_grad, backward of the target logit,
    R += mean_h relu(dA * A) R;
  grad-cam: the last stage's SE output retained, backward of the target logit,
    relu(sum_c mean_hw(dF_c) F_c).
Verify first (relevance finite, max 1; rollout of the hand-run layers gives the model's logits),
then time: median milliseconds of --reps calls. Weights are random (latency does not depend on
them). Usage: /usr/bin/python3 bench/explain_torch.py [--reps 30] [--threads 2] [--json]
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

import torch_common as tc
import torch_models as tm


def self_attention(b, y):
    """b.self_attn on y (N, T, E) computed from its weights, keeping the probabilities in the
    graph (nn.MultiheadAttention's returned weights are a detached-from-the-output view)."""
    mha = b.self_attn
    N, T, E = y.shape
    H = mha.num_heads
    q, k, v = F.linear(y, mha.in_proj_weight, mha.in_proj_bias).chunk(3, -1)
    q, k, v = (t.reshape(N, T, H, E // H).transpose(1, 2) for t in (q, k, v))  # (N, H, T, D)
    w = torch.softmax(q @ k.transpose(-1, -2) / (E // H) ** 0.5, dim=-1)         # (N, H, T, T)
    a = (w @ v).transpose(1, 2).reshape(N, T, E)
    return mha.out_proj(a), w


def vit_forward_maps(m, x):
    """Logits and per-layer attention maps (N, H, T, T), layers run by hand (eval mode)."""
    h = m.patch_embed(x).flatten(2).transpose(1, 2)
    h = torch.cat([m.cls_token.expand(h.shape[0], -1, -1), h], dim=1)
    h = m.pos_embed(h)
    maps = []
    for b in m.blocks:
        y = b.norm1(h)
        a, w = self_attention(b, y)
        maps.append(w)
        h = h + a
        h = h + b.linear2(F.gelu(b.linear1(b.norm2(h))))
    return m.head(m.norm(h)[:, 0]), maps


def normalise(r):
    r = r.clamp(min=0)
    return r / r.max() if r.max() > 0 else r


def rollout(m, x):
    with torch.no_grad():
        logits, maps = vit_forward_maps(m, x)
        T = maps[0].shape[-1]
        R = torch.eye(T)
        for w in maps:
            a = 0.5 * w[0].mean(0) + 0.5 * torch.eye(T)
            R = (a / a.sum(-1, keepdim=True)) @ R
        return normalise(R[0, 1:].reshape(7, 7)), logits


def attention(m, x):
    with torch.no_grad():
        logits, maps = vit_forward_maps(m, x)
        return normalise(maps[-1][0].mean(0)[0, 1:].reshape(7, 7)), logits


def grad_rollout(m, x):
    logits, maps = vit_forward_maps(m, x)
    for w in maps:
        w.retain_grad()
    logits[0, logits[0].argmax()].backward()
    T = maps[0].shape[-1]
    R = torch.eye(T)
    with torch.no_grad():
        for w in maps:
            abar = (w.grad[0] * w[0]).clamp(min=0).mean(0)
            R = R + abar @ R
    m.zero_grad()
    return normalise(R[0, 1:].reshape(7, 7)), logits


def grad_cam(m, x):
    h = x
    for i, s in enumerate(m.stages):
        if i + 1 < len(m.stages):
            h = s(h)
            continue
        y = F.relu(s.bn1(s.conv1(h)))
        y = F.relu(s.bn2(s.conv2(y)))
        feats = s.se(y)
        feats.retain_grad()
        h = F.max_pool2d(feats, 2)
    logits = m.head(h.mean((2, 3)))
    logits[0, logits[0].argmax()].backward()
    with torch.no_grad():
        alpha = feats.grad[0].mean((1, 2))
        cam = (alpha[:, None, None] * feats[0]).sum(0)
    m.zero_grad()
    return normalise(cam), logits


def median_ms(fn, reps):
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        t.append(1e3 * (time.perf_counter() - t0))
    return sorted(t)[len(t) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tc.setup_threads(args.threads)
    torch.manual_seed(1)
    x = torch.randn(1, 1, 28, 28)
    out = {"threads": args.threads, "torch": torch.__version__, "image": []}
    vit, cnn = tm.make_model("vit").eval(), tm.make_model("cnn_se").eval()
    with torch.no_grad():
        ref_vit = vit(x)
    for label, model, methods in (("vit", vit, {"attention": attention, "rollout": rollout,
                                                 "grad-rollout": grad_rollout}),
                                  ("cnn_se", cnn, {"grad-cam": grad_cam})):
        res = {"model": label, "methods": {}}
        for name, fn in methods.items():
            rel, logits = fn(model, x)
            if not torch.isfinite(rel).all() or abs(float(rel.max()) - 1.0) > 1e-6:
                raise SystemExit(f"explain_torch: {label} {name}: relevance not normalised")
            if label == "vit" and (logits - ref_vit).abs().max() > 1e-4:
                raise SystemExit("explain_torch: hand-run layers disagree with the model")
            ms = median_ms(lambda: fn(model, x), args.reps)
            res["methods"][name] = {"explain_ms": ms}
            if not args.json:
                print(f"{label:10s} {name:13s} explain {ms:7.2f} ms")
        out["image"].append(res)
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
