"""Sizes shared by the attention benchmark scripts (attention_torch.py, compare_attention.py),
without importing torch: the visible (query, key) pairs behind the FLOP count of
`focus bench attention`, and the memory that materialising the score matrices takes.
"""


def visible_pairs(L, causal, window):
    """Visible (query, key) pairs of one head of length L, as cmd_bench_attention.cpp counts."""
    n = 0
    for i in range(L):
        hi = i + 1 if causal else L
        lo = max(0, i - window) if window >= 0 else 0
        n += max(0, hi - lo)
    return n


def scores_gib(B, H, L, masked, backward):
    """Estimated peak GiB of the (B, H, L, L) float32 matrices that unfused attention (PyTorch's,
    focus's reference kernel) materialises: forward holds two at a time (the scores and their
    scaled / softmaxed successor), half a one more when masked; backward keeps the probabilities
    and builds dP, dS and the masked / scaled gradients of the scores."""
    m = B * H * L * L * 4 / 2**30
    return m * ((4.0 if backward else 2.0) + (0.5 if masked else 0.0))


def mem_available_gib():
    """MemAvailable of /proc/meminfo in GiB (infinity where unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")
