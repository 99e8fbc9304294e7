"""
Tutorial 02: redundancy in the rank (Sec. 3, Eqs. 3-4)
======================================================

Strict rank, soft rank, and the ``|n - m + 1|`` count. A layer ``y = f(W x + b)`` is read through
``W_hat = [W, b]`` (m x (n+1)). Its exact rank is almost always the maximum, ``min(m, n+1)``, for
random and trained weights alike: a maximal linearly independent subset (MLIS_strict, Eq. 3) says
nothing. The paper relaxes dependence with a slack xi (Eq. 4): ``W_hat a^T + xi^T = 0`` with
``||a|| = 1`` and ``||xi|| < tau``. MLIS_soft is a maximal subset of columns with no such soft
dependency, i.e. whose smallest singular value is ``>= tau`` (docs/method.md Sec. 2). When it is
smaller than ``min(m, n+1)``, the layer could be replaced by a smaller one: that gap is the
"redundancy in the rank". This script measures both on a random and on a briefly trained layer,
then checks the paper's count of dependent vectors along the longer axis,
``|n - m + 1| = |(n+1) - m|``.

What to look at: three epochs barely move the spectrum, so the soft redundancy is already there at
initialization (a square random matrix has singular values reaching toward 0); the paper's point is
that training alone does not remove it, and RaRe plus fusing (tutorials 03-05) does.
Run ``python tutorials/02_rank_redundancy.py`` from any folder, or cell by cell in Jupyter or
VS Code; the figure appears inline.

Expected output (2 cores, about 1 s)::

    a 784-64-64-10 MLP; layer 2: W_hat = [W, b] is 64 x 65, rank at most min(m, n+1) = 64
    random (He init): sigma_max 2.731, sigma_min 0.0190, MLIS_strict 64
      tau = 0.10 sigma_max: numerical rank 55, greedy MLIS_soft 48 columns
    trained 3 epochs (test accuracy 74.00 %): sigma_max 2.826, sigma_min 0.0308, MLIS_strict 64
      tau = 0.10 sigma_max: numerical rank 54, greedy MLIS_soft 46 columns
    -> strict rank is full in both; redundancy in the rank appears only with a slack
    layer 3: W_hat 10 x 65: null space of W_hat a = 0 has dimension 55 = |n - m + 1| = 55 (columns)
    a tall 64 x 30 layer: W_hat 64 x 31, dependent rows 33 = |n - m + 1| = 33 (not |n - m| + 1 = 35)
    the paper's 784-500-500-500-500-500-10 network, guaranteed dependent vectors per layer:
      layer 1: W_hat 500 x 785, at least 285 of its 785 columns dependent
      layer 2: W_hat 500 x 501, at least 1 of its 501 columns dependent
      layer 3: W_hat 500 x 501, at least 1 of its 501 columns dependent
      layer 4: W_hat 500 x 501, at least 1 of its 501 columns dependent
      layer 5: W_hat 500 x 501, at least 1 of its 501 columns dependent
      layer 6: W_hat 10 x 501, at least 491 of its 501 columns dependent
    a square W_hat carries the least guaranteed redundancy: DLRA shrinks the longer axis only
"""
import matplotlib.pyplot as plt
import numpy as np

from numpy_dlra.data.datasets import load_dataset
from numpy_dlra.models.mlp import MLP, init_params
from numpy_dlra.nn.optim import Adam

SLACK = 0.10  # tau as a fraction of sigma_max: Eq. (4)'s bound made independent of the weights' scale

# %%
# Strict and soft rank
# --------------------
#
# ``w_hat`` joins a layer's weights and bias. The strict rank is ``np.linalg.matrix_rank``; for the
# soft one, ``greedy_mlis_soft`` scans the columns in order and keeps a column if the kept set stays
# pseudo-independent (smallest singular value ``>= tau``). With ``tau = SLACK sigma_max`` the slack
# does not depend on the weights' scale.


def w_hat(params, l):
    """[W, b] of layer l: (m, n + 1)."""
    return np.concatenate([params[f"W{l}"], params[f"b{l}"][:, None]], axis=1)


def greedy_mlis_soft(A, tau):
    """A maximal subset of A's columns with no soft dependency: smallest singular value >= tau.

    Scan the columns in order, keep one if the kept set stays pseudo-independent. The set is maximal
    (no column can be added), not necessarily the largest; by interlacing its size is at most the
    number of singular values of A that are >= tau."""
    kept = []
    for j in range(A.shape[1]):
        s = np.linalg.svd(A[:, kept + [j]], compute_uv=False)
        if s[-1] >= tau:
            kept.append(j)
    return kept


def describe(name, A):
    s = np.linalg.svd(A, compute_uv=False)
    tau = SLACK * s[0]
    print(f"{name}: sigma_max {s[0]:.3f}, sigma_min {s[-1]:.4f}, MLIS_strict {np.linalg.matrix_rank(A)}")
    print(f"  tau = {SLACK:.2f} sigma_max: numerical rank {(s >= tau).sum()}, "
          f"greedy MLIS_soft {len(greedy_mlis_soft(A, tau))} columns")
    return s


# %%
# A random layer
# --------------
#
# Layer 2 of a small 784-64-64-10 MLP at He initialization: ``W_hat`` is 64 x 65.

sizes = (784, 64, 64, 10)
model = MLP(sizes)
rng_init, rng_shuffle, rng_dropout = (np.random.default_rng(s) for s in np.random.SeedSequence(0).spawn(3))
params = init_params(sizes, rng_init, np.float64)
A0 = w_hat(params, 2)
m, n1 = A0.shape
print(f"a 784-64-64-10 MLP; layer 2: W_hat = [W, b] is {m} x {n1}, rank at most min(m, n+1) = {min(m, n1)}")
s_random = describe("random (He init)", A0)

# %%
# The same layer, trained
# -----------------------
#
# Train briefly, as in tutorial 01, then look at the same layer again: the strict rank stays full,
# the soft rank stays well below it.

data = load_dataset("embedded")
opt = Adam(lr=1e-3)
state = opt.init(params)
for epoch in range(3):
    perm = rng_shuffle.permutation(len(data.y_train))
    for i in range(0, len(perm), 128):
        idx = perm[i:i + 128]
        _, _, grads = model.loss_and_grads(params, data.x_train[idx].astype(np.float64), data.y_train[idx],
                                           training=True, rng=rng_dropout)
        opt.step(params, grads, state)
acc = (model.predict(params, data.x_test.astype(np.float64)) == data.y_test).mean() * 100
s_trained = describe(f"trained 3 epochs (test accuracy {acc:.2f} %)", w_hat(params, 2))
print("-> strict rank is full in both; redundancy in the rank appears only with a slack")

# %%
# The two spectra, scaled by their largest singular value: the singular values below the dashed
# line ``tau = 0.1 sigma_max`` are the soft redundancy, before and after training.

fig, ax = plt.subplots(figsize=(6, 4))
ax.semilogy(s_random / s_random[0], "o-", ms=3, label="random (He init)")
ax.semilogy(s_trained / s_trained[0], "s-", ms=3, label="trained 3 epochs")
ax.axhline(SLACK, color="k", ls="--", lw=1, label=f"tau = {SLACK} sigma_max")
ax.set(xlabel="index i", ylabel="sigma_i / sigma_max", title="layer 2, W_hat = [W, b] (64 x 65)")
ax.legend()
fig.tight_layout()

# %%
# The count along the longer axis
# -------------------------------
#
# A wide ``W_hat`` (``n+1 > m``): its ``n+1`` columns live in ``R^m``, so at least ``(n+1) - m`` of
# them depend on the others: the solutions ``a`` of ``W_hat a^T = 0`` (Eq. 3) form a space of that
# dimension. A tall ``W_hat`` (``m > n+1``): the same holds for its rows. The +1 is the bias column,
# so along the rows the bias lowers the count by one: it is ``|n - m + 1|``, not ``|n - m| + 1``.

A3 = w_hat(params, 3)
m, n1 = A3.shape
null_dim = n1 - np.linalg.matrix_rank(A3)
print(f"layer 3: W_hat {m} x {n1}: null space of W_hat a = 0 has dimension {null_dim} = |n - m + 1| = "
      f"{abs(n1 - 1 - m + 1)} (columns)")
m, n = 64, 30
A_tall = np.concatenate([np.random.default_rng(1).standard_normal((m, n)), np.zeros((m, 1)) + 0.1], axis=1)
dependent_rows = m - np.linalg.matrix_rank(A_tall.T)
print(f"a tall {m} x {n} layer: W_hat {m} x {n + 1}, dependent rows {dependent_rows} = |n - m + 1| = "
      f"{abs(n - m + 1)} (not |n - m| + 1 = {abs(n - m) + 1})")

# %%
# The paper's network
# -------------------
#
# The same count for every layer of 784-500-500-500-500-500-10: the first and last layers carry
# hundreds of guaranteed dependent vectors, the square ones a single one.

print("the paper's 784-500-500-500-500-500-10 network, guaranteed dependent vectors per layer:")
paper = (784, 500, 500, 500, 500, 500, 10)
for l in range(1, len(paper)):
    m, n = paper[l], paper[l - 1]
    axis = "columns" if n + 1 > m else "rows"
    print(f"  layer {l}: W_hat {m} x {n + 1}, at least {abs(n - m + 1)} of its {max(m, n + 1)} {axis} dependent")
print("a square W_hat carries the least guaranteed redundancy: DLRA shrinks the longer axis only")
