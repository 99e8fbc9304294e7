"""Time a DLRA epoch against a baseline epoch: same data, batch (128), threads and step count.

Each step is the trainer's step (numpy_dlra.train): forward and backward, L2, gradient noise,
Adam; DLRA adds FN, the RaRe term (Eq. 16) with its gradient, the Grams of the updated W' and the
merge test after every update, and the merges themselves (with the probe batch). The script
times the baseline, then DLRA, then the baseline again (the ratio uses their mean, so that a
drift of the machine shows), and prints DLRA's step broken down by phase.

The data is the real training split when it is on this machine, otherwise random data of the same
shape. Usage: python benchmarks/dlra_vs_baseline.py [--steps 422] [--rare-axes all|fusable] [--search-every K]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpy_dlra.factorized_mlp import FactorizedMLP  # noqa: E402
from numpy_dlra.fusion import FusionRules, RankReducer  # noqa: E402
from numpy_dlra.mlp import MLP, init_params  # noqa: E402
from numpy_dlra.optim import Adam, add_gradient_noise  # noqa: E402

B = 128


def epoch(x, y, steps, method, rules=None, seed=0):
    """Run `steps` training steps of `method`; returns (seconds, {phase: seconds}, final shapes)."""
    rng = np.random.default_rng(seed)
    dense = init_params(MLP().sizes, rng, np.float32)
    if method == "baseline":
        model, params, lam1, lam2 = MLP(), dense, 0.0, 0.0
    else:
        model, params = FactorizedMLP.from_dense(dense, MLP().sizes, 0.2)
        lam1, lam2 = 20.0, 0.1
    reducer = RankReducer(model, rules) if method == "dlra" else None
    opt = Adam()
    state = opt.init(params)
    probe = x[:256]
    parts = dict.fromkeys(["forward+backward (+FN, L2)", "RaRe term", "gradient noise", "adam",
                           "Grams of the updated W'", "merge test and merges"], 0.0)
    keys = list(parts)
    if reducer:
        reducer.refresh(params, lam1)
    perm = rng.permutation(len(x))
    t_start = time.perf_counter()
    for s in range(steps):
        idx = perm[(s * B) % len(x):][:B]
        t = [time.perf_counter()]
        _, _, grads = model.loss_and_grads(params, x[idx], y[idx], training=True, rng=rng, lambda2=lam2)
        t.append(time.perf_counter())
        if reducer:
            reducer.rare_term(params, grads, lam1)
        t.append(time.perf_counter())
        add_gradient_noise(grads, state["t"], 1e-4, rng)
        t.append(time.perf_counter())
        opt.step(params, grads, state)
        t.append(time.perf_counter())
        if reducer:
            reducer.refresh(params, lam1, s + 1)
            t.append(time.perf_counter())
            reducer.merge_step(params, state, s + 1, lam1, probe)
        t.append(time.perf_counter())
        for k, a, b in zip(keys, t, t[1:]):
            parts[k] += b - a
    total = time.perf_counter() - t_start
    shapes = [layer_shape for layer_shape in map(model.shape, range(1, 7))] if reducer else None
    return total, parts, shapes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=422, help="steps per timed run (422 = one epoch of 54,000)")
    ap.add_argument("--rare-axes", choices=("all", "fusable"), default="all")
    ap.add_argument("--search-every", type=int, default=1, help="1: exact (default); K: the approximation flag")
    args = ap.parse_args()
    try:
        from numpy_dlra.datasets import load_dataset

        d = load_dataset("full", log=lambda m: None)
        x, y, what = d.x_train.astype(np.float32), d.y_train, "Fashion-MNIST training split"
    except Exception:  # noqa: BLE001 - any failure: fall back to random data of the same shape
        g = np.random.default_rng(0)
        x, y, what = g.random((54_000, 784), dtype=np.float32), g.integers(0, 10, 54_000), "random data"
    print(f"{args.steps} steps of batch {B} on {what}; rare axes: {args.rare_axes}; search every {args.search_every}")
    rules = FusionRules(rare_axes=args.rare_axes, search_every=args.search_every)
    base1, _, _ = epoch(x, y, args.steps, "baseline")
    fn, _, _ = epoch(x, y, args.steps, "fn")
    dlra, parts, shapes = epoch(x, y, args.steps, "dlra", rules)
    base2, _, _ = epoch(x, y, args.steps, "baseline")
    base = (base1 + base2) / 2
    print(f"baseline  {base1:6.2f} s, again {base2:6.2f} s  ({1e3 * base / args.steps:.1f} ms/step)")
    print(f"fn        {fn:6.2f} s  ratio {fn / base:.2f}")
    print(f"dlra      {dlra:6.2f} s  ratio {dlra / base:.2f}   (shapes after: {shapes})")
    for k, v in parts.items():
        print(f"  {k:<30} {1e3 * v / args.steps:6.2f} ms/step  {100 * v / dlra:5.1f} %")


if __name__ == "__main__":
    main()
