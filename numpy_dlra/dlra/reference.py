"""Algorithm 1, the reference: one training step of DLRA written from the equations alone. Read this first.

Every layer l is held densely as W_l = P_l FN(W'_l) Q_l, b_l = P_l b'_l (Sec. 4.1), and one step is

    1. L = L_task + lambda2 L_L2 + lambda1 L_RaRe and its gradient              Eqs. (6), (7), (15)-(18)
    2. the Adam update of every W', b', g
    3. per layer, while the closest pair on a fusable axis meets Eq. (13): fuse   Eqs. (8)-(13)
       it (columns of W' with Q, rows of W' with P and b'), and Adam's moments

with the functions of :mod:`numpy_dlra.dlra.equations` and nothing else: the full cosine matrices,
dense P and Q, no Gram shared between the phases, no cache. It is slow (every product is dense) and
short. The engine (:func:`numpy_dlra.dlra.algorithm1.train_step`) computes the same step fast; the
test tests/test_reference.py runs both side by side and asks for the same merges at the same steps
and the same parameters to rounding.

The reference takes the engine's defaults: RaRe on every layer and axis (Eq. 16 as printed), L2 on
W' (Eq. 17 as printed), Eq. (13) read on the network's weights c W' with D_euc of the shorter vector
(docs/choices.md), rows compared as the rows of W' (the vectors RaRe acts on), r by least squares,
Adam's moments carried into the kept vector, no dropout and no gradient noise (the two random parts:
the engine's draws depend on its feature groups, Eq. 14).
"""
import math
from dataclasses import dataclass, field

import numpy as np

from . import equations as eq


@dataclass
class Net:
    """A DLRA network in dense form: per layer (index l - 1) W' (m', n'), b' (m',), g (scalar), k (FN's
    constant ||W'||_F at initialization), P (m, m'), Q (n', n); and Adam's moments m, v and step t."""

    W: list
    b: list
    g: list
    k: list
    P: list
    Q: list
    m: dict = field(default_factory=dict)  # Adam's first moments, keyed ("W", l), ("b", l), ("g", l)
    v: dict = field(default_factory=dict)  # and second moments
    t: int = 0


def forward(net, x):
    """Eqs. (1), (2), (15): h_l = ReLU(P_l (c_l W'_l Q_l h_{l-1} + b'_l)), c_l = k_l g_l / ||W'_l||_F; the
    last layer has no ReLU. x (B, n_0); returns the logits (B, C) and what backward needs."""
    hs, zs = [x], []
    for l in range(len(net.W)):
        A = eq.frobenius_normalize(net.W[l], net.k[l], net.g[l])  # FN(W'), (m', n')
        z = (hs[-1] @ net.Q[l].T @ A.T + net.b[l]) @ net.P[l].T  # (B, n) -> (B, n') -> (B, m') -> (B, m)
        zs.append(z)
        hs.append(np.maximum(z, 0.0) if l < len(net.W) - 1 else z)
    return hs[-1], (hs, zs)


def loss_and_grads(net, x, y, lambda1, lambda2):
    """Eq. (18): L = L_task + lambda1 L_RaRe + lambda2 L_L2 and its gradient in W', b', g, keyed
    ("W", l), ("b", l) and ("g", l), l the 0-based layer. x (B, n_0), y (B,)."""
    L = len(net.W)
    logits, (hs, zs) = forward(net, x)
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)  # softmax, (B, C)
    B = len(y)
    task = float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(B), y]))  # cross-entropy
    rare = eq.rare_loss_total(net.W)  # Eq. (16)
    l2 = sum(float((W * W).sum()) for W in net.W) / L  # Eq. (17) on W'
    grads = {}
    dz = p.copy()
    dz[np.arange(B), y] -= 1.0
    dz /= B  # dL_task/dlogits, (B, C)
    c_tot = sum(W.size for W in net.W)
    for l in reversed(range(L)):
        if l < L - 1:
            dz = dz * (zs[l] > 0)  # ReLU'
        du = dz @ net.P[l]  # dL/d(c W' Q h + b'), (B, m')
        hq = hs[l] @ net.Q[l].T  # Q h, (B, n')
        dA = du.T @ hq  # dL/dFN(W'), (m', n')
        dW, dg = eq.frobenius_normalize_backward(dA, net.W[l], net.k[l], net.g[l])
        W = net.W[l]
        weight = W.size / (2.0 * c_tot)  # Eq. (16)'s weight of layer l
        dW = dW + lambda1 * weight * (eq.rare_grad(W) + eq.rare_grad(W.T).T) + lambda2 * 2.0 * W / L
        grads[("W", l)], grads[("b", l)], grads[("g", l)] = dW, du.sum(axis=0), np.array(dg)
        A = eq.frobenius_normalize(W, net.k[l], net.g[l])
        dz = du @ A @ net.Q[l]  # dL/dh_{l-1}, (B, n)
    return task + lambda1 * rare + lambda2 * l2, grads


def adam(net, grads, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam (Kingma & Ba), textbook form: m <- b1 m + (1-b1) g, v <- b2 v + (1-b2) g^2,
    p <- p - lr m_hat / (sqrt(v_hat) + eps) with the bias-corrected m_hat, v_hat."""
    net.t += 1
    for key, gr in grads.items():
        m = net.m.get(key, 0.0) * beta1 + (1 - beta1) * gr
        v = net.v.get(key, 0.0) * beta2 + (1 - beta2) * gr * gr
        net.m[key], net.v[key] = m, v
        step = lr * (m / (1 - beta1**net.t)) / (np.sqrt(v / (1 - beta2**net.t)) + eps)
        kind, l = key
        if kind == "W":
            net.W[l] = net.W[l] - step
        elif kind == "b":
            net.b[l] = net.b[l] - step
        else:
            net.g[l] = net.g[l] - float(step)


def fusable_axes(net, l, classes):
    """The axes of layer l (0-based) that may fuse (docs/method.md, Table 2's shapes): the longer axis of W'
    (both when square); never the first layer's columns (the pixels), never the last layer's rows (the
    classes), the last layer's columns not below the class count."""
    m, n = net.W[l].shape
    L = len(net.W)
    axes = []
    if l > 0 and n >= m and n > (classes if l == L - 1 else 1):
        axes.append("cols")
    if l < L - 1 and m >= n and m > 1:
        axes.append("rows")
    return axes


def closest_pair(V):
    """Eq. (7): the pair (kept k, dropped d) of columns of V with the largest |cos|, k the shorter; and the cos."""
    C = eq.cos_matrix(V)  # (n, n)
    A = np.abs(C)
    np.fill_diagonal(A, -1.0)  # the diagonal is not a pair
    i, j = divmod(int(A.argmax()), A.shape[0])
    k, d = (i, j) if np.linalg.norm(V[:, i]) <= np.linalg.norm(V[:, j]) else (j, i)
    return k, d, float(C[k, d])


def merge(net, l, classes, tau_cos=1e-4, tau_euc=1e-1):
    """Step 3 on layer l: while the closest pair on a fusable axis of c W' meets Eq. (13), fuse it
    (Eqs. 8-12, corrected). Returns [(axis, kept, dropped), ...]."""
    done = []
    while True:
        for axis in fusable_axes(net, l, classes):
            A = eq.frobenius_normalize(net.W[l], net.k[l], net.g[l])  # the network's weight c W'
            V = A if axis == "cols" else A.T  # the vectors compared, as columns
            k, d, c = closest_pair(V)
            if eq.meets_eq13(c, eq.euclidean_distance(V, d, k), tau_cos, tau_euc):  # Eq. (13)
                break
        else:
            return done
        W, r = net.W[l], None
        if axis == "cols":
            r = eq.fusion_ratio(W[:, d], W[:, k], "lstsq")  # Eq. (9)
            net.W[l], net.Q[l] = eq.fuse_columns(W, net.Q[l], k, d, "lstsq")  # Eqs. (10)-(11)
        else:
            r = eq.fusion_ratio(W[d], W[k], "lstsq")
            net.W[l], net.b[l], net.P[l] = eq.fuse_rows(W, net.b[l], net.P[l], k, d, "lstsq")
        _carry_moments(net, l, axis, k, d, r)
        done.append((axis, k, d))


def _carry_moments(net, l, axis, k, d, r):
    """Adam's moments of the merged vector: m_k <- (r m_d + m_k)/s, v_k <- (r^2 v_d + v_k)/s^2, entry d removed."""
    s = math.sqrt(r * r + 1.0)
    for key in [("W", l)] if axis == "cols" else [("W", l), ("b", l)]:
        for moments, w_d, w_k in ((net.m, r / s, 1.0 / s), (net.v, r * r / (s * s), 1.0 / (s * s))):
            by_col = axis == "cols" and moments[key].ndim == 2
            a = (moments[key].T if by_col else moments[key]).copy()  # the merged vectors along axis 0
            a[k] = w_d * a[d] + w_k * a[k]
            a = np.delete(a, d, axis=0)
            moments[key] = np.ascontiguousarray(a.T) if by_col else a


def train_step(net, x, y, classes, lambda1=20.0, lambda2=0.1, lr=1e-3, tau_cos=1e-4, tau_euc=1e-1):
    """Algorithm 1, one step on the batch x (B, n_0), y (B,): steps 1-3 above. Returns (L, merges) with
    merges [(layer (1-based), axis, kept, dropped), ...] in the order they were made."""
    loss, grads = loss_and_grads(net, x, y, lambda1, lambda2)
    adam(net, grads, lr)
    merges = []
    for l in range(len(net.W)):
        merges += [(l + 1, *m) for m in merge(net, l, classes, tau_cos, tau_euc)]
    return loss, merges
