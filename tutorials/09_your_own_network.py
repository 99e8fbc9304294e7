"""
Tutorial 09: DLRA on your own network (Algorithm 1, Secs. 4-5)
==============================================================

Layer sizes the paper did not use. The paper trains 784-500-500-500-500-500-10. Here the same
method runs on 784-1000-300-10 through the public API: a
``numpy_dlra.experiments.config.TrainConfig`` (every setting, each also a flag of
``numpy-dlra train``) and ``numpy_dlra.experiments.train.train``, which writes a run folder
(``./tutorial09_run``: config.json, metrics.jsonl, merges.jsonl, checkpoint.npz, summary.json). The
script reads metrics.jsonl and merges.jsonl back: shapes, parameters and compression per epoch, and
every merge with the layer, axis and how much it moved the logits of a fixed probe batch. Then it
shows the one-step API, ``numpy_dlra.dlra.algorithm1.train_step``, for readers who write their own
loop.

Settings that differ from the paper, so that merges happen within a tutorial's budget (2 epochs on
the embedded 4500-image subset instead of 2000 epochs on 54,000 images):

- lambda1 = 200 (paper 20): RaRe rotates the closest pairs faster;
- tau_cos = 1e-2 (paper 1e-4) and tau_euc = 1.0 (paper 0.1): pairs up to about 8 degrees apart
  fuse, so merges are lossy: probe_change shows by how much. With the paper's thresholds this run
  makes one merge in 2 epochs (lambda1 20 or 200);
- dtype float64 (the default is float32), so that the printed merges do not depend on the number of
  BLAS threads; l2_on "effective" (Eq. 17 on ``FN(W')``, one of the readings docs/choices.md
  measures; the default is "w"), named explicitly so that the expected output does not move with
  the default;
- the one-step demo uses a tiny 784-24-24-10 net, batch 100 and even looser thresholds
  (tau_cos 0.2, tau_euc 10), like tests/test_algorithm1.py.

The rules of which axis may fuse are the paper's (docs/method.md Sec. 11): the longer axis of each
W', never the first layer's columns (pixels) nor the last layer's rows (classes). So layer 1
(1000 x 784) fuses rows, layers 2 (300 x 1000) and 3 (10 x 300) fuse columns.
Run ``python tutorials/09_your_own_network.py`` from any folder, or cell by cell in Jupyter or
VS Code; the run goes to ``./tutorial09_run/`` and the figure appears inline.

Expected output (2 cores, about 25 s)::

    784-1000-300-10: 1,088,313 parameters with FN's 3 gains; lambda1 200.0, tau_cos 0.01, tau_euc 1.0, 2 epochs
    epoch 1: test 73.70 %, shapes 1000x784 300x1000 10x299 (features 1000 300), 1,088,303 params (0.00 %), merges 1
    epoch 2: test 76.00 %, shapes 999x784 300x999 10x296 (features 999 300), 1,087,188 params (0.10 %), merges 5
    merges.jsonl: 6 merges; layer 1 rows: 1, layer 2 cols: 1, layer 3 cols: 4
      step   18  layer 3 cols  kept  27 dropped  70  cos  0.9904  D_euc 0.0283  shape 10x299  probe_change 0.0115
      step   37  layer 3 cols  kept 285 dropped  38  cos -0.9912  D_euc 0.0241  shape 10x298  probe_change 0.0856
      step   51  layer 3 cols  kept 197 dropped 214  cos -0.9906  D_euc 0.0330  shape 10x297  probe_change 0.0420
      step   54  layer 2 cols  kept 406 dropped  13  cos -0.9907  D_euc 0.1166  shape 300x999  probe_change 0.0027
      step   56  layer 1 rows  kept 379 dropped 929  cos  0.9902  D_euc 0.2103  shape 999x784  probe_change 0.0050
      step   68  layer 3 cols  kept 252 dropped 247  cos  0.9913  D_euc 0.0389  shape 10x296  probe_change 0.0506
    dense 784-1000-300-10 has 1,088,310 parameters; DLRA's net now has 1,087,188 (0.10 % compression)
    forward FLOPs per sample: dense 2,174,000, factorized 2 m'n' 2,171,752, paper's count 2,171,832
    the one-step API: train_step on 784-24-24-10 (lambda1 200, tau_cos 0.2, tau_euc 10), batch 100, 45 steps
    the steps that merged:
      step 1: loss 144.9474, RaRe 0.6919, merged layer 3 cols x 3; shapes 24x784 24x24 10x21
      step 20: loss 68.6033, RaRe 0.3136, merged layer 3 cols x 1; shapes 24x784 24x24 10x20
    after 45 steps: 4 merges, test accuracy 49.30 %, parameters 19,653 (dense 19,690 + 3 FN gains)
"""
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np

try:  # a plain run, from any folder: the checkout's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
except NameError:  # Jupyter and sphinx-gallery define no __file__; they run in tutorials/
    sys.path.insert(0, str(Path.cwd().parent))

import matplotlib.pyplot as plt  # noqa: E402

from numpy_dlra.data.datasets import load_dataset  # noqa: E402
from numpy_dlra.dlra.algorithm1 import train_step  # noqa: E402
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules  # noqa: E402
from numpy_dlra.experiments.build import build_model  # noqa: E402
from numpy_dlra.experiments.config import TrainConfig  # noqa: E402
from numpy_dlra.experiments.train import make_rngs, train  # noqa: E402
from numpy_dlra.models.mlp import MLP  # noqa: E402
from numpy_dlra.nn.optim import Adam  # noqa: E402

RUN = Path("tutorial09_run")
if (RUN / "config.json").is_file():  # a run folder left by an earlier run of this script
    shutil.rmtree(RUN)

# %%
# 1. The whole run through ``TrainConfig`` and ``train``
# ------------------------------------------------------
#
# One ``TrainConfig`` holds every setting; ``build_model`` shows the network it describes, and
# ``train`` runs Algorithm 1 and writes the run folder. Pass ``log=print`` to see each epoch (with
# timings).

sizes = (784, 1000, 300, 10)
cfg = TrainConfig(method="dlra", sizes=sizes, data="embedded", epochs=2, lambda1=200.0, tau_cos=1e-2, tau_euc=1.0,
                  l2_on="effective", dtype="float64")
model, _ = build_model(cfg, rng=make_rngs(cfg.seed)["init"])
print(f"784-1000-300-10: {model.param_count():,} parameters with FN's {model.n_layers} gains; "
      f"lambda1 {cfg.lambda1}, tau_cos {cfg.tau_cos}, tau_euc {cfg.tau_euc}, {cfg.epochs} epochs")
train(cfg, RUN, progress=False, log=lambda msg: None)  # log=print shows each epoch (with timings)

# %%
# Reading the run folder
# ----------------------
#
# ``metrics.jsonl`` has one line per epoch, ``merges.jsonl`` one line per merge.

metrics = [json.loads(line) for line in (RUN / "metrics.jsonl").read_text().splitlines()]
merges = [json.loads(line) for line in (RUN / "merges.jsonl").read_text().splitlines()]
for rec in metrics:
    shapes = " ".join(f"{d['m']}x{d['n']}" for d in rec["layers"])
    feats = " ".join(str(d["feat"]) for d in rec["layers"][:-1])
    print(f"epoch {rec['epoch']}: test {rec['test_acc']:.2f} %, shapes {shapes} "
          f"(features {feats}), {rec['params']:,} params ({rec['compression']:.2f} %), merges {rec['merges']}")
by_axis = Counter((r["layer"], r["axis"]) for r in merges)
print(f"merges.jsonl: {len(merges)} merges; "
      + ", ".join(f"layer {l} {axis}: {c}" for (l, axis), c in sorted(by_axis.items())))
for r in merges[:10]:
    print(f"  step {r['step']:>4}  layer {r['layer']} {r['axis']}  kept {r['kept']:>3} dropped {r['dropped']:>3}  "
          f"cos {r['cos']:>7.4f}  D_euc {r['d_euc']:.4f}  shape {r['shape'][0]}x{r['shape'][1]}  "
          f"probe_change {r['probe_change']:.4f}")
dense = MLP(sizes)
last = metrics[-1]
print(f"dense 784-1000-300-10 has {dense.param_count():,} parameters; DLRA's net now has {last['params']:,} "
      f"({last['compression']:.2f} % compression)")
print(f"forward FLOPs per sample: dense {dense.flops_per_sample():,}, factorized 2 m'n' {last['flops_per_sample']:,}, "
      f"paper's count {last['flops_paper']:,}")

# %%
# Merges over the run, per layer and axis, from ``merges.jsonl``.

fig, ax = plt.subplots(figsize=(6, 4))
for l, axis in sorted({(r["layer"], r["axis"]) for r in merges}):
    steps = [0] + [r["step"] for r in merges if r["layer"] == l and r["axis"] == axis] + [last["step"]]
    count = list(range(len(steps) - 1))
    ax.step(steps, count + count[-1:], where="post", label=f"layer {l} {axis}")
ax.set(xlabel="step", ylabel="vectors fused away", title="784-1000-300-10, DLRA (merges.jsonl)")
ax.legend()
fig.tight_layout()

# %%
# 2. Your own loop: one call of ``train_step`` per batch
# ------------------------------------------------------
#
# What ``train`` does inside, spelled out on a tiny 784-24-24-10 net: the data in the run's dtype,
# the random generators (init, shuffle, dropout, noise), a ``FactorizedMLP`` with ``P = Q = I`` and
# FN on, Adam, and ``ClosestPairs`` (lambda1, Eq. 13's thresholds, the merge options). The first
# step's RaRe term uses the closest pairs of the initial W'.

small = TrainConfig(method="dlra", sizes=(784, 24, 24, 10), data="embedded", batch_size=100, epochs=1,
                    lambda1=200.0, tau_cos=0.2, tau_euc=10.0, probe_size=16, l2_on="effective", dtype="float64")
data = load_dataset("embedded").to(np, np.dtype(small.dtype))  # the arrays in the run's dtype, as train() does
rngs = make_rngs(small.seed)  # init, shuffle, dropout, noise
net, params = build_model(small, rng=rngs["init"])  # a FactorizedMLP: P = Q = I, FN on
opt = Adam(small.lr, small.beta1, small.beta2, small.eps)
state = opt.init(params)
pairs = ClosestPairs(net, FusionRules.from_config(small))  # lambda1, Eq. (13)'s thresholds, the merge options
pairs.refresh(params)  # the first step's RaRe term uses the closest pairs of the initial W'

# %%
# Each ``train_step`` computes loss + RaRe + L2, adds the gradient noise, takes the Adam step,
# refreshes the Grams and closest pairs, tests Eq. (13) and merges. It returns the merges it made.

perm = rngs["shuffle"].permutation(len(data.y_train))
n_steps = len(perm) // small.batch_size
print(f"the one-step API: train_step on 784-24-24-10 (lambda1 {small.lambda1:.0f}, tau_cos {small.tau_cos}, "
      f"tau_euc {small.tau_euc:.0f}), batch {small.batch_size}, {n_steps} steps")
print("the steps that merged:")
total = 0
for t in range(1, n_steps + 1):
    idx = perm[(t - 1) * small.batch_size:t * small.batch_size]
    # loss + RaRe + L2, gradient noise, Adam, fresh Grams and closest pairs, Eq. (13) and the merges
    r = train_step(net, params, opt, state, data.x_train[idx], data.y_train[idx], small, rngs, pairs,
                   probe=data.x_val[:small.probe_size])
    total += len(r.merges)
    if r.merges:
        shapes = " ".join(f"{d['m']}x{d['n']}" for d in net.layer_stats())
        counts = Counter((m["layer"], m["axis"]) for m in r.merges)
        where = ", ".join(f"layer {l} {axis} x {c}" for (l, axis), c in counts.items())
        print(f"  step {t}: loss {r.loss:.4f}, RaRe {r.rare:.4f}, merged {where}; shapes {shapes}")
acc = (net.predict(params, data.x_test) == data.y_test).mean() * 100
print(f"after {n_steps} steps: {total} merges, test accuracy {acc:.2f} %, parameters {net.param_count():,} "
      f"(dense {MLP(small.sizes).param_count():,} + 3 FN gains)")
