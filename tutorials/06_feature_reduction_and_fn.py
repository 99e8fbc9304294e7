"""
Tutorial 06: feature reduction and Frobenius Normalization (Secs. 4.3, 4.5, Eqs. 14-15)
=======================================================================================

Feature-space reduction (Sec. 4.3, Eq. 14): after rows of W' have been fused, several outputs of a
layer read the same row k of W', each with its own factor ``p_i`` of P: output i is ``p_i u_k``.
For ReLU, ``relu(p u) = |p| relu(sign(p) u)``, so all outputs with the same (row, sign of p) are
positive multiples of one feature. The network carries one coordinate per group, G of them,
``m' <= G <= min(m, 2 m')``, and folds ``|p|`` into the next layer: an exact rewrite, for any signs.
Dropout then acts on G features, at the rate ``r0 G / m`` (Eq. 14). This script builds
``numpy_dlra.dlra.network.FactorizedMLP`` nets with random signed P and Q and checks them against
their dense form ``P FN(W') Q`` (``to_dense``).

It then compares Frobenius Normalization (Sec. 4.5, Eq. 15), one scale for the whole matrix, with
weight normalization, one scale per row: FN keeps every angle between columns and between rows;
weight normalization keeps the row angles but bends the columns, which are what RaRe and Eq. (13)
measure. Run ``python tutorials/06_feature_reduction_and_fn.py`` from any folder, or cell by cell
in Jupyter or VS Code; the figure appears inline.

Expected output (2 cores, about 1 s)::

    relu(p u) = |p| relu(sign(p) u) for p = -2.0, 0.5, 3.0: True
    one layer, m = 5 outputs reading m' = 3 rows: p_idx [0, 1, 1, 0, 2], p_scale [1.0, -2.0, 0.5, 3.0, -1.0]
      groups (row, sign): (0, +) (1, +) (1, -) (2, -); G = 4, output -> group [0, 2, 1, 0, 3]
    a 20-12-10-4 net with random signed P, Q (FN on), evaluated against its dense form P FN(W') Q:
      seed 0: shapes 6x20 9x5 4x3, G 8 9, m' <= G <= min(m, 2 m'): True, max |output - dense output| 0.000000
      seed 1: shapes 12x20 10x7 4x2, G 12 10, m' <= G <= min(m, 2 m'): True, max |output - dense output| 0.000000
      seed 2: shapes 7x20 9x1 4x2, G 9 9, m' <= G <= min(m, 2 m'): True, max |output - dense output| 0.000000
      seed 3: shapes 1x20 6x9 4x8, G 2 7, m' <= G <= min(m, 2 m'): True, max |output - dense output| 0.000000
    Eq. (14), r0 = 0.2: seed 0 dropout rates 0.1333 0.1800 = r0 G / m: True
    FN(W) = k g W / ||W||_F, k = ||W||_F at init = 6.0948, g = 1.3: ||FN(W)||_F = 7.9233 = k g
    max change of the angle between two vectors (degrees), W 6 x 5:
      Frobenius normalization: columns 0.000000, rows 0.000000
      weight normalization:    columns 26.7558, rows 0.000000
    FN after a merge: ||W'||_F unchanged (6.2824 -> 6.2824), so FN's scale c = k g / ||W'||_F does not jump
"""
import matplotlib.pyplot as plt
import numpy as np

from numpy_dlra import equations as eq
from numpy_dlra.dlra.features import FeatureGroups
from numpy_dlra.dlra.layer import LayerFactors
from numpy_dlra.dlra.network import FactorizedMLP
from numpy_dlra.models.mlp import MLP, init_params

# %%
# The identity behind the reduction
# ---------------------------------
#
# ``relu(p u) = |p| relu(sign(p) u)``: a positive factor passes through ReLU, a negative one flips
# the feature.

u = np.linspace(-2, 2, 9)
ok = all(np.allclose(np.maximum(p * u, 0), abs(p) * np.maximum(np.sign(p) * u, 0)) for p in (-2.0, 0.5, 3.0))
print(f"relu(p u) = |p| relu(sign(p) u) for p = -2.0, 0.5, 3.0: {ok}")

# %%
# Feature groups of one layer
# ---------------------------
#
# Outputs 0 and 3 read row 0 with positive factors (one group), outputs 1 and 2 read row 1 with
# opposite signs (two groups), output 4 reads row 2 with a negative factor: ``FeatureGroups`` finds
# 4 groups.

f = LayerFactors(np.array([0, 1, 1, 0, 2]), np.array([1.0, -2.0, 0.5, 3.0, -1.0]), np.arange(3), np.ones(3))
g = FeatureGroups.of(f)
print("one layer, m = 5 outputs reading m' = 3 rows: p_idx [0, 1, 1, 0, 2], p_scale [1.0, -2.0, 0.5, 3.0, -1.0]")
print("  groups (row, sign): " + " ".join(f"({r}, {'+' if s > 0 else '-'})" for r, s in zip(g.rows, g.signs))
      + f"; G = {g.size}, output -> group [{', '.join(map(str, g.of_unit))}]")


# %%
# A whole factorized net against its dense form
# ---------------------------------------------
#
# ``random_net`` builds a 20-12-10-4 ``FactorizedMLP`` with random signed P and Q, what any sequence
# of merges can produce. The reduced network, with G features per hidden layer, computes exactly
# what the plain MLP computes on ``W = P FN(W') Q``, ``b = P b'``.

def random_factors(rng, m, m_prime, n, n_prime):
    """P (m x m') and Q (n' x n) with one nonzero per row of P / column of Q, every row and column of W' used,
    random scales of random sign: what any sequence of merges can produce."""
    p_idx = rng.permutation(np.concatenate([np.arange(m_prime), rng.integers(0, m_prime, m - m_prime)]))
    q_idx = rng.permutation(np.concatenate([np.arange(n_prime), rng.integers(0, n_prime, n - n_prime)]))
    scale = lambda k: rng.uniform(0.3, 2.0, k) * rng.choice([-1.0, 1.0], k)  # noqa: E731
    return LayerFactors(p_idx, scale(m), q_idx, scale(n))


def random_net(seed, sizes):
    rng = np.random.default_rng(seed)
    model, params = FactorizedMLP.from_dense(init_params(sizes, rng, np.float64), sizes, dropout=0.2, fn=True)
    L = len(sizes) - 1
    for l in range(1, L + 1):
        m, n = sizes[l], sizes[l - 1]
        m_prime = m if l == L else int(rng.integers(1, m + 1))  # the class rows are never fused
        n_prime = n if l == 1 else int(rng.integers(1, n + 1))  # nor the input pixels
        model.layers[l - 1].factors = random_factors(rng, m, m_prime, n, n_prime)
        params[f"W{l}"] = rng.standard_normal((m_prime, n_prime))
        params[f"b{l}"] = 0.3 * rng.standard_normal(m_prime)
        params[f"g{l}"] = np.array([rng.uniform(0.5, 1.5)])
    model.rebuild()  # re-derive feature groups, connectors and dropout rates from the new P, Q
    return model, params


sizes = (20, 12, 10, 4)
x = np.random.default_rng(100).standard_normal((16, sizes[0]))
print("a 20-12-10-4 net with random signed P, Q (FN on), evaluated against its dense form P FN(W') Q:")
for seed in range(4):
    model, params = random_net(seed, sizes)
    out = model.forward(params, x)[0]  # the reduced network: G features per hidden layer
    dense_out = MLP(sizes).forward(model.to_dense(params), x)[0]  # the plain MLP on W = P FN(W') Q, b = P b'
    stats = model.layer_stats()
    bounds = all(s["m"] <= s["feat"] <= min(m, 2 * s["m"]) for s, m in zip(stats[:-1], sizes[1:]))
    shapes = " ".join(f"{s['m']}x{s['n']}" for s in stats)
    print(f"  seed {seed}: shapes {shapes}, G {' '.join(str(s['feat']) for s in stats[:-1])}, "
          f"m' <= G <= min(m, 2 m'): {bounds}, "
          f"max |output - dense output| {np.abs(out - dense_out).max():.6f}")

# %%
# Dropout on the features (Eq. 14)
# --------------------------------
#
# With G features in place of m units, the dropout rate becomes ``r0 G / m``.

model, _ = random_net(0, sizes)
rates = model.dropout_rates()
feats = [s["feat"] for s in model.layer_stats()[:-1]]
same = all(np.isclose(r, eq.dropout_rate(G, m, 0.2)) for r, G, m in zip(rates, feats, sizes[1:]))
print(f"Eq. (14), r0 = 0.2: seed 0 dropout rates {' '.join(f'{r:.4f}' for r in rates)} = r0 G / m: {same}")

# %%
# Frobenius Normalization (Eq. 15) against weight normalization
# -------------------------------------------------------------
#
# FN scales the whole matrix by one number, ``k g / ||W||_F``. Weight normalization (Salimans and
# Kingma) gives each output unit (row) its own scale ``g_i / |v_i|``.

rng = np.random.default_rng(6)
W = rng.standard_normal((6, 5))
k, gain = np.linalg.norm(W), 1.3
Wfn = eq.frobenius_normalize(W, k, gain)
print(f"FN(W) = k g W / ||W||_F, k = ||W||_F at init = {k:.4f}, g = {gain}: "
      f"||FN(W)||_F = {np.linalg.norm(Wfn):.4f} = k g")
row_gain = rng.uniform(0.5, 2.0, 6)
Wwn = W * (row_gain / np.linalg.norm(W, axis=1))[:, None]


# %%
# The angles between vectors: FN keeps them all; weight normalization keeps the rows' angles but
# bends the columns', which RaRe and Eq. (13) measure.

def angles(M):
    """The angles in degrees between the columns of M, one per pair i < j."""
    i, j = np.triu_indices(M.shape[1], 1)
    return np.degrees(np.arccos(np.clip(eq.cos_matrix(M)[i, j], -1.0, 1.0)))


def max_change(A, B):
    return np.abs(angles(A) - angles(B)).max()


print("max change of the angle between two vectors (degrees), W 6 x 5:")
print(f"  Frobenius normalization: columns {max_change(W, Wfn):.6f}, rows {max_change(W.T, Wfn.T):.6f}")
print(f"  weight normalization:    columns {max_change(W, Wwn):.4f}, rows {max_change(W.T, Wwn.T):.6f}")

fig, ax = plt.subplots(figsize=(5, 5))
ax.plot(angles(W), angles(Wfn), "o", label="Frobenius normalization")
ax.plot(angles(W), angles(Wwn), "x", label="weight normalization (per row)")
ax.plot([0, 180], [0, 180], "k--", lw=1)
ax.set(xlabel="angle between columns of W (degrees)", ylabel="after normalization (degrees)",
       title="column angles: FN keeps them, WN bends them")
ax.legend()
fig.tight_layout()

# %%
# FN after a merge
# ----------------
#
# A merge preserves ``||W'||_F`` (tutorial 04), so FN's scale does not jump when two columns fuse.

Wp = W.copy()
Wp[:, 4] = -0.8 * Wp[:, 2]
W2, _ = eq.fuse_columns(Wp, np.eye(5), 2, 4)
print(f"FN after a merge: ||W'||_F unchanged ({np.linalg.norm(Wp):.4f} -> {np.linalg.norm(W2):.4f}), "
      "so FN's scale c = k g / ||W'||_F does not jump")
