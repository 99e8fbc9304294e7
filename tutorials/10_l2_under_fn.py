"""
Tutorial 10: Eq. (17)'s L2 term under Frobenius Normalization (Eqs. 15, 17; Sec. 5)
===================================================================================

What the L2 term does. The paper trains DLRA with ``L = L_task + lambda1 L_RaRe + lambda2 L_L2``,
lambda2 = 0.1, and Eq. (17) puts the L2 term on W', the weight that FN normalizes. This project's
reproduction found DLRA with these settings 7 points below the baseline on the full data, and FN
alone with the same L2 term as far below (docs/results.md, docs/choices.md). This script shows why,
in three steps:

1. FN's layer computes with ``c W'``, ``c = k g / ||W'||_F``: scaling W' changes nothing the
   network computes (a 784-500-500-10 net in float64, ``W'_2`` scaled by 0.1 and by 10).
2. So L2 on W' can only shrink ``||W'||``. But Adam moves every entry of W' by up to about lr a
   step, whatever its size, so the smaller W' is, the larger each step is relative to it, and the
   faster the direction of W' (all the function sees) turns.
3. FN alone (no RaRe, no merges), 6 epochs on the embedded subset, without and with the L2 term:
   ``||W'_2||_F`` falls, ``c_2`` grows, the angle by which each step turns ``W'_2`` (its direction
   is what the function sees; mean over the epoch's steps) grows with it, and the accuracy falls
   behind.

Training runs in float64, so that the run does not depend on the number of BLAS threads or the
CPU's kernels (in float32 the accuracies moved by up to 5 points between two machines; the norms and
angles in their last digit). Run ``python tutorials/10_l2_under_fn.py`` from any folder, or cell by
cell in Jupyter or VS Code; it writes nothing.

Expected output (2 cores, about 30 s)::

    FN: a 784-500-500-10 net's logits with W'_2 scaled by 0.1 and by 10 are unchanged to 1e-13: True and True
    fn, no L2 (lambda2 0)
      epoch 1: test 67.80 %, ||W'_2||_F 31.75, c_2 0.99, turn per step 0.2700 degrees
      epoch 2: test 74.50 %, ||W'_2||_F 31.84, c_2 0.99, turn per step 0.1603 degrees
      epoch 3: test 77.10 %, ||W'_2||_F 31.93, c_2 0.99, turn per step 0.1540 degrees
      epoch 4: test 79.60 %, ||W'_2||_F 32.01, c_2 0.99, turn per step 0.1527 degrees
      epoch 5: test 80.20 %, ||W'_2||_F 32.09, c_2 0.99, turn per step 0.1479 degrees
      epoch 6: test 79.40 %, ||W'_2||_F 32.17, c_2 0.99, turn per step 0.1468 degrees
    fn, L2 on W' (lambda2 0.1, Eq. 17 as printed)
      epoch 1: test 66.50 %, ||W'_2||_F 26.91, c_2 1.17, turn per step 0.2775 degrees
      epoch 2: test 71.50 %, ||W'_2||_F 21.87, c_2 1.43, turn per step 0.2131 degrees
      epoch 3: test 78.00 %, ||W'_2||_F 17.48, c_2 1.77, turn per step 0.2709 degrees
      epoch 4: test 76.40 %, ||W'_2||_F 13.90, c_2 2.19, turn per step 0.3497 degrees
      epoch 5: test 73.70 %, ||W'_2||_F 11.07, c_2 2.70, turn per step 0.4329 degrees
      epoch 6: test 73.60 %, ||W'_2||_F 8.91, c_2 3.28, turn per step 0.5467 degrees
"""
import os

# One BLAS thread unless you say otherwise: at these sizes a second thread gains little, and on a busy machine
# the threads wait for each other (set before NumPy loads OpenBLAS).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from numpy_dlra.data.datasets import load_dataset  # noqa: E402
from numpy_dlra.dlra.algorithm1 import train_step  # noqa: E402
from numpy_dlra.dlra.network import FactorizedMLP  # noqa: E402
from numpy_dlra.experiments.build import build_model  # noqa: E402
from numpy_dlra.experiments.config import TrainConfig  # noqa: E402
from numpy_dlra.experiments.train import make_rngs  # noqa: E402
from numpy_dlra.models.mlp import init_params  # noqa: E402
from numpy_dlra.nn.optim import Adam  # noqa: E402

# %%
# 1. FN makes the function independent of ``||W'||``
# --------------------------------------------------
#
# The logits of a 784-500-500-10 net with FN, in eval mode, before and after scaling ``W'_2``.

sizes = (784, 500, 500, 10)
net, params = FactorizedMLP.from_dense(init_params(sizes, np.random.default_rng(0), np.float64), sizes,
                                       dropout=0.2, fn=True)
x = np.random.default_rng(1).random((64, 784))
before = net.forward(params, x)[0]  # eval mode: (64, 10) logits
changes = []
for s in (0.1, 10.0):
    scaled = dict(params, W2=params["W2"] * s)
    changes.append(np.abs(net.forward(scaled, x)[0] - before).max())
print(f"FN: a 784-500-500-10 net's logits with W'_2 scaled by 0.1 and by 10 are unchanged to 1e-13: "
      f"{changes[0] < 1e-13} and {changes[1] < 1e-13}")


# %%
# 2. How far a step turns W'
# --------------------------
#
# ``turn(A, B)`` is the angle between W' before and after a step, as vectors: the change of
# direction, which is all the function sees.

def turn(A, B):
    """The angle in degrees between A and B as vectors: atan2(|B's part orthogonal to A|, B's part along A)."""
    along = float(np.vdot(A, B)) / float(np.vdot(A, A))
    return float(np.degrees(np.arctan2(np.linalg.norm(B - along * A), along * np.linalg.norm(A))))


# %%
# 3. FN alone, 6 epochs, without and with the L2 term
# ---------------------------------------------------
#
# Both arms get the same initialization, batches, dropout and noise. Without the term,
# ``||W'_2||_F`` stays near 32 and the turn per step settles; with it the norm falls, FN's scale
# ``c_2`` grows, each step turns W' further, and the accuracy falls behind.

EPOCHS = 6
data = load_dataset("embedded").to(np, np.dtype(np.float64))
arms = {"fn, no L2 (lambda2 0)": {},
        "fn, L2 on W' (lambda2 0.1, Eq. 17 as printed)": {"lambda2": 0.1, "l2_on": "w"}}
for name, extra in arms.items():
    cfg = TrainConfig(method="fn", data="embedded", epochs=EPOCHS, dtype="float64", **extra)
    rngs = make_rngs(cfg.seed)  # the same initialization, batches, dropout and noise for both arms
    net, params = build_model(cfg, rng=rngs["init"])
    opt = Adam(cfg.lr, cfg.beta1, cfg.beta2, cfg.eps)
    state = opt.init(params)
    n, bs = len(data.y_train), cfg.batch_size
    print(name)
    for epoch in range(1, EPOCHS + 1):
        perm = rngs["shuffle"].permutation(n)
        steps = []
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            W_before = params["W2"].copy()
            train_step(net, params, opt, state, data.x_train[idx], data.y_train[idx], cfg, rngs)
            steps.append(turn(W_before, params["W2"]))
        acc = 100 * (net.predict(params, data.x_test) == data.y_test).mean()
        f = float(np.linalg.norm(params["W2"]))  # ||W'_2||_F
        c = net.fn_k[1] * float(params["g2"][0]) / f  # FN's scale of layer 2
        print(f"  epoch {epoch}: test {acc:.2f} %, ||W'_2||_F {f:.2f}, c_2 {c:.2f}, "
              f"turn per step {np.mean(steps):.4f} degrees")
