"""Refuse, up front, a run that cannot fit in memory (instead of being killed halfway by the OOM killer).

The estimate counts what a run holds at once: the data set (training, validation and test images in
the run's dtype), the parameters with their gradients, Adam's two moments and a noise buffer, the
activations and their gradients for one batch (with dropout masks), the DLRA Grams (one per layer
and axis) and the checkpoint's in-memory copy; plus the interpreter and libraries. A full-data DLRA run (the paper's network, batch 128, float32) is estimated at
534 MiB; its measured peak resident memory over one epoch was 474 MiB (`/usr/bin/time -f %M`).
"""
import os

import numpy as np

BASE_BYTES = 250 * 2**20  # Python, NumPy, SciPy and matplotlib, measured resident after import


def available_bytes():
    """Memory the run may use: MemAvailable from /proc/meminfo, else the physical memory (None if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def estimate_bytes(cfg, n_examples, n_features):
    """Bytes a run of `cfg` on `n_examples` images of `n_features` values needs at its peak (estimate)."""
    item = np.dtype(cfg.dtype).itemsize
    data = n_examples * n_features * item
    sizes = cfg.sizes
    weights = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    params = 6 * weights * item  # W, grad, Adam m and v, noise scratch, the checkpoint's copy
    acts = 4 * cfg.batch_size * sum(sizes) * item  # activations, their gradients, dropout masks, ReLU caches
    evaluation = 2 * min(2000, n_examples) * max(sizes) * item  # batched prediction
    grams = 2 * sum(a * a + b * b for a, b in zip(sizes[:-1], sizes[1:])) * item if cfg.method == "dlra" else 0
    if cfg.model == "cnn":  # im2col columns of the first convolutions, 9 x 32 channels per pixel, for a batch
        acts += 4 * cfg.batch_size * n_features * 9 * 32 * item
    return BASE_BYTES + data + params + acts + evaluation + grams


def check_fits(cfg, n_examples, n_features, available=None):
    """Raise UserError when the estimate exceeds the memory available (`available`, default: this machine's)."""
    from ..errors import UserError

    need = estimate_bytes(cfg, n_examples, n_features)
    have = available if available is not None else available_bytes()
    if have is not None and need > have:
        raise UserError(f"this run needs about {need / 2**30:.1f} GiB of memory and {have / 2**30:.1f} GiB are "
                        f"available: lower --batch-size ({cfg.batch_size}), --sizes or --dtype ({cfg.dtype}), or run "
                        "it on a larger machine")
    return need
