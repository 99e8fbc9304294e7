"""
Tutorial 04: fusing two parallel vectors (Sec. 4.1, Eqs. 7-12)
==============================================================

A layer is held as ``P W' Q`` (Sec. 4.1); at the start ``P = I``, ``Q = I`` and ``W' = W``. When
two columns of W' are parallel, ``w_d = r w_k``, one of them is redundant: drop column d, scale the
kept column k by ``s = sqrt(r^2 + 1)``, and give Q's row k the dropped column's input,
``(r q_d + q_k) / s``. The layer computes the same function with one column less (``W'Q`` is
unchanged), and because the kept column now has length ``sqrt(|w_k|^2 + |w_d|^2)``, the row Gram
``W'W'^T`` and ``||W'||_F`` are unchanged too.

The paper prints Q's new row as ``(q_i + q_j r) / s`` (i dropped, j kept), which changes the
function: the Eq. (11) erratum. This script shows both numerically, then the mirror operation on
the rows of W' (``fuse_rows``: the bias of the merged row is the least-squares
``b_k <- (r b_d + b_k) / s``, exact when the biases are parallel too), with
``numpy_dlra.equations.fusion_ratio``, ``fuse_columns`` and ``fuse_rows``. Run
``python tutorials/04_fusing_vectors.py`` from any folder, or cell by cell in Jupyter or VS Code;
the figure appears inline.

Expected output (2 cores, about 1 s)::

    W is 5 x 4; column 3 = 2.5 x column 1 (exactly parallel), Q = I (4 x 4)
    |w_1| = 1.2505, |w_3| = 3.1261: keep the shorter, k = 1; drop d = 3
    Eq. (8): r = sum(w_d) / sum(w_k) = 2.5000 (least squares: 2.5000); s = sqrt(r^2 + 1) = 2.6926
    Eq. (9): kept column s w_k, length 3.3669 = sqrt(|w_k|^2 + |w_d|^2) = 3.3669
    Eq. (11), corrected: Q's row k = (r q_d + q_k) / s = [0.0000, 0.3714, 0.0000, 0.9285]
    fuse_columns: W' 5 x 3, Q 3 x 4, the same as by hand: True
    max |W'Q - W| = 0.000000  (the layer's function is unchanged)
    row Gram W'W'^T: max change 0.000000; ||W'||_F 5.1344 -> 5.1344
    Eq. (7), corrected: merged input x'_k = (r x_d + x_k) / s, on an input x: matches Q x: True
    Eq. (11) as printed, (q_d + r q_k) / s, on 6 random inputs: max output error 3.8479
    Eq. (11) corrected,  (r q_d + q_k) / s, on 6 random inputs: max output error 0.000000
    nearly parallel pair (1.0 degree apart): error of W'Q, lstsq r 0.054559 = |w_d| sin(theta) 0.054559, sum r 0.067314
    rows: W is 4 x 5; row 2 = -1.5 x row 0 and b_2 = -1.5 b_0; P = I (4 x 4)
    fuse_rows: r = -1.5000 (from the rows of W'), W' 3 x 5, b' (3,), P 4 x 3
    max |P W' - W| = 0.000000, max |P b' - b| = 0.000000
    column Gram W'^T W': max change 0.000000; ||W'||_F 4.9384 -> 4.9384
    b_2 moved by 0.3: max |P W' - W| = 0.000000, |P b' - b| = 0.1664 = the bias off (1, r): 0.1664
"""
import matplotlib.pyplot as plt
import numpy as np

from numpy_dlra import equations as eq

rng = np.random.default_rng(4)

# %%
# Two parallel columns
# --------------------
#
# Column 3 of a random 5 x 4 matrix is 2.5 times column 1. The paper keeps the shorter vector (a
# long one can grow unstable), computes the ratio r (Eq. 8) and ``s = sqrt(r^2 + 1)``, scales the
# kept column by s (Eq. 9) and gives Q's row k the corrected Eq. (11).

W = rng.standard_normal((5, 4))
W[:, 3] = 2.5 * W[:, 1]
Q = np.eye(4)
print("W is 5 x 4; column 3 = 2.5 x column 1 (exactly parallel), Q = I (4 x 4)")

i, j = 1, 3
n_i, n_j = np.linalg.norm(W[:, i]), np.linalg.norm(W[:, j])
k, d = (i, j) if n_i <= n_j else (j, i)  # the paper keeps the shorter vector (a long one can grow unstable)
print(f"|w_{i}| = {n_i:.4f}, |w_{j}| = {n_j:.4f}: keep the shorter, k = {k}; drop d = {d}")
r = eq.fusion_ratio(W[:, d], W[:, k], "sum")
s = np.sqrt(r * r + 1)
print(f"Eq. (8): r = sum(w_d) / sum(w_k) = {r:.4f} (least squares: {eq.fusion_ratio(W[:, d], W[:, k], 'lstsq'):.4f}); "
      f"s = sqrt(r^2 + 1) = {s:.4f}")
print(f"Eq. (9): kept column s w_k, length {np.linalg.norm(s * W[:, k]):.4f} = sqrt(|w_k|^2 + |w_d|^2) = "
      f"{np.hypot(n_i, n_j):.4f}")
row_k = (r * Q[d] + Q[k]) / s
print(f"Eq. (11), corrected: Q's row k = (r q_d + q_k) / s = [{', '.join(f'{v:.4f}' for v in row_k)}]")

# %%
# ``fuse_columns``, and what it preserves
# ---------------------------------------
#
# By hand: scale column k, drop column d; replace row k of Q, drop row d. ``eq.fuse_columns`` does
# the same. The function ``W'Q``, the row Gram ``W'W'^T`` and ``||W'||_F`` are unchanged, and the
# merged input is Eq. (7), corrected.

keep = [c for c in range(W.shape[1]) if c != d]
W_hand = W.copy()
W_hand[:, k] *= s
Q_hand = Q.copy()
Q_hand[k] = row_k
W_hand, Q_hand = W_hand[:, keep], Q_hand[keep]
W2, Q2 = eq.fuse_columns(W, Q, i, j, ratio="sum")
print(f"fuse_columns: W' {W2.shape[0]} x {W2.shape[1]}, Q {Q2.shape[0]} x {Q2.shape[1]}, the same as by hand: "
      f"{np.allclose(W2, W_hand) and np.allclose(Q2, Q_hand)}")
print(f"max |W'Q - W| = {np.abs(W2 @ Q2 - W @ Q).max():.6f}  (the layer's function is unchanged)")
print(f"row Gram W'W'^T: max change {np.abs(W2 @ W2.T - W @ W.T).max():.6f}; "
      f"||W'||_F {np.linalg.norm(W):.4f} -> {np.linalg.norm(W2):.4f}")
x = rng.standard_normal(4)
x_k = (r * x[d] + x[k]) / s
print(f"Eq. (7), corrected: merged input x'_k = (r x_d + x_k) / s, on an input x: matches Q x: "
      f"{np.isclose((Q2 @ x)[keep.index(k)], x_k)}")

# %%
# The four matrices before and after: column 3 of W is gone, and Q's row 1 now reads inputs 1 and 3.

fig, axes = plt.subplots(1, 4, figsize=(11, 3))
for ax, M, title in zip(axes, (W, Q, W2, Q2), ("W (5 x 4)", "Q = I", "W' (5 x 3)", "Q (3 x 4)")):
    lim = np.abs(M).max()
    ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("fusing column 3 into column 1: W'Q = W")
fig.tight_layout()

# %%
# The Eq. (11) erratum
# --------------------
#
# The printed row ``(q_i + q_j r) / s``, with i the dropped and j the kept column, is
# ``(q_d + r q_k) / s``. On random inputs it changes the layer's output; the corrected row does not.

Q_printed = Q2.copy()
Q_printed[keep.index(k)] = (Q[d] + r * Q[k]) / s
X = rng.standard_normal((6, 4))  # 6 inputs
err_printed = np.abs(X @ (W2 @ Q_printed).T - X @ W.T).max()
err_fixed = np.abs(X @ (W2 @ Q2).T - X @ W.T).max()
print(f"Eq. (11) as printed, (q_d + r q_k) / s, on 6 random inputs: max output error {err_printed:.4f}")
print(f"Eq. (11) corrected,  (r q_d + q_k) / s, on 6 random inputs: max output error {err_fixed:.6f}")

# %%
# Nearly parallel vectors
# -----------------------
#
# The merge replaces ``w_d`` by ``r w_k``; with the least-squares r the error is
# ``|w_d| sin(theta)``, and the paper's sum ratio does a little worse.

theta = np.deg2rad(1.0)
u = W[:, k] / n_i
v = rng.standard_normal(5)
v -= (v @ u) * u
v /= np.linalg.norm(v)
Wn = W.copy()
Wn[:, d] = n_j * (np.cos(theta) * u + np.sin(theta) * v)
errs = {}
for ratio in ("lstsq", "sum"):
    Wf, Qf = eq.fuse_columns(Wn, Q, i, j, ratio=ratio)
    errs[ratio] = np.linalg.norm(Wf @ Qf - Wn @ Q, 2)
print(f"nearly parallel pair (1.0 degree apart): error of W'Q, lstsq r {errs['lstsq']:.6f} = |w_d| sin(theta) "
      f"{n_j * np.sin(theta):.6f}, sum r {errs['sum']:.6f}")

# %%
# Rows: the mirror
# ----------------
#
# ``eq.fuse_rows`` works on the rows of W' (the vectors ``RaRe(W'^T)`` acts on), with ``b = P b'``.
# It keeps ``P W'``, ``P b'``, the column Gram ``W'^T W'`` and ``||W'||_F``.

Wr = rng.standard_normal((4, 5))
br = rng.standard_normal(4)
Wr[2], br[2] = -1.5 * Wr[0], -1.5 * br[0]
P = np.eye(4)
print("rows: W is 4 x 5; row 2 = -1.5 x row 0 and b_2 = -1.5 b_0; P = I (4 x 4)")
W3, b3, P3 = eq.fuse_rows(Wr, br, P, 0, 2, ratio="sum")
r_rows = eq.fusion_ratio(Wr[2], Wr[0], "sum")
print(f"fuse_rows: r = {r_rows:.4f} (from the rows of W'), W' {W3.shape[0]} x {W3.shape[1]}, b' ({b3.shape[0]},), "
      f"P {P3.shape[0]} x {P3.shape[1]}")
print(f"max |P W' - W| = {np.abs(P3 @ W3 - Wr).max():.6f}, max |P b' - b| = {np.abs(P3 @ b3 - br).max():.6f}")
print(f"column Gram W'^T W': max change {np.abs(W3.T @ W3 - Wr.T @ Wr).max():.6f}; "
      f"||W'||_F {np.linalg.norm(Wr):.4f} -> {np.linalg.norm(W3):.4f}")

# %%
# Biases that are not parallel
# ----------------------------
#
# Eq. (13) compares the rows of W' only, so the biases of a merged pair need not be parallel: the
# merged row's bias is the least-squares fit ``b_k <- (r b_d + b_k) / s``, and ``P b'`` moves by the
# part of ``(b_k, b_d)`` off the direction ``(1, r)``.

br[2] = br[2] + 0.3
W4, b4, P4 = eq.fuse_rows(Wr, br, P, 0, 2, ratio="sum")
u = np.array([1.0, r_rows]) / np.hypot(1.0, r_rows)
off = np.array([br[0], br[2]]) - (np.array([br[0], br[2]]) @ u) * u
print(f"b_2 moved by 0.3: max |P W' - W| = {np.abs(P4 @ W4 - Wr).max():.6f}, |P b' - b| = "
      f"{np.linalg.norm(P4 @ b4 - br):.4f} = the bias off (1, r): {np.linalg.norm(off):.4f}")
