"""Would drawing the gradient noise on a second thread, during the forward and backward pass, pay?

Issue 27 asks whether the noise's draw can overlap the GEMMs. This times, in one run and on the BLAS threads
it is given, the baseline's forward and backward pass plus its noise (``--grad-noise-stream raw``) at batch 128:
- in sequence, as ``train_step`` does it;
- overlapped: a worker thread draws the step's noise into buffers while the main thread runs the forward and
  backward pass, then the buffers are added to the gradients (the same draws in the same order: the worker
  owns the noise generator meanwhile).
Each way runs `--steps` steps, `--reps` times interleaved; the fastest and the median repetition are shown.

Usage: OMP_NUM_THREADS=T python benchmarks/noise_overlap.py [--steps 20] [--reps 8]
"""
import argparse
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpy_dlra.experiments.build import build_model  # noqa: E402
from numpy_dlra.experiments.config import TrainConfig  # noqa: E402
from numpy_dlra.nn.fast import add_gradient_noise  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--reps", type=int, default=8)
    args = ap.parse_args(argv)
    model, params = build_model(TrainConfig(method="baseline"), rng=np.random.default_rng(0))
    g = np.random.default_rng(0)
    x, y = g.random((128, 784), dtype=np.float32), g.integers(0, 10, 128)
    noise, dropout = np.random.default_rng(1), np.random.default_rng(2)
    buffers = {k: np.zeros_like(p) for k, p in params.items()}
    pool = ThreadPoolExecutor(1)

    def draw():  # the step's noise into zeroed buffers, on the worker
        for b in buffers.values():
            b[...] = 0
        add_gradient_noise(buffers, 5, 1e-4, noise)

    def sequence():
        _, _, grads = model.loss_and_grads(params, x, y, training=True, rng=dropout)
        add_gradient_noise(grads, 5, 1e-4, noise)

    def overlapped():
        pending = pool.submit(draw)
        _, _, grads = model.loss_and_grads(params, x, y, training=True, rng=dropout)
        pending.result()
        for k, gr in grads.items():
            gr += buffers[k]

    times = {"in sequence": [], "overlapped": []}
    for f in (sequence, overlapped):
        f()
    for _ in range(args.reps):
        for name, f in (("in sequence", sequence), ("overlapped", overlapped)):
            t0 = time.perf_counter()
            for _ in range(args.steps):
                f()
            times[name].append((time.perf_counter() - t0) / args.steps * 1e3)
    threads = os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS") or str(os.cpu_count())
    print(f"{platform.node()}: {os.cpu_count()} cores, {threads} BLAS threads, NumPy {np.__version__}, batch 128, "
          f"{args.steps} steps x {args.reps} repetitions interleaved; forward + backward + noise, ms per step:")
    for name, v in times.items():
        v = sorted(v)
        print(f"  {name:<12} fastest {v[0]:6.2f}  median {v[len(v) // 2]:6.2f}")


if __name__ == "__main__":
    main()
