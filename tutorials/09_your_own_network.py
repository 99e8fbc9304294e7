"""
Tutorial 09: DLRA on your own data and your own network (Algorithm 1, Secs. 4-5)
================================================================================

Data and layer sizes the paper did not use. The paper trains 784-500-500-500-500-500-10 on
Fashion-MNIST. Here the method runs on a data set of our own, saved as an ``.npz`` file the way you
would save yours, first through the command line (``numpy-dlra train --data FILE.npz``), then
through the Python API: ``numpy_dlra.data.own.from_arrays`` (your arrays, checked),
``numpy_dlra.experiments.config.TrainConfig`` (every setting, each also a flag of
``numpy-dlra train``) and ``numpy_dlra.experiments.train.train``, which writes a run folder
(config.json, metrics.jsonl, merges.jsonl, checkpoint.npz, summary.json). Then the one-step API,
``numpy_dlra.dlra.algorithm1.train_step``, for readers who write their own loop; last, the
smaller network taken out of the run (``numpy-dlra export``) and run with plain NumPy.

**Your data.** An ``.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test`` (and optionally
``x_val``, ``y_val``; else a stratified 10 % of the training set is held out): inputs (N, d) or
images (N, H, W[, C]), labels integers 0..C-1. One scaling rule: uint8 inputs are divided by 255,
any other type is used as given (a float file that looks like 0-255 pixels gets a one-line
warning). The network's input width and class count come from the file; the hidden widths are the
paper's unless ``--sizes`` gives others. The run records the file's path, its sha256 and the
scaling in config.json, and ``--resume`` on a changed file is refused (docs/usage.md).

Our "own" data here is cut from the embedded Fashion-MNIST subset: the first 5 classes, each image
averaged down to 14 x 14 (2,500 training and 500 test images, uint8).

Settings that differ from the paper, so that merges happen within a tutorial's budget (3 epochs on
2,250 images instead of 2000 epochs on 54,000):

- lambda1 = 200 (paper 20): RaRe rotates the closest pairs faster;
- tau_cos = 1e-2 (paper 1e-4) and tau_euc = 1.0 (paper 0.1): pairs up to about 8 degrees apart
  fuse, so merges are lossy: probe_change shows by how much;
- dtype float64 (the default is float32), so that the printed merges do not depend on the number of
  BLAS threads; l2_on "effective" (Eq. 17 on ``FN(W')``, one of the readings docs/choices.md
  measures; the default is "w"), named explicitly so that the expected output does not move with
  the default;
- the one-step demo uses a tiny 196-24-24-5 net, batch 100 and even looser thresholds
  (tau_cos 0.2, tau_euc 10), like tests/test_algorithm1.py.

The rules of which axis may fuse are the paper's (docs/method.md Sec. 11): the longer axis of each
W', never the first layer's columns (pixels) nor the last layer's rows (classes).
Run ``python tutorials/09_your_own_network.py`` from any folder, or cell by cell in Jupyter or
VS Code; the data and runs go to ``./tutorial09_run/`` and the figure appears inline.

Expected output (2 cores, about 11 s)::

    mine.npz: x_train (2500, 14, 14) uint8, y_train (2500,) uint8, x_test (500, 14, 14) uint8, y_test (500,) uint8; 5 classes
    numpy-dlra train --method baseline: sizes 196,500,500,500,500,500,5, test 74.60 %, 0.00 % compression, 0 merges, shapes 500x196 500x500 500x500 500x500 500x500 5x500
    numpy-dlra train --method dlra: sizes 196,500,500,500,500,500,5, test 76.00 %, 0.02 % compression, 47 merges, shapes 500x196 500x500 500x500 500x500 500x500 5x453
    the data as the runs recorded it: tutorial09_run/mine.npz, scaling uint8/255, input shape (14, 14, 1), 5 classes
    196-300-100-5: 89,708 parameters with FN's 3 gains; lambda1 200.0, tau_cos 0.01, tau_euc 1.0, 3 epochs
    epoch 1: test 70.60 %, shapes 300x196 100x300 5x95 (features 300 100), 89,683 params (0.03 %), merges 5
    epoch 2: test 77.80 %, shapes 300x196 100x300 5x93 (features 300 100), 89,673 params (0.04 %), merges 2
    epoch 3: test 77.60 %, shapes 300x196 100x300 5x92 (features 300 100), 89,668 params (0.04 %), merges 1
    merges.jsonl: 8 merges; layer 3 cols: 8
      step    1  layer 3 cols  kept  32 dropped  30  cos  0.9909  D_euc 0.0319  shape 5x99  probe_change 0.0279
      step    4  layer 3 cols  kept  16 dropped   4  cos  0.9922  D_euc 0.0181  shape 5x98  probe_change 0.0380
      step    8  layer 3 cols  kept  54 dropped  32  cos  0.9911  D_euc 0.0195  shape 5x97  probe_change 0.0006
      step   13  layer 3 cols  kept  90 dropped  69  cos  0.9903  D_euc 0.0280  shape 5x96  probe_change 0.0425
      step   18  layer 3 cols  kept  64 dropped   1  cos  0.9911  D_euc 0.0156  shape 5x95  probe_change 0.0532
      step   26  layer 3 cols  kept  83 dropped  58  cos -0.9911  D_euc 0.0286  shape 5x94  probe_change 0.0007
    dense 196-300-100-5 has 89,705 parameters; DLRA's net now has 89,668 (0.04 % compression)
    forward FLOPs per sample: dense 178,600, factorized 2 m'n' 178,520, paper's count 178,600
    the one-step API: train_step on 196-24-24-5 (lambda1 200, tau_cos 0.2, tau_euc 10), batch 100, 22 steps
    the steps that merged:
      step 1: loss 146.3630, RaRe 0.7055, merged layer 3 cols x 8; shapes 24x196 24x24 5x16
      step 3: loss 142.6627, RaRe 0.6873, merged layer 3 cols x 1; shapes 24x196 24x24 5x15
      step 13: loss 119.4410, RaRe 0.5722, merged layer 3 cols x 1; shapes 24x196 24x24 5x14
    after 22 steps: 10 merges, test accuracy 45.80 %, parameters 5,406 (dense 5,453 + 3 FN gains)
    exported: a plain MLP 196-300-100-5, test accuracy 77.60 % (the run's last epoch: 77.60 %)
    parameters: dense 89,705, exported 89,705, factorized W' 89,668
"""
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from numpy_dlra.data.datasets import load_embedded
from numpy_dlra.data.own import from_arrays
from numpy_dlra.dlra.algorithm1 import train_step
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules
from numpy_dlra.experiments.build import build_model
from numpy_dlra.experiments.config import TrainConfig
from numpy_dlra.experiments.export import export_run
from numpy_dlra.experiments.train import make_rngs, train
from numpy_dlra.models.mlp import MLP
from numpy_dlra.nn.optim import Adam

RUN = Path("tutorial09_run")
if RUN.is_dir():  # the folder left by an earlier run of this script
    shutil.rmtree(RUN)
RUN.mkdir()

# %%
# 0. Your data as an ``.npz`` file
# --------------------------------
#
# Any arrays will do; ours come from the embedded subset that ships with the package.

x_tr, y_tr, x_te, y_te = load_embedded()  # uint8 (5000, 28, 28), (5000,), (1000, 28, 28), (1000,)


def shrink(x):  # (N, 28, 28) -> (N, 14, 14): the mean of each 2 x 2 block, kept as uint8 pixels
    return x.reshape(len(x), 14, 2, 14, 2).mean(axis=(2, 4)).round().astype(np.uint8)


keep, keep_te = y_tr < 5, y_te < 5
FILE = RUN / "mine.npz"
np.savez(FILE, x_train=shrink(x_tr[keep]), y_train=y_tr[keep], x_test=shrink(x_te[keep_te]), y_test=y_te[keep_te])
with np.load(FILE) as z:
    print(f"{FILE.name}: " + ", ".join(f"{k} {z[k].shape} {z[k].dtype}" for k in z.files)
          + f"; {len(np.unique(z['y_train']))} classes")

# %%
# 1. From the command line: ``numpy-dlra train --data FILE.npz``
# ----------------------------------------------------------------
#
# The baseline and DLRA on the file, with the network's widths taken from it: 196 inputs, 5
# classes, the paper's five hidden layers of 500. (``python -m numpy_dlra`` is the same command as
# ``numpy-dlra``.) Each run's summary.json says what it read and how it scaled it.

common = ["--data", str(FILE), "--epochs", "2", "--dtype", "float64", "--no-progress"]
for method, extra in (("baseline", []), ("dlra", ["--lambda1", "200", "--tau-cos", "1e-2", "--tau-euc", "1.0",
                                                  "--l2-on", "effective"])):
    out = RUN / f"cli-{method}"
    subprocess.run([sys.executable, "-m", "numpy_dlra", "train", "--method", method, *extra, *common,
                    "--out", str(out)], check=True, capture_output=True, text=True)
    s = json.loads((out / "summary.json").read_text())
    f = s["final"]
    shapes = " ".join(f"{d['m']}x{d['n']}" for d in f["layers"])
    print(f"numpy-dlra train --method {method}: sizes {','.join(map(str, s['config']['sizes']))}, test "
          f"{f['test_acc']:.2f} %, {f['compression']:.2f} % compression, {s['merges_total']} merges, "
          f"shapes {shapes}")
print(f"the data as the runs recorded it: {s['data']['source']}, scaling {s['data']['scaling']}, "
      f"input shape {tuple(s['data']['input_shape'])}, {s['data']['n_classes']} classes")

# %%
# 2. From Python: ``from_arrays``, ``TrainConfig`` and ``train``
# --------------------------------------------------------------
#
# The same data as arrays (no file needed: ``data="arrays"`` says the Dataset comes with the
# call), and a network of our own, 196-300-100-5. ``TrainConfig`` checks ``sizes`` against the
# arrays' width and class count when ``train`` is given them.

data = from_arrays(shrink(x_tr[keep]), y_tr[keep], shrink(x_te[keep_te]), y_te[keep_te])
sizes = (196, 300, 100, 5)
cfg = TrainConfig(method="dlra", data="arrays", sizes=sizes, epochs=3, lambda1=200.0, tau_cos=1e-2, tau_euc=1.0,
                  l2_on="effective", dtype="float64")
model, _ = build_model(cfg, rng=make_rngs(cfg.seed)["init"])
print(f"196-300-100-5: {model.param_count():,} parameters with FN's {model.n_layers} gains; "
      f"lambda1 {cfg.lambda1}, tau_cos {cfg.tau_cos}, tau_euc {cfg.tau_euc}, {cfg.epochs} epochs")
train(cfg, RUN / "python", progress=False, log=lambda msg: None, dataset=data)  # log=print: each epoch

# %%
# Reading the run folder
# ----------------------
#
# ``metrics.jsonl`` has one line per epoch, ``merges.jsonl`` one line per merge.

metrics = [json.loads(line) for line in (RUN / "python" / "metrics.jsonl").read_text().splitlines()]
merges = [json.loads(line) for line in (RUN / "python" / "merges.jsonl").read_text().splitlines()]
for rec in metrics:
    shapes = " ".join(f"{d['m']}x{d['n']}" for d in rec["layers"])
    feats = " ".join(str(d["feat"]) for d in rec["layers"][:-1])
    print(f"epoch {rec['epoch']}: test {rec['test_acc']:.2f} %, shapes {shapes} "
          f"(features {feats}), {rec['params']:,} params ({rec['compression']:.2f} %), merges {rec['merges']}")
by_axis = Counter((r["layer"], r["axis"]) for r in merges)
print(f"merges.jsonl: {len(merges)} merges; "
      + ", ".join(f"layer {l} {axis}: {c}" for (l, axis), c in sorted(by_axis.items())))
for r in merges[:6]:
    print(f"  step {r['step']:>4}  layer {r['layer']} {r['axis']}  kept {r['kept']:>3} dropped {r['dropped']:>3}  "
          f"cos {r['cos']:>7.4f}  D_euc {r['d_euc']:.4f}  shape {r['shape'][0]}x{r['shape'][1]}  "
          f"probe_change {r['probe_change']:.4f}")
dense = MLP(sizes)
last = metrics[-1]
print(f"dense 196-300-100-5 has {dense.param_count():,} parameters; DLRA's net now has {last['params']:,} "
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
ax.set(xlabel="step", ylabel="vectors fused away", title="196-300-100-5 on our own data, DLRA (merges.jsonl)")
ax.legend()
fig.tight_layout()

# %%
# 3. Your own loop: one call of ``train_step`` per batch
# ------------------------------------------------------
#
# What ``train`` does inside, spelled out on a tiny 196-24-24-5 net: the data in the run's dtype,
# the random generators (init, shuffle, dropout, noise), a ``FactorizedMLP`` with ``P = Q = I`` and
# FN on, Adam, and ``ClosestPairs`` (lambda1, Eq. 13's thresholds, the merge options). The first
# step's RaRe term uses the closest pairs of the initial W'.

small = TrainConfig(method="dlra", data="arrays", sizes=(196, 24, 24, 5), batch_size=100, epochs=1,
                    lambda1=200.0, tau_cos=0.2, tau_euc=10.0, probe_size=16, l2_on="effective", dtype="float64")
arrays = data.to(np, np.dtype(small.dtype))  # the arrays in the run's dtype, as train() does
rngs = make_rngs(small.seed)  # init, shuffle, dropout, noise
net, params = build_model(small, rng=rngs["init"])  # a FactorizedMLP: P = Q = I, FN on
opt = Adam(small.lr, small.beta1, small.beta2, small.eps)
state = opt.init(params)
pairs = ClosestPairs(net, FusionRules.from_config(small))  # lambda1, Eq. (13)'s thresholds, the merge options
pairs.refresh(params)  # the first step's RaRe term uses the closest pairs of the initial W'

# %%
# Each ``train_step`` computes loss + RaRe + L2, adds the gradient noise, takes the Adam step,
# refreshes the Grams and closest pairs, tests Eq. (13) and merges. It returns the merges it made.

perm = rngs["shuffle"].permutation(len(arrays.y_train))
n_steps = len(perm) // small.batch_size
print(f"the one-step API: train_step on 196-24-24-5 (lambda1 {small.lambda1:.0f}, tau_cos {small.tau_cos}, "
      f"tau_euc {small.tau_euc:.0f}), batch {small.batch_size}, {n_steps} steps")
print("the steps that merged:")
total = 0
for t in range(1, n_steps + 1):
    idx = perm[(t - 1) * small.batch_size:t * small.batch_size]
    # loss + RaRe + L2, gradient noise, Adam, fresh Grams and closest pairs, Eq. (13) and the merges
    r = train_step(net, params, opt, state, arrays.x_train[idx], arrays.y_train[idx], small, rngs, pairs,
                   probe=arrays.x_val[:small.probe_size])
    total += len(r.merges)
    if r.merges:
        shapes = " ".join(f"{d['m']}x{d['n']}" for d in net.layer_stats())
        counts = Counter((m["layer"], m["axis"]) for m in r.merges)
        where = ", ".join(f"layer {l} {axis} x {c}" for (l, axis), c in counts.items())
        print(f"  step {t}: loss {r.loss:.4f}, RaRe {r.rare:.4f}, merged {where}; shapes {shapes}")
acc = (net.predict(params, arrays.x_test) == arrays.y_test).mean() * 100
print(f"after {n_steps} steps: {total} merges, test accuracy {acc:.2f} %, parameters {net.param_count():,} "
      f"(dense {MLP(small.sizes).param_count():,} + 3 FN gains)")

# %%
# 4. The smaller network out: ``numpy-dlra export``
# -------------------------------------------------
#
# The DLRA run of section 2 as a plain dense MLP of the reduced widths, FN's scale, P, Q and the
# signed feature groups folded in (``numpy-dlra export RUN --out FILE.npz`` does the same). The file
# needs nothing of numpy_dlra: eight lines of NumPy run it. Three counts: the dense original, the
# exported network, and the factorized W' count the paper reports. Here the exported network is as
# large as the dense one: this run's merges fused columns of layer 3 (its longer axis), and a plain
# MLP cannot take a sum of ReLU features as one input, so layer 3 keeps all 100 inputs. Only fused
# rows (fewer features) make the plain network narrower: on the paper's square hidden layers both
# axes fuse (docs/results.md measures the exported networks of the 100-epoch runs).

meta = export_run(RUN / "python", RUN / "exported.npz", dtype="float64")
z = np.load(RUN / "exported.npz")
h = data.x_test.astype(np.float64)  # the inputs as the run saw them (uint8 / 255)
L = len(z["sizes"]) - 1
for l in range(1, L + 1):
    h = h @ z[f"W{l}"].T + z[f"b{l}"]  # (N, n_{l-1}) @ (n_{l-1}, n_l)
    if l < L:
        h = np.maximum(h, 0)
c = meta["params"]
print(f"exported: a plain MLP {'-'.join(map(str, z['sizes']))}, test accuracy "
      f"{(h.argmax(1) == data.y_test).mean() * 100:.2f} % (the run's last epoch: {last['test_acc']:.2f} %)")
print(f"parameters: dense {c['dense']:,}, exported {c['exported']:,}, factorized W' {c['factorized']:,}")
