"""Algorithm 1, the reference: one training step of DLRA written from the equations alone. Read this first.

Every layer l is held densely as W_l = P_l FN(W'_l) Q_l, b_l = P_l b'_l (Sec. 4.1), a :class:`DenseLayer` with
the interface of the engine's layer, and one step is

    1. L = L_task + lambda2 L_L2 + lambda1 L_RaRe and its gradient              Eqs. (5), (6), (15)-(18)
    2. the Adam update of every W', b', g
    3. per layer, while the closest pair on a fusable axis meets Eq. (13): fuse   Eqs. (7)-(13)
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

    def cols(self, a):
        """An array shaped like W' with its columns as the columns of a matrix (here: itself)."""
        return a

    def uncols(self, v):
        """The inverse of :meth:`cols`."""
        return v

    def vectors(self, kind):
        """The network's vectors on `kind`, as columns: c W' ("cols") or (c W')^T ("rows")."""
        A = self.weight()
        return self.cols(A) if kind == "cols" else A.T

    def apply(self, h):
        """Eq. (1) with Eq. (15): z = P (c W' Q h + b'), h (B, n) -> z (B, m)."""
        return (h @ self.Q.T @ self.weight().T + self.b) @ self.P.T  # (B, n) -> (B, n') -> (B, m') -> (B, m)

    def backprop(self, dz, h):
        """Given dL/dz (B, m) and the input h (B, n): (dL/dh (B, n), dL/dFN(W') (m', n'), dL/db' (m',))."""
        du = dz @ self.P  # dL/d(c W' Q h + b'), (B, m')
        dA = du.T @ (h @ self.Q.T)  # (m', B) @ (B, n') -> (m', n')
        return du @ self.weight() @ self.Q, dA, du.sum(axis=0)

    def to_dense(self):
        """(P FN(W') Q (m, n), P b' (m,))."""
        return self.P @ self.weight() @ self.Q, self.P @ self.b

    def fuse(self, axis, k, d):
        """Fuse vector d into k on `axis`, Eqs. (7)-(12) corrected (:func:`equations.fuse_columns`, ``fuse_rows``),
        and carry Adam's moments: m_k <- (r m_d + m_k)/s, v_k <- (r^2 v_d + v_k)/s^2, entry d removed."""
        W = self.W
        if axis == "cols":
            V = self.cols(W)  # the columns of W' as vectors
            r = eq.fusion_ratio(V[:, d], V[:, k], "lstsq")  # Eq. (8)
            V, self.Q = eq.fuse_columns(V, self.Q, k, d, "lstsq")  # Eqs. (9), (11)
            self.W = self.uncols(V)
        else:
            r = eq.fusion_ratio(W[d], W[k], "lstsq")
            self.W, self.b, self.P = eq.fuse_rows(W, self.b, self.P, k, d, "lstsq")
        s = math.sqrt(r * r + 1.0)
        for name in ["W"] if axis == "cols" else ["W", "b"]:
            for moments, w_d, w_k in ((self.m, r / s, 1.0 / s), (self.v, r * r / (s * s), 1.0 / (s * s))):
                by_col = axis == "cols" and moments[name].ndim == 2
                a = (self.cols(moments[name]).T if by_col else moments[name]).copy()  # the merged vectors along axis 0
                a[k] = w_d * a[d] + w_k * a[k]
                a = np.delete(a, d, axis=0)
                moments[name] = self.uncols(np.ascontiguousarray(a.T)) if by_col else a
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
        z = layer.apply(hs[-1])  # (B, n) -> (B, m)
        zs.append(z)
        h = z if layer.last else np.maximum(z, 0.0)
        hs.append(layer.pool(h) if getattr(layer, "pooled", False) else h)  # 2 x 2 max pooling (a convolution's)
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
    c_tot = sum(layer.W.size for layer in layers)
    rare = sum(layer.W.size * (eq.rare(layer.cols(layer.W)) + eq.rare(layer.W.T)) for layer in layers) / (2 * c_tot)  # Eq. (16)
    l2 = sum(float((layer.W * layer.W).sum()) for layer in layers) / L  # Eq. (17) on W'
    grads = {}
    dz = p.copy()
    dz[np.arange(B), y] -= 1.0
    dz /= B  # dL_task/dlogits, (B, C)
    for l in reversed(range(L)):
        layer = layers[l]
        if getattr(layer, "pooled", False):
            dz = layer.unpool(dz, zs[l])  # through the max pooling, to the maxima
        if not layer.last:
            dz = dz * (zs[l] > 0)  # ReLU'
        dz_prev, dA, db = layer.backprop(dz, hs[l])  # dL/dh_{l-1} (B, n), dL/dFN(W') (m', n'), dL/db'
        dW, dg = eq.frobenius_normalize_backward(dA, layer.W, layer.k, layer.g)
        W = layer.W
        weight = W.size / (2.0 * c_tot)  # Eq. (16)'s weight of layer l
        rare_cols = layer.uncols(eq.rare_grad(layer.cols(W)))  # on the columns of W' as vectors
        dW = dW + lambda1 * weight * (rare_cols + eq.rare_grad(W.T).T) + lambda2 * 2.0 * W / L
        grads[("W", l)], grads[("b", l)], grads[("g", l)] = dW, db, np.array(dg)
        dz = dz_prev
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
    """Eq. (6): the pair (kept k, dropped d) of columns of V with the largest |cos|, k the shorter; and the cos."""
    C = eq.cos_matrix(V)  # (n, n)
    A = np.abs(C)
    np.fill_diagonal(A, -1.0)  # the diagonal is not a pair
    i, j = divmod(int(A.argmax()), A.shape[0])
    k, d = (i, j) if np.linalg.norm(V[:, i]) <= np.linalg.norm(V[:, j]) else (j, i)
    return k, d, float(C[k, d])


def merge(layer, tau_cos=1e-4, tau_euc=1e-1):
    """Step 3 on one layer: while the closest pair on a fusable axis of c W' meets Eq. (13), fuse it
    (Eqs. 7-12, corrected). Returns [(axis, kept, dropped), ...]."""
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


class ConvDenseLayer(DenseLayer):
    """A kh x kw "valid" convolution (stride 1) on (H, W, C) images, held densely: W = P FN(W') Q, the kernel as the
    paper's C_o x (kh kw C_i) matrix (end of Sec. 4; :mod:`numpy_dlra.dlra.conv_layer` for the two readings of a
    column). Activations are flat, (B, H W C) in (h, w, c) order; the layer reads the patches of its input through
    a table of indices and writes (B, Ho Wo C_o), then 2 x 2 max pooling when ``pooled``.

    "coord": W' (m', n'), Q (n', kh kw C); "channel": W' (m', kh kw n') in (h, w, c) order, Q (n', C) on the channels,
    so that the layer's Q over the patch is I_{kh kw} (x) Q. Takes the engine's layer's ``arrays()`` and its geometry.
    """

    def __init__(self, l, n_layers, classes, W, b, g, k, P, Q, m=None, v=None, *, kernel, image, channels, pooled=False,
                 columns="channel", axes="both"):
        super().__init__(l, n_layers, classes, W, b, g, k, P, Q, m, v)
        self.kernel, self.image, self.channels, self.pooled = tuple(kernel), tuple(image), channels, pooled
        self.columns, self.axes = columns, axes
        (H, W_), (kh, kw) = self.image, self.kernel
        self.out = (H - kh + 1, W_ - kw + 1)
        pos = np.arange(H * W_ * channels).reshape(H, W_, channels)
        self.idx = np.array([pos[i:i + kh, j:j + kw].reshape(-1) for i in range(self.out[0]) for j in range(self.out[1])])

    @classmethod
    def from_layer(cls, layer, a, n_layers, classes, channels):
        """From an engine ConvLayer (its geometry) and the dict `a` of ``arrays()``, copied."""
        base = DenseLayer.from_arrays(a, layer.l, n_layers, classes)
        return cls(layer.l, n_layers, classes, base.W, base.b, base.g, base.k, base.P, base.Q, base.m, base.v,
                   kernel=layer.kernel, image=layer.image, channels=channels, pooled=layer.pool, columns=layer.columns,
                   axes=layer.axes)

    def cols(self, a):
        """"channel": a (m', kh kw n') viewed as (m' kh kw, n'), column c every weight that reads channel c."""
        return a if self.columns == "coord" else a.reshape(-1, a.shape[1] // (self.kernel[0] * self.kernel[1]))

    def uncols(self, v):
        return v if self.columns == "coord" else v.reshape(self.P.shape[1], -1)

    def fusable_axes(self):
        if self.axes == "longer":
            return eq.fusable_axes(self.P.shape[1], self.Q.shape[0], self.first, self.last, self.classes)
        return [a for a, ok in (("cols", not self.first and self.Q.shape[0] > 1),
                                ("rows", not self.last and self.P.shape[1] > 1)) if ok]

    def to_dense(self):
        """(P FN(W') Q (C_o, kh kw C), P b' (C_o,)): the kernel as a matrix, Q over the patch."""
        return self.P @ self.weight() @ self.Q_patch(), self.P @ self.b

    def Q_patch(self):
        """Q over a patch, (n' or kh kw n', kh kw C)."""
        return self.Q if self.columns == "coord" else np.kron(np.eye(self.kernel[0] * self.kernel[1]), self.Q)

    def apply(self, h):
        """z[b, p, o] = sum_e W[o, e] patch_p(h_b)[e] + (P b')[o]: (B, H W C) -> (B, Ho Wo C_o)."""
        patches = h[:, self.idx]  # (B, Ho Wo, kh kw C)
        Wd = self.P @ self.weight() @ self.Q_patch()  # (C_o, kh kw C)
        return (patches @ Wd.T + self.P @ self.b).reshape(len(h), -1)

    def backprop(self, dz, h):
        B = len(h)
        dz = dz.reshape(B, len(self.idx), -1)  # (B, Ho Wo, C_o)
        du = dz @ self.P  # (B, Ho Wo, m')
        hq = h[:, self.idx] @ self.Q_patch().T  # (B, Ho Wo, n')
        dA = np.einsum("bpm,bpn->mn", du, hq)
        dpatch = du @ self.weight() @ self.Q_patch()  # (B, Ho Wo, kh kw C)
        dh = np.zeros_like(h)
        np.add.at(dh, (slice(None), self.idx), dpatch)  # each patch entry back to its pixel
        return dh, dA, du.sum(axis=(0, 1))

    def _windows(self, z):
        (Ho, Wo), B = self.out, len(z)
        H2, W2 = Ho // 2, Wo // 2
        img = z.reshape(B, Ho, Wo, -1)[:, :2 * H2, :2 * W2]
        return img.reshape(B, H2, 2, W2, 2, -1).transpose(0, 1, 3, 5, 2, 4).reshape(B, H2, W2, -1, 4)

    def pool(self, h):
        """2 x 2 max pooling, stride 2: (B, Ho Wo C_o) -> (B, (Ho // 2) (Wo // 2) C_o)."""
        return self._windows(h).max(axis=-1).reshape(len(h), -1)

    def unpool(self, d, z):
        """The pooling's gradient: d (B, pooled) to the first maximum of each window of relu(z) (B, Ho Wo C_o)."""
        win = self._windows(np.maximum(z, 0.0))
        B, H2, W2, C, _ = win.shape
        mask = np.zeros_like(win)
        np.put_along_axis(mask, win.argmax(axis=-1)[..., None], 1.0, axis=-1)
        g = mask * d.reshape(B, H2, W2, C, 1)
        (Ho, Wo) = self.out
        out = np.zeros((B, Ho, Wo, C))
        out[:, :2 * H2, :2 * W2] = g.reshape(B, H2, W2, C, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(B, 2 * H2, 2 * W2, C)
        return out.reshape(B, -1)
