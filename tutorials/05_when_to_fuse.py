"""
Tutorial 05: when to fuse, the two tests of Eq. (13) (Sec. 4)
=============================================================

A pair is fused only when it is nearly parallel, ``1 - |D_cos| < tau_cos``, AND close,
``D_euc < tau_euc``, where ``D_euc = || w_i |w_j| / |w_i| - sign(D_cos) w_j ||``: w_i rescaled to
w_j's length, minus w_j. It equals ``|w_j| sqrt(2 (1 - |cos|))``, so the Euclidean test is a
tightening of the cosine test that grows with the vectors' length: long vectors at a small angle
are still far apart, and fusing them would move the function by a lot (the error of a merge is
``|w_d| sin(theta)``, tutorial 04).

With the paper's ``tau_cos = 1e-4`` and ``tau_euc = 0.1``, the cosine test alone admits angles up
to ``arccos(0.9999) = 0.81`` degrees, and the Euclidean test binds once the kept vector is longer
than ``0.1 / sqrt(2e-4) = 7.07``. This script tabulates pairs of varying angle and length with
``numpy_dlra.equations.meets_eq13``, ``merge_criterion`` and ``euclidean_distance``. Run
``python tutorials/05_when_to_fuse.py`` from any folder, or cell by cell in Jupyter or VS Code; the
figure appears inline.

Expected output (2 cores, about 1 s)::

    pairs in R^50: w_d = 1.5 |w_k| (cos theta u + sin theta v), w_k = |w_k| u; paper's tau_cos 1e-4, tau_euc 0.1
    cosine test alone: theta < 0.8103 degrees; Euclidean test binds for |w_k| > 7.0711
    theta (deg)  |w_k|   1-|cos| (x1e-4)   D_euc    cos test  euc test  fuse
           0.20    0.5            0.0609   0.0017        yes       yes   yes
           0.20    5.0            0.0609   0.0175        yes       yes   yes
           0.20   20.0            0.0609   0.0698        yes       yes   yes
           0.50    0.5            0.3808   0.0044        yes       yes   yes
           0.50    5.0            0.3808   0.0436        yes       yes   yes
           0.50   20.0            0.3808   0.1745        yes        no    no
           1.00    0.5            1.5230   0.0087         no       yes    no
           1.00    5.0            1.5230   0.0873         no       yes    no
           1.00   20.0            1.5230   0.3491         no        no    no
         179.50    5.0            0.3808   0.0436        yes       yes   yes
    anti-parallel pairs fuse too: the sign of D_cos flips w_j before the distance is taken
    D_euc is asymmetric: rescale w_d to |w_k| 0.0436, rescale w_k to |w_d| 0.0654 (the code uses the smaller)
    one coordinate hidden in a long vector (|w| = 100.0 in R^500, one entry off by 0.5):
      1 - |cos| = 0.1247 x 1e-4 passes the cosine test; D_euc = 0.4994 fails the Euclidean test
    merge_criterion agrees with the table on all 10 pairs: True
"""
import matplotlib.pyplot as plt
import numpy as np

from numpy_dlra import equations as eq

# %%
# Pairs of a given angle and length
# ---------------------------------
#
# ``pair(theta, length)`` is a two-column W in ``R^50``: the kept (shorter) ``w_k`` and the dropped
# ``w_d``, 1.5 times longer, at angle theta.

TAU_COS, TAU_EUC = 1e-4, 0.1  # the paper's values
m = 50
rng = np.random.default_rng(5)
u = rng.standard_normal(m)
u /= np.linalg.norm(u)
v = rng.standard_normal(m)
v -= (v @ u) * u
v /= np.linalg.norm(v)


def pair(theta_deg, length):
    """A 2-column W: column 0 the kept (shorter) w_k, column 1 the dropped w_d = 1.5 |w_k| at angle theta."""
    t = np.deg2rad(theta_deg)
    return np.column_stack([length * u, 1.5 * length * (np.cos(t) * u + np.sin(t) * v)])


# %%
# The two tests, pair by pair
# ---------------------------
#
# ``D_euc`` is taken with the dropped (longer) vector rescaled to the kept one's length, as the
# engine measures it. Small angles pass the cosine test at any length; the Euclidean test then
# rejects the long pairs.

print(f"pairs in R^{m}: w_d = 1.5 |w_k| (cos theta u + sin theta v), w_k = |w_k| u; "
      f"paper's tau_cos 1e-4, tau_euc 0.1")
print(f"cosine test alone: theta < {np.degrees(np.arccos(1 - TAU_COS)):.4f} degrees; "
      f"Euclidean test binds for |w_k| > {TAU_EUC / np.sqrt(2 * TAU_COS):.4f}")
print("theta (deg)  |w_k|   1-|cos| (x1e-4)   D_euc    cos test  euc test  fuse")
yes = {True: "yes", False: "no"}
cases = [(t, L) for t in (0.2, 0.5, 1.0) for L in (0.5, 5.0, 20.0)] + [(179.5, 5.0)]
agree = True
for t, L in cases:
    W = pair(t, L)
    c = eq.cos_matrix(W)[0, 1]
    # D_euc with the dropped (longer) vector rescaled to the kept one's length, as the engine measures it
    d_euc = eq.euclidean_distance(W, 1, 0)
    fuse = eq.meets_eq13(c, d_euc, TAU_COS, TAU_EUC)
    agree &= fuse == eq.merge_criterion(W, 1, 0, TAU_COS, TAU_EUC)
    print(f"{t:>11.2f} {L:>6.1f} {(1 - abs(c)) * 1e4:>17.4f} {d_euc:>8.4f} {yes[1 - abs(c) < TAU_COS]:>10} "
          f"{yes[d_euc < TAU_EUC]:>9} {yes[fuse]:>5}")
print("anti-parallel pairs fuse too: the sign of D_cos flips w_j before the distance is taken")

# %%
# The region of (angle, length) that fuses: below the Euclidean curve and left of the cosine line.

theta = np.linspace(0.01, 1.5, 300)
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(theta, TAU_EUC / (2 * np.sin(np.deg2rad(theta) / 2)), label="D_euc = tau_euc")
ax.axvline(np.degrees(np.arccos(1 - TAU_COS)), color="k", ls="--", label="1 - |cos| = tau_cos")
for t, L in cases[:-1]:
    W = pair(t, L)
    ok = eq.merge_criterion(W, 1, 0, TAU_COS, TAU_EUC)
    ax.plot(t, L, "o" if ok else "x", color="g" if ok else "r")
ax.set(xscale="linear", yscale="log", ylim=(0.1, 100), xlabel="angle theta (degrees)", ylabel="|w_k|",
       title="Eq. (13): fuse below both curves (o fuse, x keep)")
ax.legend()
fig.tight_layout()

# %%
# ``D_euc`` is not symmetric
# --------------------------
#
# Rescaling the longer vector to the shorter one's length gives the smaller distance.

W = pair(0.5, 5.0)
print(f"D_euc is asymmetric: rescale w_d to |w_k| {eq.euclidean_distance(W, 1, 0):.4f}, "
      f"rescale w_k to |w_d| {eq.euclidean_distance(W, 0, 1):.4f} (the code uses the smaller)")

# %%
# Why the Euclidean test
# ----------------------
#
# In high dimension one large coordinate difference hides in a cosine near 1.

n, big = 500, 100.0
a = np.full(n, big / np.sqrt(n))
b = a.copy()
b[7] += 0.5
W = np.column_stack([a, b])
c = eq.cos_matrix(W)[0, 1]
d_euc = eq.euclidean_distance(W, 1, 0)
print(f"one coordinate hidden in a long vector (|w| = {big:.1f} in R^{n}, one entry off by 0.5):")
print(f"  1 - |cos| = {(1 - abs(c)) * 1e4:.4f} x 1e-4 {'passes' if 1 - abs(c) < TAU_COS else 'fails'} the cosine "
      f"test; D_euc = {d_euc:.4f} {'passes' if d_euc < TAU_EUC else 'fails'} the Euclidean test")
print(f"merge_criterion agrees with the table on all {len(cases)} pairs: {agree}")
