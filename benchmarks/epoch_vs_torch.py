"""Time one baseline epoch (54,000 samples, batch 128) in numpy_dlra and, if installed, PyTorch.

Both do the same work per step: forward and backward of 784-500x5-10 with ReLU and dropout 0.2,
softmax cross-entropy, Gaussian gradient noise, and Adam. Both use the same number of threads
(NumPy's BLAS uses all cores by default; PyTorch is set to os.cpu_count()). The data is the real
training split when it is on this machine, otherwise random data of the same shape (the cost does
not depend on the values). Prints each time, NumPy's step broken down, and the ratio.

Usage: python benchmarks/epoch_vs_torch.py [--epochs 1] [--eta 1e-4]
       (pip install torch==2.13.0 for the comparison)
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpy_dlra.models.mlp import MLP, init_params  # noqa: E402
from numpy_dlra.nn.fast import add_gradient_noise  # noqa: E402
from numpy_dlra.nn.optim import Adam  # noqa: E402

N, B = 54_000, 128


def numpy_epoch(x, y, eta, seed=0):
    rng = np.random.default_rng(seed)
    model = MLP()
    params = init_params(model.sizes, rng, np.float32)
    opt = Adam()
    state = opt.init(params)
    parts = {"forward+backward": 0.0, "gradient noise": 0.0, "adam": 0.0}
    perm = rng.permutation(N)
    t_start = time.perf_counter()
    for i in range(0, N, B):
        idx = perm[i:i + B]
        t0 = time.perf_counter()
        _, _, grads = model.loss_and_grads(params, x[idx], y[idx], training=True, rng=rng)
        t1 = time.perf_counter()
        add_gradient_noise(grads, state["t"], eta, rng)
        t2 = time.perf_counter()
        opt.step(params, grads, state)
        t3 = time.perf_counter()
        parts["forward+backward"] += t1 - t0
        parts["gradient noise"] += t2 - t1
        parts["adam"] += t3 - t2
    return time.perf_counter() - t_start, parts


def torch_epoch(x, y, eta, seed=0):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(os.cpu_count())
    layers = []
    for i in range(5):
        layers += [torch.nn.Linear(784 if i == 0 else 500, 500), torch.nn.ReLU(), torch.nn.Dropout(0.2)]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(500, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    perm = torch.randperm(N)
    t_start = time.perf_counter()
    for step, i in enumerate(range(0, N, B)):
        idx = perm[i:i + B]
        opt.zero_grad(set_to_none=False)
        loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
        loss.backward()
        sigma = (eta / (1 + step) ** 0.55) ** 0.5
        with torch.no_grad():
            for p in net.parameters():
                p.grad.add_(torch.randn_like(p.grad), alpha=sigma)
        opt.step()
    return time.perf_counter() - t_start, torch.__version__, torch.get_num_threads()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=1, help="epochs to time (the best is reported)")
    p.add_argument("--eta", type=float, default=1e-4, help="gradient-noise eta (the trainer's default)")
    args = p.parse_args()
    try:
        from numpy_dlra.data.datasets import load_dataset

        d = load_dataset("full")
        x, y, src = d.x_train[:N], d.y_train[:N], "Fashion-MNIST training split"
    except Exception:
        r = np.random.default_rng(0)
        x, y, src = r.random((N, 784), dtype=np.float32), r.integers(0, 10, N), "random data"
    print(f"data: {src}, {N} samples, batch {B}, {os.cpu_count()} cores, numpy {np.__version__}")
    best = min((numpy_epoch(x, y, args.eta) for _ in range(args.epochs)), key=lambda r: r[0])
    t_np, parts = best
    print(f"numpy_dlra: {t_np:.2f} s/epoch  (" + ", ".join(f"{k} {v / t_np:.0%}" for k, v in parts.items()) + ")")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch not installed (pip install torch==2.13.0): no comparison")
        return
    runs = [torch_epoch(x, y.astype(np.int64), args.eta) for _ in range(args.epochs)]
    t_torch, version, threads = min(runs)
    print(f"pytorch {version} ({threads} threads): {t_torch:.2f} s/epoch")
    print(f"speed ratio pytorch/numpy_dlra = {t_torch / t_np:.2f}  (> 1: numpy_dlra is faster)")


if __name__ == "__main__":
    main()
