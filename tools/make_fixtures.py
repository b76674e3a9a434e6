#!/usr/bin/python3
"""Golden fixtures: PyTorch 1.13 reference values for focus's golden tests (tests/golden).

Run:   make fixtures            (= /usr/bin/python3 tools/make_fixtures.py tests/fixtures)
       one case:  /usr/bin/python3 tools/make_fixtures.py tests/fixtures gradcam
Needs: Debian's python3-torch (1.13) and python3-numpy, for /usr/bin/python3 only. The
       fixtures are committed, so building and testing focus (and CI) never needs torch; rerun
       this only to add or change a case, and commit the regenerated files.

Each case writes one .safetensors file (written here by hand: there is no safetensors package
for Debian's python). Tensor names inside a file:
  <param or buffer>    the module's state, named as focus names it (see FOCUS_NAMES below)
  input, query, ...    the forward's inputs (masks and targets as I64)
  output, ...          the forward's outputs
  grad_output          R: the loss is sum(output * R), so R is dloss/doutput
  grad.<name>          dloss/d<name> for every input and parameter
  final.<name>         state after the step (batch-norm running stats, optimised parameters)
  losses               (optimizer cases) the loss before each step
  logits, loss         (seq2seq) the model's outputs; there grad.<name> is dloss/d<name>
and "__metadata__" holds the case's settings as strings (heads, eps, lr, ...).

Everything is seeded (torch.manual_seed per case) and written with sorted names, so a rerun on
the same machine gives identical bytes. Module cases run in float64 so the C++ side can compare
at ~1e-10; one float32 twin per fixture exercises the fast path. For every F32 twin the script
prints how far torch's own F32 result lies from its F64 result (the float32 noise floor), which
is what the F32 tolerances in tests/golden are set against.
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# FOCUS_NAMES: the one place mapping torch's parameter names onto focus's (docs/DESIGN.md,
# "Parameter names"). Everything else keeps torch's name. torch packs the q/k/v projections of
# nn.MultiheadAttention into in_proj_weight (3E, E) / in_proj_bias (3E); focus has three Linear
# modules q_proj, k_proj, v_proj, so the packed tensor is split in three rows-blocks, in order.
# ---------------------------------------------------------------------------------------------
PACKED_SPLITS = {
    "in_proj_weight": ("q_proj.weight", "k_proj.weight", "v_proj.weight"),
    "in_proj_bias": ("q_proj.bias", "k_proj.bias", "v_proj.bias"),
}
SKIPPED = ("num_batches_tracked",)  # torch-only batch-norm counter; focus has no such buffer
RENAMED = {"multihead_attn": "cross_attn"}  # a name component: TransformerDecoderLayer's cross attn


def focus_names(named):
    """[(torch_name, tensor)] -> {focus_name: tensor}, renaming and splitting packed
    in-projections."""
    out = {}
    for name, t in named:
        name = ".".join(RENAMED.get(part, part) for part in name.split("."))
        prefix, _, leaf = name.rpartition(".")
        prefix = prefix + "." if prefix else ""
        if leaf in SKIPPED:
            continue
        if leaf in PACKED_SPLITS:
            for part, sub in zip(t.chunk(3, dim=0), PACKED_SPLITS[leaf]):
                out[prefix + sub] = part
        else:
            out[name] = t
    return out


# ---------------------------------------------------------------------------------------------
# safetensors writer: u64 little-endian header length N, N bytes of JSON (space-padded to a
# multiple of 8), then each tensor's raw little-endian bytes, packed in header order.
# ---------------------------------------------------------------------------------------------
DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype not in DTYPES:
            raise TypeError(f"{name}: dtype {t.dtype} has no safetensors mapping here")
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {k: str(v) for k, v in sorted(metadata.items())}
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------------------------
# Shared case machinery
# ---------------------------------------------------------------------------------------------
def leaf(t, dtype):
    return t.to(dtype).detach().requires_grad_(True)


def run_module_case(module, inputs, forward, dtype, extra_outputs=()):
    """Runs forward(module, **inputs) -> {name: tensor}, backprops sum(outs["output"] * R) and
    returns every tensor the fixture holds. Floating inputs become leaves (their gradients are
    stored); integer ones (masks, targets) pass as they are. `extra_outputs` names state entries
    to store again after the forward as final.<name> (batch-norm running statistics)."""
    module = module.to(dtype)
    ins = {k: (leaf(v, dtype) if v.is_floating_point() else v) for k, v in inputs.items()}
    state = focus_names(list(module.state_dict().items()))
    state = {k: v.detach().clone() for k, v in state.items()}  # before the step (BN buffers)
    outs = forward(module, **ins)
    out = outs["output"]
    R = torch.randn(out.shape, dtype=torch.float64).to(dtype)
    (out * R).sum().backward()
    tensors = dict(state)
    tensors.update({k: v.detach() for k, v in ins.items()})
    tensors.update({k: v.detach() for k, v in outs.items()})
    tensors["grad_output"] = R
    for k, v in ins.items():
        if v.is_floating_point():
            tensors["grad." + k] = v.grad
    grads = focus_names([(n, p.grad) for n, p in module.named_parameters()])
    tensors.update({"grad." + k: g for k, g in grads.items()})
    for name in extra_outputs:  # buffers after the step
        tensors["final." + name] = focus_names(list(module.state_dict().items()))[name].clone()
    return tensors


def check_zero(tensors, meta):
    """Gradients that are exactly zero in exact arithmetic (listed in meta["zero_gradients"]
    with the reason) hold only rounding noise; the tests compare them absolutely. Asserts that
    they are indeed ~0 and that no other gradient is."""
    zero = set(meta.get("zero_gradients", {}))
    for k, t in tensors.items():
        if k.startswith("grad.") and t.numel():
            small = t.abs().max().item() < 1e-12 * (1 if t.dtype == torch.float64 else 1e7)
            assert small == (k in zero), f"{k}: max |g| {t.abs().max().item():.2e}"
    meta["zero_gradients"] = ";".join(f"{k}: {why}" for k, why in sorted(meta.get(
        "zero_gradients", {}).items()))


def f32_noise(t32, t64):
    """Per-tensor max |f32 - f64| / max |f64| over the floating tensors the two runs share
    (absolute for the structurally zero gradients)."""
    worst = {}
    for k, a in t32.items():
        if a.is_floating_point() and k in t64:
            b = t64[k].double()
            scale = b.abs().max().item()
            worst[k] = (a.double() - b).abs().max().item() / (scale if scale > 1e-12 else 1.0)
    return worst


# ---------------------------------------------------------------------------------------------
# Cases. Each builder takes the dtype and returns (tensors, metadata); the seed is set by the
# caller so the F32 twin sees the same values (drawn in F64, then cast).
# ---------------------------------------------------------------------------------------------
def make_layer_norm(dtype):
    B, L, C = 2, 3, 8
    m = nn.LayerNorm(C, eps=1e-5).double()
    with torch.no_grad():  # non-trivial affine parameters (torch initialises 1 / 0)
        m.weight.copy_(1 + 0.5 * torch.randn(C, dtype=torch.float64))
        m.bias.copy_(0.5 * torch.randn(C, dtype=torch.float64))
    x = torch.randn(B, L, C, dtype=torch.float64) * 2 + 0.5  # (B, L, C)
    t = run_module_case(m, {"input": x}, lambda mod, input: {"output": mod(input)}, dtype)
    return t, {"eps": 1e-5, "shape": "B=2 L=3 C=8"}


def mha_module(E, H):
    m = nn.MultiheadAttention(E, H, dropout=0.0, bias=True, batch_first=True).double()
    with torch.no_grad():  # torch zeroes the projection biases at init: make them count
        m.in_proj_bias.copy_(0.1 * torch.randn(3 * E, dtype=torch.float64))
        m.out_proj.bias.copy_(0.1 * torch.randn(E, dtype=torch.float64))
    return m


KEY_BIAS_ZERO = "softmax is invariant to the per-query shift q.b_k of the scores"


def make_mha(kind, dtype):
    """kind: self | causal | padding | cross. Self-attention passes x as query, key and value;
    cross attention passes `query` (B, Lq, E) and `memory` (B, Lk, E) as key and value."""
    B, L, Lk, E, H = 2, 5, 7, 8, 2
    m = mha_module(E, H)
    meta = {"num_heads": H, "embed_dim": E, "kind": kind, "causal": kind == "causal",
            "zero_gradients": {"grad.k_proj.bias": KEY_BIAS_ZERO},
            "masks": "I64, 1 = masked out (torch's bool True): attn_mask (Lq, Lk), "
                     "key_padding_mask (B, Lk)"}
    if kind == "cross":
        inputs = {"query": torch.randn(B, L, E, dtype=torch.float64),   # (B, Lq, E)
                  "memory": torch.randn(B, Lk, E, dtype=torch.float64)}  # (B, Lk, E)
    else:
        inputs = {"input": torch.randn(B, L, E, dtype=torch.float64)}   # (B, L, E)
    if kind == "causal":
        inputs["attn_mask"] = torch.triu(torch.ones(L, L, dtype=torch.int64), 1)  # (L, L)
    if kind == "padding":
        pad = torch.zeros(B, L, dtype=torch.int64)  # (B, L): batch 1's last two keys are padding
        pad[1, L - 2:] = 1
        inputs["key_padding_mask"] = pad

    def forward(mod, input=None, query=None, memory=None, attn_mask=None, key_padding_mask=None):
        q, kv = (query, memory) if kind == "cross" else (input, input)
        am = attn_mask.bool() if attn_mask is not None else None
        kpm = key_padding_mask.bool() if key_padding_mask is not None else None
        out, w = mod(q, kv, kv, attn_mask=am, key_padding_mask=kpm, need_weights=True,
                     average_attn_weights=True)
        outs = {"output": out, "attn_weights": w}  # (B, Lq, E), (B, Lq, Lk)
        if kind == "self":
            _, wh = mod(q, kv, kv, need_weights=True, average_attn_weights=False)
            outs["attn_weights_per_head"] = wh  # (B, H, Lq, Lk)
        return outs

    return run_module_case(m, inputs, forward, dtype), meta


def make_encoder_layer(dtype):
    B, L, E, H, FF = 2, 5, 8, 2, 16
    m = nn.TransformerEncoderLayer(E, H, dim_feedforward=FF, dropout=0.0, activation="gelu",
                                   layer_norm_eps=1e-5, batch_first=True, norm_first=True).double()
    with torch.no_grad():
        m.self_attn.in_proj_bias.copy_(0.1 * torch.randn(3 * E, dtype=torch.float64))
        m.self_attn.out_proj.bias.copy_(0.1 * torch.randn(E, dtype=torch.float64))
        for norm in (m.norm1, m.norm2):
            norm.weight.copy_(1 + 0.3 * torch.randn(E, dtype=torch.float64))
            norm.bias.copy_(0.3 * torch.randn(E, dtype=torch.float64))
    x = torch.randn(B, L, E, dtype=torch.float64)  # (B, L, E)
    t = run_module_case(m, {"input": x}, lambda mod, input: {"output": mod(input)}, dtype)
    return t, {"num_heads": H, "d_model": E, "dim_feedforward": FF, "norm_first": True,
               "zero_gradients": {"grad.self_attn.k_proj.bias": KEY_BIAS_ZERO},
               "activation": "gelu (erf)", "eps": 1e-5, "dropout": 0.0}


def randomize_transformer_layer(m, E):
    """Non-trivial attention biases and norm affines (torch initialises biases 0, norms 1 / 0),
    so that a dropped or misplaced one shows; works for encoder and decoder layers."""
    with torch.no_grad():
        for name, mod in m.named_modules():
            if isinstance(mod, nn.MultiheadAttention):
                mod.in_proj_bias.copy_(0.1 * torch.randn(3 * E, dtype=torch.float64))
                mod.out_proj.bias.copy_(0.1 * torch.randn(E, dtype=torch.float64))
            elif isinstance(mod, nn.LayerNorm):
                mod.weight.copy_(1 + 0.3 * torch.randn(E, dtype=torch.float64))
                mod.bias.copy_(0.3 * torch.randn(E, dtype=torch.float64))


def causal_mask(T):
    return torch.triu(torch.ones(T, T, dtype=torch.int64), 1)  # (T, T), 1 = masked


def padding_mask(lengths, S):
    return (torch.arange(S)[None, :] >= torch.tensor(lengths)[:, None]).to(torch.int64)  # (B, S)


def make_decoder_layer(dtype):
    """x (B, T, E) attends causally to itself, then to memory (B, S, E) whose batch 1 has 4 real
    positions of 7 (memory_key_padding_mask)."""
    B, T, S, E, H, FF = 2, 5, 7, 32, 4, 48
    m = nn.TransformerDecoderLayer(E, H, dim_feedforward=FF, dropout=0.0, activation="gelu",
                                   layer_norm_eps=1e-5, batch_first=True, norm_first=True).double()
    randomize_transformer_layer(m, E)
    inputs = {"input": torch.randn(B, T, E, dtype=torch.float64),   # (B, T, E)
              "memory": torch.randn(B, S, E, dtype=torch.float64),  # (B, S, E)
              "tgt_mask": causal_mask(T),                           # (T, T)
              "memory_key_padding_mask": padding_mask([7, 4], S)}   # (B, S)

    def forward(mod, input, memory, tgt_mask, memory_key_padding_mask):
        return {"output": mod(input, memory, tgt_mask=tgt_mask.bool(),
                              memory_key_padding_mask=memory_key_padding_mask.bool())}

    t = run_module_case(m, inputs, forward, dtype)
    return t, {"num_heads": H, "d_model": E, "dim_feedforward": FF, "norm_first": True,
               "activation": "gelu (erf)", "eps": 1e-5, "dropout": 0.0,
               "masks": "I64, 1 = masked out: tgt_mask (T, T) causal, memory_key_padding_mask "
                        "(B, S) for source lengths 7, 4",
               "zero_gradients": {"grad.self_attn.k_proj.bias": KEY_BIAS_ZERO,
                                  "grad.cross_attn.k_proj.bias": KEY_BIAS_ZERO}}


def sinusoidal_table(L, E):
    """focus's SinusoidalPositionalEncoding (nn/positional.cpp): pe[p, i] = sin(p / 10000^(2k/E))
    for i = 2k, cos(...) for i = 2k + 1."""
    pos = torch.arange(L, dtype=torch.float64)[:, None]               # (L, 1)
    i = torch.arange(E)
    angle = pos / torch.pow(10000.0, (i - i % 2).to(torch.float64) / E)  # (L, E)
    return torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle))


class Seq2Seq(nn.Module):
    """focus's models/seq2seq.hpp in torch: embeddings * sqrt(E) + sinusoidal positions, the
    encoder and decoder stacks of nn.Transformer (with their final norms), logits through the
    target embedding (tied)."""

    def __init__(self, src_vocab, tgt_vocab, E, H, n_enc, n_dec, FF):
        super().__init__()
        self.E = E
        self.src_emb = nn.Embedding(src_vocab, E)
        self.tgt_emb = nn.Embedding(tgt_vocab, E)
        t = nn.Transformer(E, H, num_encoder_layers=n_enc, num_decoder_layers=n_dec,
                           dim_feedforward=FF, dropout=0.0, activation="gelu", batch_first=True,
                           norm_first=True)
        self.encoder, self.decoder = t.encoder, t.decoder

    def forward(self, src, src_len, tgt_in):
        B, S = src.shape
        T = tgt_in.shape[1]
        pe = sinusoidal_table(max(S, T), self.E).to(self.src_emb.weight.dtype)
        scale = self.E ** 0.5
        src_pad = padding_mask(src_len.tolist(), S).bool()                     # (B, S)
        x = self.src_emb(src) * scale + pe[:S]                                  # (B, S, E)
        memory = self.encoder(x, src_key_padding_mask=src_pad)                  # (B, S, E)
        y = self.tgt_emb(tgt_in) * scale + pe[:T]                               # (B, T, E)
        h = self.decoder(y, memory, tgt_mask=causal_mask(T).bool(),
                         memory_key_padding_mask=src_pad)                       # (B, T, E)
        return h @ self.tgt_emb.weight.T                                        # (B, T, V)


def make_seq2seq(dtype):
    """A padded batch of 3: sources of 6, 4 and 2 tokens (right-padded with 0), targets
    tgt_in = <s>=1 y, tgt_out = y </s>=2, right-padded with 0 (ignored by the loss)."""
    Vs, Vt, E, H, FF, n_enc, n_dec, smoothing = 11, 13, 32, 4, 48, 2, 2, 0.1
    m = Seq2Seq(Vs, Vt, E, H, n_enc, n_dec, FF).double()
    with torch.no_grad():  # N(0, 1/E), as focus initialises the tables
        m.src_emb.weight.copy_(torch.randn(Vs, E, dtype=torch.float64) / E ** 0.5)
        m.tgt_emb.weight.copy_(torch.randn(Vt, E, dtype=torch.float64) / E ** 0.5)
    randomize_transformer_layer(m, E)
    src_len = torch.tensor([6, 4, 2], dtype=torch.int64)                        # (B)
    B, S, T = 3, 6, 5
    src = torch.randint(1, Vs, (B, S), dtype=torch.int64)                       # (B, S)
    src = src * (1 - padding_mask(src_len.tolist(), S))
    y_len = [4, 2, 3]  # tokens before </s>
    tgt_in = torch.zeros(B, T, dtype=torch.int64)                               # (B, T)
    tgt_out = torch.zeros(B, T, dtype=torch.int64)                              # (B, T)
    for b, n in enumerate(y_len):
        y = torch.randint(3, Vt, (n,), dtype=torch.int64)
        tgt_in[b, 0] = 1
        tgt_in[b, 1:n + 1] = y
        tgt_out[b, :n] = y
        tgt_out[b, n] = 2
    m = m.to(dtype)
    tensors = {k: v.detach().clone() for k, v in focus_names(m.state_dict().items()).items()}
    logits = m(src, src_len, tgt_in)
    loss = F.cross_entropy(logits.reshape(-1, Vt), tgt_out.reshape(-1), ignore_index=0,
                           label_smoothing=smoothing)
    loss.backward()
    tensors.update({"src": src, "src_len": src_len, "tgt_in": tgt_in, "tgt_out": tgt_out,
                    "logits": logits.detach(), "loss": loss.detach()})
    grads = focus_names([(n, p.grad) for n, p in m.named_parameters()])
    tensors.update({"grad." + k: g for k, g in grads.items()})
    zero = {f"grad.{stack}.layers.{i}.{attn}.k_proj.bias": KEY_BIAS_ZERO
            for stack, attns, n in (("encoder", ("self_attn",), n_enc),
                                    ("decoder", ("self_attn", "cross_attn"), n_dec))
            for i in range(n) for attn in attns}
    return tensors, {"src_vocab": Vs, "tgt_vocab": Vt, "d_model": E, "num_heads": H,
                     "dim_feedforward": FF, "n_enc_layers": n_enc, "n_dec_layers": n_dec,
                     "label_smoothing": smoothing, "ignore_index": 0, "positions": "sinusoidal",
                     "norm_first": True, "activation": "gelu (erf)", "eps": 1e-5,
                     "dropout": 0.0, "zero_gradients": zero,
                     "model": " ".join(Seq2Seq.__doc__.split())}


class SqueezeExcitation(nn.Module):
    """s = sigmoid(fc2(relu(fc1(mean_hw(x))))), y = x * s[..., None, None]."""

    def __init__(self, C, r):
        super().__init__()
        self.fc1 = nn.Linear(C, C // r)
        self.fc2 = nn.Linear(C // r, C)

    def forward(self, x):
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * s[..., None, None]


class ConvBnSe(nn.Module):
    """conv (3x3, stride 1, padding 1, bias) -> batch norm (training) -> SE -> relu."""

    def __init__(self, C, O, r):
        super().__init__()
        self.conv = nn.Conv2d(C, O, 3, stride=1, padding=1, bias=True)
        self.bn = nn.BatchNorm2d(O, eps=1e-5, momentum=0.1)
        self.se = SqueezeExcitation(O, r)

    def forward(self, x):
        return torch.relu(self.se(self.bn(self.conv(x))))


def make_conv_bn_se(dtype):
    N, C, H, W, O, r = 2, 3, 6, 6, 8, 4
    m = ConvBnSe(C, O, r).double().train()
    with torch.no_grad():  # non-default affine and running stats, so their use is visible
        m.bn.weight.copy_(1 + 0.3 * torch.randn(O, dtype=torch.float64))
        m.bn.bias.copy_(0.3 * torch.randn(O, dtype=torch.float64))
        m.bn.running_mean.copy_(0.2 * torch.randn(O, dtype=torch.float64))
        m.bn.running_var.copy_(0.5 + torch.rand(O, dtype=torch.float64))
    x = torch.randn(N, C, H, W, dtype=torch.float64)  # (N, C, H, W)
    t = run_module_case(m, {"input": x}, lambda mod, input: {"output": mod(input)}, dtype,
                        extra_outputs=("bn.running_mean", "bn.running_var"))
    return t, {"conv": "3x3 stride 1 padding 1 bias", "bn_momentum": 0.1, "bn_eps": 1e-5,
               "zero_gradients": {"grad.conv.bias": "training batch norm subtracts the batch "
                                                    "mean of each channel"},
               "bn_mode": "training (batch stats; running var updated unbiased)",
               "se_reduction": r, "order": "conv -> bn -> se -> relu"}


class CnnSeStage(nn.Module):
    """focus's CnnSe stage: conv3x3 (no bias) -> BN -> relu, twice, then SE; the max-pool is
    applied by CnnSe, so that the pre-pool output (Grad-CAM's feature map) is visible."""

    def __init__(self, C, O, r):
        super().__init__()
        self.conv1 = nn.Conv2d(C, O, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(O, eps=1e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(O, O, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(O, eps=1e-5, momentum=0.1)
        self.se = SqueezeExcitation(O, r)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        h = torch.relu(self.bn2(self.conv2(h)))
        pooled = h.mean(dim=(2, 3))
        gates = torch.sigmoid(self.se.fc2(torch.relu(self.se.fc1(pooled))))  # (N, O)
        return h * gates[..., None, None], gates


class CnnSe(nn.Module):
    """focus's models/cnn_se.hpp in torch: stages (conv3x3-BN-ReLU x2, SE, maxpool 2), global
    average pool, dropout, linear head. Returns the logits, the SE gates per stage and the last
    stage's SE output before its max-pool (the Grad-CAM feature map)."""

    def __init__(self, in_channels, channels, r, classes, dropout):
        super().__init__()
        chans = [in_channels] + list(channels)
        self.stages = nn.ModuleList(CnnSeStage(c, o, r) for c, o in zip(chans, chans[1:]))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(chans[-1], classes)

    def forward(self, x):
        h, gates = x, []
        for stage in self.stages:
            features, g = stage(h)  # (N, C_s, H_s, W_s), (N, C_s)
            gates.append(g)
            h = F.max_pool2d(features, 2)
        return self.head(self.dropout(h.mean(dim=(2, 3)))), gates, features


def make_gradcam(dtype):
    """Grad-CAM of a tiny CnnSe in eval mode (batch norm on non-trivial running statistics) on
    one 16x16 image, for two targets: k = 0 the predicted class, k = 1 the runner-up. For each,
    dfeatures.k = d logit[target] / d features (1, C, h, w), cam.k = relu(sum_c mean_hw(dF_c) F_c)
    (h, w) and relevance.k = cam.k / max cam.k."""
    in_ch, channels, r, classes, p_drop, S = 1, (4, 8), 2, 3, 0.2, 16
    m = CnnSe(in_ch, channels, r, classes, p_drop).double().eval()
    with torch.no_grad():  # non-default affine and running stats, so their use is visible
        for name, mod in m.named_modules():
            if isinstance(mod, nn.BatchNorm2d):
                O = mod.num_features
                mod.weight.copy_(1 + 0.3 * torch.randn(O, dtype=torch.float64))
                mod.bias.copy_(0.3 * torch.randn(O, dtype=torch.float64))
                mod.running_mean.copy_(0.2 * torch.randn(O, dtype=torch.float64))
                mod.running_var.copy_(0.5 + torch.rand(O, dtype=torch.float64))
    x = torch.randn(1, in_ch, S, S, dtype=torch.float64)  # (1, C_in, S, S)
    m = m.to(dtype)
    x = x.to(dtype)
    tensors = {k: v.detach().clone() for k, v in focus_names(m.state_dict().items()).items()}
    logits, gates, features = m(x)  # (1, classes), [(1, C_s)], (1, C, h, w)
    order = logits[0].argsort(descending=True)
    targets = order[:2].to(torch.int64)  # predicted, runner-up
    tensors.update({"input": x, "logits": logits.detach(), "targets": targets,
                    "probs": torch.softmax(logits.detach(), dim=1),
                    "features": features.detach()})
    tensors.update({f"gates.{s}": g.detach() for s, g in enumerate(gates)})
    for k, t in enumerate(targets.tolist()):
        (dF,) = torch.autograd.grad(logits[0, t], features, retain_graph=True)  # (1, C, h, w)
        alpha = dF.mean(dim=(2, 3))                                              # (1, C)
        cam = torch.relu((alpha[..., None, None] * features).sum(dim=1))[0]     # (h, w)
        # the relu must clip some cells and keep others, or the test would not see it
        assert 0 < int((cam > 0).sum()) < cam.numel(), f"target {t}: cam {cam}"
        tensors.update({f"dfeatures.{k}": dF, f"cam.{k}": cam.detach(),
                        f"relevance.{k}": (cam / cam.max()).detach()})
    return tensors, {"in_channels": in_ch, "channels": ",".join(map(str, channels)),
                     "se_reduction": r, "num_classes": classes, "dropout": p_drop,
                     "bn_eps": 1e-5, "bn_momentum": 0.1, "mode": "eval",
                     "targets": "I64 (2): the predicted class, then the runner-up",
                     "model": " ".join(CnnSe.__doc__.split())}


def make_cross_entropy(smoothing, dtype):
    """Loss over logits (N, C); with smoothing, row 2's target is ignore_index (-100)."""
    N, C = 6, 5
    logits = torch.randn(N, C, dtype=torch.float64) * 2  # (N, C)
    target = torch.randint(0, C, (N,), dtype=torch.int64)  # (N)
    if smoothing > 0:
        target[2] = -100

    def forward(mod, logits, target):
        return {"output": F.cross_entropy(logits, target, label_smoothing=smoothing,
                                          ignore_index=-100)}

    no_params = nn.Module()  # a functional case: nothing but inputs and the output
    t = run_module_case(no_params, {"logits": logits, "target": target}, forward, dtype)
    return t, {"label_smoothing": smoothing, "ignore_index": -100, "reduction": "mean"}


class TinyModel(nn.Module):
    """fc1 (4 -> 8) -> GELU -> norm (LayerNorm 8) -> fc2 (8 -> 3)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.norm = nn.LayerNorm(8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(self.norm(F.gelu(self.fc1(x))))


def make_optimizer(name, dtype):
    """Trains TinyModel on one fixed batch: losses[k] is the loss before step k."""
    N = 8
    m = TinyModel().double()
    x = torch.randn(N, 4, dtype=torch.float64)  # (N, 4)
    y = torch.randint(0, 3, (N,), dtype=torch.int64)  # (N)
    m = m.to(dtype)
    x = x.to(dtype)
    tensors = {k: v.detach().clone() for k, v in focus_names(m.state_dict().items()).items()}
    if name == "adamw":
        steps, meta = 10, {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                           "weight_decay": 0.01, "amsgrad": False}
        opt = torch.optim.AdamW(m.parameters(), lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                                weight_decay=0.01)
    else:
        steps, meta = 5, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "dampening": 0.0,
                          "weight_decay": 0.0}
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    tensors.update({"input": x, "target": y, "losses": torch.tensor(losses, dtype=dtype)})
    tensors.update({"final." + k: v.detach().clone()
                    for k, v in focus_names(m.state_dict().items()).items()})
    meta.update({"steps": steps, "model": TinyModel.__doc__, "loss": "cross_entropy mean"})
    return tensors, meta


# (file stem, builder(dtype), dtypes). The F32 twin of a case reuses its seed.
CASES = [
    ("layer_norm", make_layer_norm, ("f64", "f32")),
    ("mha_self", lambda d: make_mha("self", d), ("f64", "f32")),
    ("mha_causal", lambda d: make_mha("causal", d), ("f64",)),
    ("mha_padding", lambda d: make_mha("padding", d), ("f64",)),
    ("mha_cross", lambda d: make_mha("cross", d), ("f64",)),
    ("encoder_layer", make_encoder_layer, ("f64", "f32")),
    ("conv_bn_se", make_conv_bn_se, ("f64", "f32")),
    ("cross_entropy", lambda d: make_cross_entropy(0.0, d), ("f64",)),
    ("cross_entropy_smooth", lambda d: make_cross_entropy(0.1, d), ("f64", "f32")),
    ("adamw", lambda d: make_optimizer("adamw", d), ("f64", "f32")),
    ("sgd_nesterov", lambda d: make_optimizer("sgd", d), ("f64", "f32")),
    ("decoder_layer", make_decoder_layer, ("f64", "f32")),
    ("seq2seq", make_seq2seq, ("f64", "f32")),
    ("gradcam", make_gradcam, ("f64", "f32")),
]
TORCH_DTYPES = {"f64": torch.float64, "f32": torch.float32}


def main(out_dir, only=()):
    """Writes every case, or only the named ones (seeds stay those of the full run)."""
    unknown = set(only) - {stem for stem, _, _ in CASES}
    if unknown:
        sys.exit(f"unknown case(s) {sorted(unknown)}; cases: {[c[0] for c in CASES]}")
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)  # fixed reduction order
    total = 0
    for seed, (stem, build, dtypes) in enumerate(CASES, start=1):
        if only and stem not in only:
            continue
        results = {}
        for d in dtypes:
            torch.manual_seed(1000 + seed)
            tensors, meta = build(TORCH_DTYPES[d])
            check_zero(tensors, meta)
            meta.update({"case": stem, "dtype": d.upper(), "seed": 1000 + seed,
                         "torch": torch.__version__})
            results[d] = tensors
            path = os.path.join(out_dir, f"{stem}_{d}.safetensors")
            write_safetensors(path, tensors, meta)
            total += os.path.getsize(path)
            line = f"{path}: {len(tensors)} tensors, {os.path.getsize(path)} bytes"
            if d == "f32":
                noise = f32_noise(results["f32"], results["f64"])
                name = max(noise, key=noise.get)
                line += f"; f32 vs f64 worst {noise[name]:.2e} ({name})"
            print(line)
    print(f"total {total} bytes")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: /usr/bin/python3 tools/make_fixtures.py OUT_DIR [CASE...]")
    main(sys.argv[1], sys.argv[2:])
