"""Shared setup for the PyTorch twins of focus's benchmarks (gemm_torch.py, torch_models.py).

PyTorch gets its fair settings here, before torch is imported: OpenBLAS on its SkylakeX core (the
machine exports Haswell, and Debian's torch does its matmuls in OpenBLAS), OpenMP threads that
sleep when idle (busy-waiting threads steal the other process's core when focus and torch take
turns), and as many intra-op threads as focus uses. Import this module before torch.
Limits: Linux only (peak memory comes from /proc/self/status).
"""
import ctypes
import os
import statistics
import time

os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import torch  # noqa: E402  (after the environment is set)


def setup_threads(threads):
    """Intra-op threads (torch's default here is 1); returns the count torch reports."""
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def blas_core():
    """The OpenBLAS core torch's BLAS runs on ("SkylakeX"), or "unknown"."""
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
        "OPENBLAS_CORETYPE": os.environ["OPENBLAS_CORETYPE"],
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
