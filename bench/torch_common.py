"""Shared setup for the PyTorch twins of focus's benchmarks (gemm_torch.py, torch_models.py),
their bf16 mixed precision (autocast), and reading focus's .safetensors files into them
(read_safetensors, focus_state_dict).

PyTorch gets its fair settings here, before torch is imported: OpenBLAS on the core focus picks for
the same CPU (SkylakeX on AVX-512, Haswell on AVX2; the AVX-512 machines export Haswell, and
Debian's torch does its matmuls in OpenBLAS; forcing SkylakeX on an AVX2-only CPU such as AMD
EPYC Zen 3 kills the process with an illegal instruction), OpenMP threads that
sleep when idle (busy-waiting threads steal the other process's core when focus and torch take
turns), and as many intra-op threads as focus uses. Import this module before torch.
Limits: Linux only (peak memory comes from /proc/self/status).
"""
import ctypes
import json
import os
import statistics
import struct
import time



def fair_blas_core():
    """The OpenBLAS core focus chooses on this CPU (kernels/gemm.cpp): SkylakeX with AVX-512,
    Haswell with AVX2 + FMA, else OpenBLAS's own choice (None). FOCUS_BLAS_CORETYPE forces one,
    as it does for focus."""
    forced = os.environ.get("FOCUS_BLAS_CORETYPE")
    if forced:
        return forced
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        return None
    if {"avx512f", "avx512vl", "avx512bw", "avx512dq"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return None


_core = fair_blas_core()
if _core:
    os.environ["OPENBLAS_CORETYPE"] = _core
else:
    os.environ.pop("OPENBLAS_CORETYPE", None)
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import torch  # noqa: E402  (after the environment is set)


# torch 1.13's nn.MultiheadAttention, TransformerEncoderLayer and TransformerEncoder mean to leave
# their fused inference paths under autocast, but they ask only CUDA's flag (is_autocast_enabled):
# under CPU autocast the fused kernels get bf16 activations beside f32 weights and fail ("expected
# scalar type BFloat16 but found Float"). Here the flag answers for CPU autocast too (nothing else
# the twins run asks it; without CPU autocast it answers as before).
_cuda_autocast_enabled = torch.is_autocast_enabled
torch.is_autocast_enabled = lambda: _cuda_autocast_enabled() or torch.is_autocast_cpu_enabled()


def autocast(mode):
    """The context a forward pass (and its loss) runs in: torch's CPU autocast to bf16 for mode
    "bf16" (matmuls and convolutions in bf16, cross-entropy in f32, the other ops in their inputs'
    type), else a no-op."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16")


def setup_threads(threads):
    """Intra-op threads (torch's default here is 1); returns the count torch reports."""
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def blas_core():
    """The OpenBLAS core torch's BLAS runs on ("SkylakeX", "Haswell"), or "unknown"."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "unknown"


def environment(threads):
    return {
        "torch": torch.__version__,
        "threads": threads,
        "blas_core": blas_core(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", ""),
        "OMP_WAIT_POLICY": os.environ["OMP_WAIT_POLICY"],
    }


def reset_peak_rss():
    """Resets VmHWM (Linux >= 4.0) so the next peak_rss_mib() covers only what follows."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def rss_mib():
    return _status_kib("VmRSS") / 1024.0


def peak_rss_mib():
    return _status_kib("VmHWM") / 1024.0


def time_calls(fn, warmup, reps):
    """Runs fn warmup times, then reps timed times; returns the per-call seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median(xs):
    return statistics.median(xs)


DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}


def read_safetensors(path, who):
    """-> ({name: tensor}, metadata {str: str}) of a .safetensors file; `who` names the caller in
    errors (SystemExit for a dtype not in DTYPES)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = memoryview(data)[8 + n:]
    out = {}
    for name, h in header.items():
        if h["dtype"] not in DTYPES:
            raise SystemExit(f"{who}: {path}: tensor {name} is {h['dtype']} (one of {sorted(DTYPES)})")
        b, e = h["data_offsets"]
        t = torch.frombuffer(bytearray(body[b:e]), dtype=DTYPES[h["dtype"]]) if e > b else \
            torch.empty(0, dtype=DTYPES[h["dtype"]])
        out[name] = t.reshape(h["shape"])
    return out, meta


def focus_state_dict(model, tensors, path, who):
    """torch's state dict of `model` filled from focus's tensor names: in_proj = cat(q_proj,
    k_proj, v_proj); BatchNorm's num_batches_tracked (torch only) kept. Every focus tensor must be
    used and every shape must match (SystemExit naming `who`, the file and the tensor)."""
    sd, used = {}, set()
    for key, ref in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            sd[key] = ref
            continue
        src = None
        for packed, leaf in (("in_proj_weight", "weight"), ("in_proj_bias", "bias")):
            if key.endswith(packed):
                prefix = key[: -len(packed)]
                names = [f"{prefix}{p}.{leaf}" for p in ("q_proj", "k_proj", "v_proj")]
                missing = [n for n in names if n not in tensors]
                if missing:
                    raise SystemExit(f"{who}: {path} lacks {missing}")
                src = torch.cat([tensors[n] for n in names], 0)
                used.update(names)
        if src is None:
            if key not in tensors:
                raise SystemExit(f"{who}: {path} lacks {key}")
            src = tensors[key]
            used.add(key)
        if tuple(src.shape) != tuple(ref.shape):
            raise SystemExit(f"{who}: {path}: {key} is {tuple(src.shape)}, torch wants {tuple(ref.shape)}")
        sd[key] = src
    unused = sorted(set(tensors) - used)
    if unused:
        raise SystemExit(f"{who}: {path} has tensors the twin does not use: {unused}")
    return sd
