#!/usr/bin/env python3
"""Writes torch_optim_reference.safetensors beside this script: torch.optim (PyTorch 1.13) runs
of SGD, Adam, AdamW and RMSprop variants on one parameter vector with fixed gradients, so that
tests/optim/torch_reference_test.cpp can check focus's optimizers bit for bit.

Tensors: p0.<dt> (N,), grads.<dt> (T, N), <case>.<dt> (T, N) = the parameter after each step,
for dt in f32, f64. Metadata: <case> -> JSON of the optimizer and its arguments.
Run with the python that has torch 1.13 (Debian's: /usr/bin/python3 make_torch_reference.py).
"""
import json
import os
import struct

import torch

N, T = 67, 4  # 67: a vectorised body and a scalar tail
CASES = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd_momentum_wd": ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    "sgd_nesterov": ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    "sgd_dampening": ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    "adam": ("Adam", dict(lr=0.01)),
    "adam_l2": ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    "adamw": ("AdamW", dict(lr=0.01, weight_decay=0.05)),
    "rmsprop": ("RMSprop", dict(lr=0.01)),
    "rmsprop_full": ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01,
                                     momentum=0.5, centered=True)),
}
DTYPES = {"f32": torch.float32, "f64": torch.float64}
SAFETENSORS_DTYPE = {torch.float32: "F32", torch.float64: "F64"}


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPE[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    torch.manual_seed(0)
    tensors, meta = {}, {}
    for dt, tdtype in DTYPES.items():
        p0 = torch.randn(N, dtype=tdtype)
        grads = torch.randn(T, N, dtype=tdtype) * 0.1
        tensors[f"p0.{dt}"], tensors[f"grads.{dt}"] = p0, grads
        for case, (opt_name, kwargs) in CASES.items():
            meta[case] = json.dumps({"optimizer": opt_name, **kwargs})
            p = p0.clone().requires_grad_()
            opt = getattr(torch.optim, opt_name)([p], **kwargs)
            after = []
            for t in range(T):
                p.grad = grads[t].clone()
                opt.step()
                after.append(p.detach().clone())
            tensors[f"{case}.{dt}"] = torch.stack(after)
    meta["torch"] = torch.__version__
    write_safetensors(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                   "torch_optim_reference.safetensors"), tensors, meta)


if __name__ == "__main__":
    main()
