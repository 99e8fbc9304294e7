"""
Tutorial 08: the fixed-rank baseline, a low-rank last layer (Sainath et al. 2013)
=================================================================================

The classic way to shrink a layer fixes its rank in advance: the last layer's m x n matrix A
becomes two trainable factors, ``y = B (C x) + b`` with B m x r and C r x n, which has ``m r + r n``
weights instead of ``m n``. Keeping fewer than a fraction p of A's weights needs
``m r + r n < p m n``, i.e. ``r < p m n / (m + n)``. (The report calls p "the fraction to reduce
by", but the inequality keeps fewer than ``p m n`` weights: it is a reduction *to* p, by
``1 - p``.) After training, the best rank-r approximation of a matrix is its truncated SVD, with
spectral error exactly ``sigma_{r+1}`` (Eckart-Young). DLRA (tutorials 03-07) finds ranks while it
trains; this baseline has to be told.

This script uses ``numpy_dlra.equations.reduction_rank`` and ``truncate_svd``, then trains a small
MLP 784-128-10 with its last layer dense or fixed-rank (``numpy_dlra.models.mlp.MLP(ranks=...)``)
on the embedded Fashion-MNIST subset, and also truncates the trained dense layer after the fact.
What to look at: up to the break-even rank 9 the factors cost little accuracy, below it accuracy
falls fast in this short budget (the report, training to convergence on MNIST, found rank 4
enough); and training at a rank beats truncating a trained dense layer, whose spectrum is still
flat here. Run ``python tutorials/08_fixed_rank.py`` from any folder, or cell by cell in Jupyter or
VS Code; the figure appears inline.

Expected output (2 cores, about 1 s)::

    reduction_rank(m, n, p): the largest r with m r + r n < p m n
      10 x 500, p = 1.0: r = 9 (bound 9.80), B C keeps 4590 of 5000 weights
      10 x 500, p = 0.4: r = 3 (bound 3.92), B C keeps 1530 of 5000 weights
      100 x 512, p = 0.6: r = 50 (bound 50.20), B C keeps 30600 of 51200 weights
      500 x 500, p = 1.0: r = 249 (bound 250.00), B C keeps 249000 of 250000 weights
    truncate_svd on a random 30 x 20 matrix: ||W - B C||_2 = sigma_{r+1}
      r =  1: spectral error 8.8397 = sigma_2 8.8397, Frobenius error 22.7501
      r =  5: spectral error 6.5208 = sigma_6 6.5208, Frobenius error 16.4824
      r = 10: spectral error 4.7164 = sigma_11 4.7164, Frobenius error 10.0623
    MLP 784-128-10, 3 epochs each (batch 256) on the embedded subset; the last layer is 10 x 128
      rank    last-layer weights   parameters   test accuracy
      dense                 1280       101770          74.30 %
          9                 1242       101732          74.70 %
          4                  552       101042          68.80 %
          2                  276       100766          36.90 %
          1                  138       100628          19.40 %
    the trained dense last layer: singular values 1.77 1.68 1.65 1.60 1.51 1.45 1.36 1.34 1.22 1.14
    its truncated SVD, no retraining: rank 9 69.60 %, rank 4 52.90 %, rank 2 33.30 %, rank 1 19.90 %
"""
import matplotlib.pyplot as plt
import numpy as np

from numpy_dlra import equations as eq
from numpy_dlra.data.datasets import load_dataset
from numpy_dlra.models.mlp import MLP, init_params
from numpy_dlra.nn.optim import Adam

# %%
# The rank bound
# --------------
#
# ``eq.reduction_rank(m, n, p)`` is the largest r with ``m r + r n < p m n``.

print("reduction_rank(m, n, p): the largest r with m r + r n < p m n")
for m, n, p in ((10, 500, 1.0), (10, 500, 0.4), (100, 512, 0.6), (500, 500, 1.0)):
    r = eq.reduction_rank(m, n, p)
    print(f"  {m} x {n}, p = {p}: r = {r} (bound {p * m * n / (m + n):.2f}), "
          f"B C keeps {m * r + r * n} of {m * n} weights")

# %%
# Truncated SVD: the best rank-r approximation
# --------------------------------------------
#
# ``eq.truncate_svd(W, r)`` returns the factors B and C; the spectral error of ``B C`` is exactly
# the first singular value left out.

W = np.random.default_rng(8).standard_normal((30, 20))
sigma = np.linalg.svd(W, compute_uv=False)
print("truncate_svd on a random 30 x 20 matrix: ||W - B C||_2 = sigma_{r+1}")
for r in (1, 5, 10):
    B, C = eq.truncate_svd(W, r)
    print(f"  r = {r:>2}: spectral error {np.linalg.norm(W - B @ C, 2):.4f} = sigma_{r + 1} {sigma[r]:.4f}, "
          f"Frobenius error {np.linalg.norm(W - B @ C):.4f}")

# %%
# A rank sweep of the last layer
# ------------------------------
#
# The same MLP 784-128-10, trained 3 epochs with the same seed each time, with its 10 x 128 last
# layer dense or ``B C`` at the break-even rank 9 and below.

data = load_dataset("embedded")
x_train, x_test = data.x_train, data.x_test
sizes = (784, 128, 10)
L = len(sizes) - 1
m, n = sizes[L], sizes[L - 1]


def train(rank):
    """Train the MLP with its last layer dense (rank None) or B C of this rank, 3 epochs; same seed each time."""
    ranks = {} if rank is None else {L: rank}
    model = MLP(sizes, dropout=0.2, ranks=tuple(ranks.items()))
    rng_init, rng_shuffle, rng_dropout = (np.random.default_rng(s) for s in np.random.SeedSequence(0).spawn(3))
    params = init_params(sizes, rng_init, np.float32, ranks=ranks)
    opt = Adam(lr=1e-3)
    state = opt.init(params)
    for epoch in range(3):
        perm = rng_shuffle.permutation(len(data.y_train))
        for i in range(0, len(perm), 256):
            idx = perm[i:i + 256]
            _, _, grads = model.loss_and_grads(params, x_train[idx], data.y_train[idx], training=True, rng=rng_dropout)
            opt.step(params, grads, state)
    return model, params


def accuracy(model, params):
    return (model.predict(params, x_test) == data.y_test).mean() * 100


print(f"MLP 784-128-10, 3 epochs each (batch 256) on the embedded subset; the last layer is {m} x {n}")
print("  rank    last-layer weights   parameters   test accuracy")
sweep = []
for rank in (None, eq.reduction_rank(m, n, 1.0), 4, 2, 1):
    model, params = train(rank)
    weights = m * n if rank is None else m * rank + rank * n
    acc = accuracy(model, params)
    sweep.append((m if rank is None else rank, acc))
    if rank is None:
        dense_model, dense_params = model, params
    print(f"  {'dense' if rank is None else rank:>5} {weights:>20} {model.param_count():>12} {acc:>14.2f} %")

# %%
# After the fact
# --------------
#
# Replace the trained dense layer by its truncated SVD, with no retraining. Its spectrum is still
# flat after 3 epochs, so every rank cut costs accuracy.

sigma = np.linalg.svd(dense_params[f"W{L}"], compute_uv=False)
print(f"the trained dense last layer: singular values {' '.join(f'{s:.2f}' for s in sigma)}")
post = []
for rank in (9, 4, 2, 1):
    B, C = eq.truncate_svd(dense_params[f"W{L}"], rank)
    low = dict(dense_params, **{f"W{L}": B @ C})
    post.append((rank, accuracy(dense_model, low)))
print("its truncated SVD, no retraining: " + ", ".join(f"rank {r} {a:.2f} %" for r, a in post))

# %%
# Both sweeps: training at a fixed rank against truncating the trained dense layer.

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(*zip(*sorted(sweep)), "o-", label="trained at fixed rank (B C)")
ax.plot(*zip(*sorted(post)), "s--", label="dense, then truncated SVD")
ax.set(xlabel="rank of the last layer (10 = dense)", ylabel="test accuracy (%)", title="784-128-10, embedded subset")
ax.legend()
fig.tight_layout()
