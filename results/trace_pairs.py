"""What sets DLRA's merge rate: follow each layer's closest pair step by step (issue: batch size and merges).

Trains DLRA (Algorithm 1, :func:`numpy_dlra.dlra.algorithm1.train_step`) and, after every step, reads
the closest pair of each layer's fusable axis from the engine (``ClosestPairs.pairs``): which pair it
is, its 1 - |cos| against tau_cos, and whether it is still the pair of the step before. Every
`--probe-every` steps it also compares, on that pair's two vectors, the size of the RaRe gradient
(lambda1 dL_RaRe/dW', what pulls the pair together) with the task gradient (what the data does to
them). One line per variant:

  merges/epoch | pair kept (median steps a pair stays the closest) | 1 - |cos| of the closest pairs
  at the end (median over layers 2-6) | |RaRe grad| / |task grad| on the pair (median)

Usage: python results/trace_pairs.py --epochs 10 --data embedded [--variants b32,b128,...] --out results/merge-rate
Variants: b32, b128, b512 (batch size), eta0 (no gradient noise), lam200 (lambda1 x 10), all at equal epochs.
"""
import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpy_dlra.data.datasets import load_dataset  # noqa: E402
from numpy_dlra.dlra.algorithm1 import train_step  # noqa: E402
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules  # noqa: E402
from numpy_dlra.dlra.rare import rare_term  # noqa: E402
from numpy_dlra.experiments.build import build_model  # noqa: E402
from numpy_dlra.experiments.config import TrainConfig  # noqa: E402
from numpy_dlra.experiments.train import make_rngs  # noqa: E402
from numpy_dlra.nn.optim import Adam  # noqa: E402

VARIANTS = {"b32": {"batch_size": 32}, "b128": {}, "b512": {"batch_size": 512}, "eta0": {"grad_noise_eta": 0.0},
            "lam200": {"lambda1": 200.0}, "l2off": {"lambda2": 0.0}}


def pair_of(pairs, l):
    axis = pairs.fusable_axes(l)
    if not axis:
        return None
    kind = "rows+b" if axis[0] == "rows" else "cols"
    return pairs.pairs.get((l, kind)), axis[0]


def trace(cfg, data, probe_every, follow=None):
    rngs = make_rngs(cfg.seed)
    model, params = build_model(cfg, rng=rngs["init"])
    opt = Adam(cfg.lr, cfg.beta1, cfg.beta2, cfg.eps)
    state = opt.init(params)
    pairs = ClosestPairs(model, FusionRules.from_config(cfg))
    pairs.refresh(params)
    x, y = data.x_train, data.y_train
    L = model.n_layers
    last, runs, ratios, merges = {}, {l: [] for l in range(2, L + 1)}, [], 0
    gaps = {}
    steps = 0
    for epoch in range(cfg.epochs):
        perm = rngs["shuffle"].permutation(len(y))
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            if probe_every and steps % probe_every == 0:  # RaRe vs task gradient on each closest pair
                _, _, g_task = model.loss_and_grads(params, x[idx], y[idx], training=True,
                                                    rng=np.random.default_rng(steps), lambda2=0.0)
                g_rare = {k: np.zeros_like(v) for k, v in params.items()}
                rare_term(pairs, params, g_rare)
                for l in range(2, L + 1):
                    p = pairs.pairs.get((l, "cols"))
                    if p:
                        a = np.linalg.norm(g_rare[f"W{l}"][:, [p[0], p[1]]])
                        b = np.linalg.norm(g_task[f"W{l}"][:, [p[0], p[1]]])
                        if b > 0:
                            ratios.append(a / b)
            r = train_step(model, params, opt, state, x[idx], y[idx], cfg, rngs, pairs)
            merges += len(r.merges)
            if follow and steps < 60 and steps % 6 == 0:
                i, j, c = pairs.pairs[(follow, "cols")][:3]
                print(f"  step {steps:3d}: layer {follow}'s closest columns {i}, {j}: 1 - |cos| = {1 - abs(c):.2e}")
            steps += 1
            for l in range(2, L + 1):
                got = pair_of(pairs, l)
                if not got or not got[0]:
                    continue
                (pi, pj, c, _, _), axis = got
                key = (pi, pj, axis)
                if last.get(l, (None, 0))[0] == key:
                    last[l] = (key, last[l][1] + 1)
                else:
                    if l in last:
                        runs[l].append(last[l][1])
                    last[l] = (key, 1)
                gaps[l] = 1.0 - abs(c)
    held = [n for v in runs.values() for n in v]
    return {"merges_per_epoch": merges / cfg.epochs, "steps": steps,
            "pair_kept_median_steps": float(np.median(held)) if held else None,
            "pair_changes_per_step": len(held) / max(1, steps * (L - 1)),
            "final_gap_median": float(np.median(list(gaps.values()))),
            "final_gap_by_layer": {str(l): g for l, g in gaps.items()},
            "rare_over_task_median": float(np.median(ratios)) if ratios else None,
            "compression": 100 * (1 - model.param_count() / (sum(a * b + a for a, b in zip(cfg.sizes[1:], cfg.sizes[:-1])) + L)),
            "shapes": [list(model.shape(l)) for l in range(1, L + 1)]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--data", default="embedded")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--probe-every", type=int, default=20)
    ap.add_argument("--follow", type=int, default=None, help="print layer L's closest column pair every 6 of the first 60 steps")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    data = load_dataset(args.data, log=lambda m: None).to(np, np.float32)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = TrainConfig(method="dlra", epochs=args.epochs, data=args.data, seed=args.seed, probe_size=0)
    results = {}
    print("| variant | merges/epoch | steps | pair kept (median steps) | closest pair changes per step | "
          "1 - |cos| at the end (median, layers 2-6) | RaRe / task gradient on the pair | compression % |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.variants.split(","):
        cfg = replace(base, **VARIANTS[name]) if name != "lam200" else TrainConfig(
            **{**base.to_dict(), "lambda1": 200.0, "sizes": base.sizes, "layer_ranks": ()})
        r = results[name] = trace(cfg, data, args.probe_every, args.follow)
        print(f"| {name} | {r['merges_per_epoch']:.1f} | {r['steps']} | {r['pair_kept_median_steps']} | "
              f"{r['pair_changes_per_step']:.2f} | {r['final_gap_median']:.2e} | "
              f"{'n/a' if r['rare_over_task_median'] is None else format(r['rare_over_task_median'], '.3f')} | "
              f"{r['compression']:.2f} |", flush=True)
    (out / f"trace-{args.data}-e{args.epochs}-seed{args.seed}.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
