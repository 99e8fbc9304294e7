"""
Tutorial 03: the RaRe loss (Sec. 4, Eqs. 5-6)
=============================================

The rank-reducing loss RaRe. Eq. (6) is the cosine matrix of W's columns,
``D_cos(i, j) = <w_i, w_j> / (|w_i| |w_j|)``. Eq. (5) is
``RaRe(W) = min over pairs of 1 - D_cos(i, j)^2``: the squared sine of the most nearly parallel
pair. Its gradient touches that pair only, and is orthogonal to both vectors, so descending RaRe
rotates the pair toward parallel (or anti-parallel) and leaves every other column exactly where it
was.

This script shows it on a small random 8 x 6 matrix with ``numpy_dlra.equations``: ``cos_matrix``,
``rare``, ``rare_grad``, a finite-difference check, plain gradient steps on RaRe, and the
alternative the paper rejected (pushing every pair at once). Run
``python tutorials/03_rare_loss.py`` from any folder, or cell by cell in Jupyter or VS Code; the
figure appears inline.

Expected output (2 cores, about 1 s)::

    W is 8 x 6; |D_cos| of its columns (Eq. 6):
      1.00 0.53 0.38 0.11 0.33 0.44
      0.53 1.00 0.05 0.10 0.14 0.21
      0.38 0.05 1.00 0.09 0.32 0.49
      0.11 0.10 0.09 1.00 0.18 0.40
      0.33 0.14 0.32 0.18 1.00 0.23
      0.44 0.21 0.49 0.40 0.23 1.00
    closest pair: columns 0 and 1, cos -0.5274; RaRe(W) = 1 - cos^2 = 0.7218 (Eq. 5)
    rows (RaRe of W^T): 0.3701
    rare_grad matches central differences: True; nonzero columns: 0, 1
    gradient orthogonal to the pair: <g_0, w_0> = 0.000000, <g_1, w_1> = 0.000000
    gradient steps on RaRe alone (step size 0.3):
      step   0: |cos| of pair (0, 1) 0.527411, RaRe 0.721837
      step   5: |cos| of pair (0, 1) 0.704341, RaRe 0.503904
      step  10: |cos| of pair (0, 1) 0.847940, RaRe 0.280998
      step  20: |cos| of pair (0, 1) 0.973307, RaRe 0.052673
      step  40: |cos| of pair (0, 1) 0.999462, RaRe 0.001076
      step  60: |cos| of pair (0, 1) 0.999990, RaRe 0.000021
    Eq. (13)'s cosine test, 1 - |cos| < 1e-4, first passes at step 49
    after 60 steps: max change of the other 4 columns 0.000000
    lengths of the pair: 4.2729 -> 4.2818, 3.1065 -> 3.1295 (second order only)
    the closest pair is still (0, 1): RaRe keeps pushing the same pair until it is merged
    every pair at once, sum of 1 - cos^2 (rejected by the paper): 6 of 6 columns move after one step
    one RaRe step moves 2 of 6 columns
    why one pair: bending every basis vector at once fights the task loss (the paper found it unstable);
    the nearest pair costs the task least, and once Eq. (13) merges it the next-closest pair is the target
"""
import matplotlib.pyplot as plt
import numpy as np

from numpy_dlra import equations as eq

# %%
# The cosine matrix (Eq. 6)
# -------------------------
#
# ``eq.cos_matrix`` of a random 8 x 6 matrix: the cosines between its 6 columns.

W = np.random.default_rng(3).standard_normal((8, 6))
C = eq.cos_matrix(W)  # (6, 6), Eq. (6)
print(f"W is {W.shape[0]} x {W.shape[1]}; |D_cos| of its columns (Eq. 6):")
for row in np.abs(C):
    print("  " + " ".join(f"{c:.2f}" for c in row))

# %%
# RaRe (Eq. 5)
# ------------
#
# The closest pair is the off-diagonal entry with the largest ``|cos|`` (smallest ``1 - cos^2``);
# RaRe is its ``1 - cos^2``. ``eq.rare(W.T)`` is the same loss on the rows.

S = 1.0 - C**2
np.fill_diagonal(S, np.inf)
i, j = sorted(np.unravel_index(S.argmin(), S.shape))
print(f"closest pair: columns {i} and {j}, cos {C[i, j]:.4f}; RaRe(W) = 1 - cos^2 = {eq.rare(W):.4f} (Eq. 5)")
print(f"rows (RaRe of W^T): {eq.rare(W.T):.4f}")

# %%
# The gradient
# ------------
#
# ``eq.rare_grad``, checked against central differences of ``eq.rare`` itself: only the pair's two
# columns are nonzero, and each is orthogonal to its own column.

g = eq.rare_grad(W)
num = np.zeros_like(W)
h = 1e-6
for idx in np.ndindex(W.shape):
    Wp, Wm = W.copy(), W.copy()
    Wp[idx] += h
    Wm[idx] -= h
    num[idx] = (eq.rare(Wp) - eq.rare(Wm)) / (2 * h)
moved = [c for c in range(W.shape[1]) if np.abs(g[:, c]).max() > 0]
print(f"rare_grad matches central differences: {np.allclose(g, num, atol=1e-7)}; "
      f"nonzero columns: {', '.join(map(str, moved))}")
print(f"gradient orthogonal to the pair: <g_{i}, w_{i}> = {g[:, i] @ W[:, i]:.6f}, "
      f"<g_{j}, w_{j}> = {g[:, j] @ W[:, j]:.6f}")

# %%
# Gradient steps on RaRe alone
# ----------------------------
#
# Plain gradient descent on RaRe alone (in training it is ``lambda1 RaRe`` added to the task loss,
# Eq. 18). The pair turns toward parallel until Eq. (13)'s cosine test passes; the other columns do
# not move, and the pair's lengths change only to second order.

lr, steps = 0.3, 60
print(f"gradient steps on RaRe alone (step size {lr}):")
V, history = W.copy(), []
for t in range(steps + 1):
    c = abs(eq.cos_matrix(V)[i, j])
    history.append(c)
    if t in (0, 5, 10, 20, 40, 60):
        print(f"  step {t:>3}: |cos| of pair ({i}, {j}) {c:.6f}, RaRe {eq.rare(V):.6f}")
    if t < steps:
        V -= lr * eq.rare_grad(V)
first = next(t for t, c in enumerate(history) if 1 - c < 1e-4)
print(f"Eq. (13)'s cosine test, 1 - |cos| < 1e-4, first passes at step {first}")
others = [c for c in range(W.shape[1]) if c not in (i, j)]
change = np.abs(V[:, others] - W[:, others]).max()
print(f"after {steps} steps: max change of the other {len(others)} columns {change:.6f}")
n0, n1 = np.linalg.norm(W[:, [i, j]], axis=0), np.linalg.norm(V[:, [i, j]], axis=0)
print(f"lengths of the pair: {n0[0]:.4f} -> {n1[0]:.4f}, {n0[1]:.4f} -> {n1[1]:.4f} (second order only)")
S = 1.0 - eq.cos_matrix(V) ** 2
np.fill_diagonal(S, np.inf)
print(f"the closest pair is still {tuple(int(a) for a in sorted(np.unravel_index(S.argmin(), S.shape)))}: "
      "RaRe keeps pushing the same pair until it is merged")

# %%
# The pair's ``|cos|`` over the steps, against Eq. (13)'s cosine threshold.

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(history)
ax.axhline(1 - 1e-4, color="k", ls="--", lw=1, label="Eq. (13): 1 - |cos| < 1e-4")
ax.set(xlabel="gradient step on RaRe", ylabel=f"|cos| of columns {i} and {j}", title="RaRe rotates one pair")
ax.legend()
fig.tight_layout()

# %%
# Why one pair
# ------------
#
# The alternative: push every pair's sine toward 0. The gradient of ``1 - cos^2`` of one pair is
# ``rare_grad`` of the two-column matrix made of that pair, so the sum over all pairs is a sum of
# those. It moves every column at once.

n = W.shape[1]
g_all = np.zeros_like(W)
for a in range(n):
    for b in range(a + 1, n):
        g_all[:, [a, b]] += eq.rare_grad(W[:, [a, b]])
print(f"every pair at once, sum of 1 - cos^2 (rejected by the paper): "
      f"{int((np.abs(g_all).max(axis=0) > 0).sum())} of {n} columns move after one step")
print(f"one RaRe step moves {len(moved)} of {n} columns")
print("why one pair: bending every basis vector at once fights the task loss (the paper found it unstable);")
print("the nearest pair costs the task least, and once Eq. (13) merges it the next-closest pair is the target")
