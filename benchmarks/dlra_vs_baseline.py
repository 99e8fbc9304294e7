"""Time a DLRA epoch against a baseline epoch: same data, batch (128), threads and step count.

Each step is Algorithm 1's step, :func:`numpy_dlra.dlra.algorithm1.train_step`, the one the
trainer runs: forward and backward, L2, gradient noise, Adam; DLRA adds FN, the RaRe term (Eq. 16)
with its gradient, the Grams of the updated W' and the merge test after every update, and the
merges themselves (with the probe batch). The script times the baseline, then fn, then DLRA, then
the baseline again (the ratio uses the baselines' mean, so that a drift of the machine shows), and
prints DLRA's step broken down by phase.

The data is the real training split when it is on this machine, otherwise random data of the same
shape. Usage: python benchmarks/dlra_vs_baseline.py [--steps 422] [--rare-axes all|fusable] [--search-every K]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpy_dlra.dlra.algorithm1 import PHASES, train_step  # noqa: E402
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules  # noqa: E402
from numpy_dlra.experiments.build import build_model  # noqa: E402
from numpy_dlra.experiments.config import TrainConfig  # noqa: E402
from numpy_dlra.nn.optim import Adam  # noqa: E402

B = 128


def epoch(x, y, steps, cfg, seed=0):
    """Run `steps` training steps of cfg.method; returns (seconds, {phase: seconds}, final shapes)."""
    rng = np.random.default_rng(seed)
    model, params = build_model(cfg, rng=rng)
    pairs = ClosestPairs(model, FusionRules.from_config(cfg)) if cfg.method == "dlra" else None
    opt = Adam()
    state = opt.init(params)
    probe = x[:256]
    rngs = {"dropout": rng, "noise": rng}
    parts = dict.fromkeys(PHASES, 0.0)
    if pairs:
        pairs.refresh(params)
    perm = rng.permutation(len(x))
    t_start = time.perf_counter()
    for s in range(steps):
        idx = perm[(s * B) % len(x):][:B]
        train_step(model, params, opt, state, x[idx], y[idx], cfg, rngs, pairs, probe if pairs else None, clock=parts)
    total = time.perf_counter() - t_start
    shapes = [model.shape(l) for l in range(1, model.n_layers + 1)] if pairs else None
    return total, parts, shapes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=422, help="steps per timed run (422 = one epoch of 54,000)")
    ap.add_argument("--rare-axes", choices=("all", "fusable"), default="all")
    ap.add_argument("--search-every", type=int, default=1, help="1: exact (default); K: the approximation flag")
    args = ap.parse_args()
    try:
        from numpy_dlra.data.datasets import load_dataset

        d = load_dataset("full", log=lambda m: None)
        x, y, what = d.x_train.astype(np.float32), d.y_train, "Fashion-MNIST training split"
    except Exception:  # noqa: BLE001 - any failure: fall back to random data of the same shape
        g = np.random.default_rng(0)
        x, y, what = g.random((54_000, 784), dtype=np.float32), g.integers(0, 10, 54_000), "random data"
    print(f"{args.steps} steps of batch {B} on {what}; rare axes: {args.rare_axes}; search every {args.search_every}")
    cfgs = {m: TrainConfig(method=m, batch_size=B, rare_axes=args.rare_axes, search_every=args.search_every)
            for m in ("baseline", "fn", "dlra")}
    cfgs["fn"] = TrainConfig(method="fn", batch_size=B, lambda2=0.1)  # fn with dlra's L2, as before
    base1, _, _ = epoch(x, y, args.steps, cfgs["baseline"])
    fn, _, _ = epoch(x, y, args.steps, cfgs["fn"])
    dlra, parts, shapes = epoch(x, y, args.steps, cfgs["dlra"])
    base2, _, _ = epoch(x, y, args.steps, cfgs["baseline"])
    base = (base1 + base2) / 2
    print(f"baseline  {base1:6.2f} s, again {base2:6.2f} s  ({1e3 * base / args.steps:.1f} ms/step)")
    print(f"fn        {fn:6.2f} s  ratio {fn / base:.2f}")
    print(f"dlra      {dlra:6.2f} s  ratio {dlra / base:.2f}   (shapes after: {shapes})")
    for k, v in parts.items():
        print(f"  {k:<30} {1e3 * v / args.steps:6.2f} ms/step  {100 * v / dlra:5.1f} %")


if __name__ == "__main__":
    main()
