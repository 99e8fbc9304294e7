"""Algorithm 1, the reference: one training step of DLRA written from the equations alone. Read this first.

Every layer l is held densely as W_l = P_l FN(W'_l) Q_l, b_l = P_l b'_l (Sec. 4.1), a :class:`DenseLayer` with
the interface of the engine's layer, and one step is

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
from dataclasses import dataclass

import numpy as np

from . import equations as eq


class DenseLayer:
    """Layer l (1-based) of L held densely: W' (m', n'), b' (m',), g (a float), k (FN's constant ||W'||_F at
    initialization), P (m, m'), Q (n', n), and Adam's moments of W', b', g: m = {"W", "b", "g"}, v likewise.

    The interface of the engine's :class:`numpy_dlra.dlra.layer.FactorizedLayer`, on arrays it owns:
    shape, fusable_axes, vectors(kind), fuse(axis, k, d), to_dense, arrays, and from_arrays (the same dict
    that both ``arrays`` give), which is all the differential test needs to set one from the other.
    """

    def __init__(self, l, n_layers, classes, W, b, g, k, P, Q, m=None, v=None):
        self.l, self.first, self.last, self.classes = l, l == 1, l == n_layers, classes
        self.W, self.b, self.g, self.k, self.P, self.Q = W, b, g, k, P, Q
        self.m = m or {"W": 0.0, "b": 0.0, "g": 0.0}
        self.v = v or {"W": 0.0, "b": 0.0, "g": 0.0}

    @classmethod
    def from_arrays(cls, a, l, n_layers, classes):
        """A layer from the dict of ``arrays()`` (either implementation's), copied."""
        cp = lambda d: {n: np.array(x, dtype=np.float64) for n, x in d.items()}  # noqa: E731
        return cls(l, n_layers, classes, a["W"].copy(), a["b"].copy(), a["g"], a["k"], a["P"].copy(), a["Q"].copy(),
                   cp(a["m"]) if "m" in a else None, cp(a["v"]) if "v" in a else None)

    def arrays(self):
        out = {"W": self.W, "b": self.b, "g": self.g, "k": self.k, "P": self.P, "Q": self.Q}
        return out | {"m": self.m, "v": self.v}

    def shape(self):
        return self.W.shape

    def fusable_axes(self):
        return eq.fusable_axes(*self.shape(), self.first, self.last, self.classes)

    def weight(self):
        """FN(W') = c W' (Eq. 15), (m', n')."""
        return eq.frobenius_normalize(self.W, self.k, self.g)

    def vectors(self, kind):
        """The network's vectors on `kind`, as columns: c W' ("cols") or (c W')^T ("rows")."""
        A = self.weight()
        return A if kind == "cols" else A.T

    def to_dense(self):
        """(P FN(W') Q (m, n), P b' (m,))."""
        return self.P @ self.weight() @ self.Q, self.P @ self.b

    def fuse(self, axis, k, d):
        """Fuse vector d into k on `axis`, Eqs. (8)-(12) corrected (:func:`equations.fuse_columns`, ``fuse_rows``),
        and carry Adam's moments: m_k <- (r m_d + m_k)/s, v_k <- (r^2 v_d + v_k)/s^2, entry d removed."""
        W = self.W
        if axis == "cols":
            r = eq.fusion_ratio(W[:, d], W[:, k], "lstsq")  # Eq. (9)
            self.W, self.Q = eq.fuse_columns(W, self.Q, k, d, "lstsq")  # Eqs. (10)-(11)
        else:
            r = eq.fusion_ratio(W[d], W[k], "lstsq")
            self.W, self.b, self.P = eq.fuse_rows(W, self.b, self.P, k, d, "lstsq")
        s = math.sqrt(r * r + 1.0)
        for name in ["W"] if axis == "cols" else ["W", "b"]:
            for moments, w_d, w_k in ((self.m, r / s, 1.0 / s), (self.v, r * r / (s * s), 1.0 / (s * s))):
                by_col = axis == "cols" and moments[name].ndim == 2
                a = (moments[name].T if by_col else moments[name]).copy()  # the merged vectors along axis 0
                a[k] = w_d * a[d] + w_k * a[k]
                a = np.delete(a, d, axis=0)
                moments[name] = np.ascontiguousarray(a.T) if by_col else a
        return r, s


@dataclass
class Net:
    """A DLRA network in dense form: its layers (layer l at index l - 1) and Adam's step count t."""

    layers: list
    t: int = 0


def forward(net, x):
    """Eqs. (1), (2), (15): h_l = ReLU(P_l (c_l W'_l Q_l h_{l-1} + b'_l)), c_l = k_l g_l / ||W'_l||_F; the
    last layer has no ReLU. x (B, n_0); returns the logits (B, C) and what backward needs."""
    hs, zs = [x], []
    for layer in net.layers:
        A = layer.weight()  # FN(W'), (m', n')
        z = (hs[-1] @ layer.Q.T @ A.T + layer.b) @ layer.P.T  # (B, n) -> (B, n') -> (B, m') -> (B, m)
        zs.append(z)
        hs.append(z if layer.last else np.maximum(z, 0.0))
    return hs[-1], (hs, zs)


def loss_and_grads(net, x, y, lambda1, lambda2):
    """Eq. (18): L = L_task + lambda1 L_RaRe + lambda2 L_L2 and its gradient in W', b', g, keyed
    (name, l), name "W", "b" or "g" and l the 0-based layer. x (B, n_0), y (B,)."""
    layers = net.layers
    L = len(layers)
    logits, (hs, zs) = forward(net, x)
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)  # softmax, (B, C)
    B = len(y)
    task = float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(B), y]))  # cross-entropy
    rare = eq.rare_loss_total([layer.W for layer in layers])  # Eq. (16)
    l2 = sum(float((layer.W * layer.W).sum()) for layer in layers) / L  # Eq. (17) on W'
    grads = {}
    dz = p.copy()
    dz[np.arange(B), y] -= 1.0
    dz /= B  # dL_task/dlogits, (B, C)
    c_tot = sum(layer.W.size for layer in layers)
    for l in reversed(range(L)):
        layer = layers[l]
        if not layer.last:
            dz = dz * (zs[l] > 0)  # ReLU'
        du = dz @ layer.P  # dL/d(c W' Q h + b'), (B, m')
        hq = hs[l] @ layer.Q.T  # Q h, (B, n')
        dA = du.T @ hq  # dL/dFN(W'), (m', n')
        dW, dg = eq.frobenius_normalize_backward(dA, layer.W, layer.k, layer.g)
        W = layer.W
        weight = W.size / (2.0 * c_tot)  # Eq. (16)'s weight of layer l
        dW = dW + lambda1 * weight * (eq.rare_grad(W) + eq.rare_grad(W.T).T) + lambda2 * 2.0 * W / L
        grads[("W", l)], grads[("b", l)], grads[("g", l)] = dW, du.sum(axis=0), np.array(dg)
        dz = du @ layer.weight() @ layer.Q  # dL/dh_{l-1}, (B, n)
    return task + lambda1 * rare + lambda2 * l2, grads


def adam(net, grads, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam (Kingma & Ba), textbook form: m <- b1 m + (1-b1) g, v <- b2 v + (1-b2) g^2,
    p <- p - lr m_hat / (sqrt(v_hat) + eps) with the bias-corrected m_hat, v_hat."""
    net.t += 1
    for (name, l), gr in grads.items():
        layer = net.layers[l]
        m = layer.m[name] * beta1 + (1 - beta1) * gr
        v = layer.v[name] * beta2 + (1 - beta2) * gr * gr
        layer.m[name], layer.v[name] = m, v
        step = lr * (m / (1 - beta1**net.t)) / (np.sqrt(v / (1 - beta2**net.t)) + eps)
        if name == "g":
            layer.g = layer.g - float(step)
        else:
            setattr(layer, name, getattr(layer, name) - step)


def closest_pair(V):
    """Eq. (7): the pair (kept k, dropped d) of columns of V with the largest |cos|, k the shorter; and the cos."""
    C = eq.cos_matrix(V)  # (n, n)
    A = np.abs(C)
    np.fill_diagonal(A, -1.0)  # the diagonal is not a pair
    i, j = divmod(int(A.argmax()), A.shape[0])
    k, d = (i, j) if np.linalg.norm(V[:, i]) <= np.linalg.norm(V[:, j]) else (j, i)
    return k, d, float(C[k, d])


def merge(layer, tau_cos=1e-4, tau_euc=1e-1):
    """Step 3 on one layer: while the closest pair on a fusable axis of c W' meets Eq. (13), fuse it
    (Eqs. 8-12, corrected). Returns [(axis, kept, dropped), ...]."""
    done = []
    while True:
        for axis in layer.fusable_axes():
            V = layer.vectors(axis)  # the network's vectors c W' (or its rows), as columns
            k, d, c = closest_pair(V)
            if eq.meets_eq13(c, eq.euclidean_distance(V, d, k), tau_cos, tau_euc):  # Eq. (13)
                break
        else:
            return done
        layer.fuse(axis, k, d)
        done.append((axis, k, d))


def train_step(net, x, y, lambda1=20.0, lambda2=0.1, lr=1e-3, tau_cos=1e-4, tau_euc=1e-1):
    """Algorithm 1, one step on the batch x (B, n_0), y (B,): steps 1-3 above. Returns (L, merges) with
    merges [(layer (1-based), axis, kept, dropped), ...] in the order they were made."""
    loss, grads = loss_and_grads(net, x, y, lambda1, lambda2)
    adam(net, grads, lr)
    merges = []
    for layer in net.layers:
        merges += [(layer.l, *m) for m in merge(layer, tau_cos, tau_euc)]
    return loss, merges
