"""One layer of the factorized network, y = P (FN(W') Q x + b') (paper Sec. 4.1), behind one interface.

:class:`FactorizedLayer` is the engine's layer: it owns P and Q (:class:`LayerFactors`, sparse), FN's constant
k, its place in the network, and the names of its trainable arrays (W', b', g) in the network's ``params``
and Adam's state; it does everything a merge or an export needs of a layer. The reference Algorithm 1
(:class:`numpy_dlra.dlra.reference.DenseLayer`, dense P and Q, written from :mod:`.equations` alone) has the
same interface, and tests/test_reference.py compares the two through it:

    shape()                               (m', n')
    fusable_axes()                        the axes that may fuse now (equations.fusable_axes)
    vectors(params, kind)                 the vectors of an axis, as the columns of a view
    fuse(params, opt_state, axis, k, d, rules) -> (r, s)
                                          Eqs. (7)-(12), corrected: W', b', P or Q, and Adam's moments
    forward(params, a, ...) / backward(d, cache, ...)
    to_dense(params), export(params)      P FN(W') Q and b = P b'; the layer of the plain MLP (Sec. 4.3 folded)
    arrays(params, opt_state)             the layer's state, dense: W', b', g, P, Q and Adam's m, v

P is held where the paper puts it, with one exception, said here once: its magnitudes |p_i| are applied
by the NEXT layer's connector (Q diag|P|, :func:`.features.connector`), because relu(p u) = |p| relu(sign(p) u)
lets the positive scale pass through the ReLU (Sec. 4.3); this layer applies P's indices and signs (the
feature groups). The last layer, with no ReLU after it, applies all of P (:class:`.ops.Gather`).

P (m x m') has one nonzero per row and Q (n' x n) one nonzero per column, so each is held as an (index,
scale) pair per row or column, on the host, in float64, and costs O(m + n) to apply instead of a matrix
product. Merges change P and Q; nothing else does.
"""
import math
from dataclasses import dataclass

import numpy as np

from ..nn.backend import array_module, to_numpy
from ..nn.layers import Dropout
from .equations import dropout_rate, fusable_axes, fusion_ratio
from .features import FeatureGroups, GroupReLU, connector
from .ops import Connect, FNLinear, Gather, fn_scale


@dataclass
class LayerFactors:
    """P and Q of one layer, one nonzero per row of P and per column of Q (host arrays).

    p_idx, p_scale : (m,)  output i reads row p_idx[i] of W', times p_scale[i]   (P[i, p_idx[i]])
    q_idx, q_scale : (n,)  input j feeds column q_idx[j] of W', times q_scale[j]  (Q[q_idx[j], j])
    """

    p_idx: np.ndarray
    p_scale: np.ndarray
    q_idx: np.ndarray
    q_scale: np.ndarray

    @classmethod
    def identity(cls, m, n):
        return cls(np.arange(m), np.ones(m), np.arange(n), np.ones(n))

    def dense_P(self, m_prime):
        """P as a dense (m, m') matrix (for tests and export)."""
        P = np.zeros((len(self.p_idx), m_prime))
        P[np.arange(len(self.p_idx)), self.p_idx] = self.p_scale
        return P

    def dense_Q(self, n_prime):
        """Q as a dense (n', n) matrix (for tests and export)."""
        Q = np.zeros((n_prime, len(self.q_idx)))
        Q[self.q_idx, np.arange(len(self.q_idx))] = self.q_scale
        return Q

    def fuse_columns(self, k, d, r, s):
        """Eq. (11), corrected, on Q: row k <- (r q_d + q_k) / s, row d removed (indices above d shift)."""
        _fuse_sparse(self.q_idx, self.q_scale, k, d, r, s)

    def fuse_rows(self, k, d, r, s):
        """The mirror on P: column k <- (r p_d + p_k) / s, column d removed."""
        _fuse_sparse(self.p_idx, self.p_scale, k, d, r, s)

    def arrays(self, l):
        return {f"p_idx{l}": self.p_idx, f"p_scale{l}": self.p_scale, f"q_idx{l}": self.q_idx, f"q_scale{l}": self.q_scale}

    @classmethod
    def from_arrays(cls, a, l):
        return cls(a[f"p_idx{l}"].astype(np.int64), a[f"p_scale{l}"].astype(np.float64),
                   a[f"q_idx{l}"].astype(np.int64), a[f"q_scale{l}"].astype(np.float64))


def _fuse_sparse(idx, scale, k, d, r, s):
    """In place on one (index, scale) pair of arrays, (n,): the entries that pointed at d now point at k
    with scale times r / s, those at k are divided by s, and the indices above d shift down by one."""
    to_d, to_k = idx == d, idx == k
    scale[to_d] *= r / s
    scale[to_k] /= s
    idx[to_d] = k
    idx[idx > d] -= 1




ROW_KIND = {"w": "rows", "wb": "rows+b"}  # the rows Eq. (13) tests and fuses, by ``row_vectors``


def _bias_least_squares(b, k, d, r, s, dt):
    b[k] = (b[d] * dt(r) + b[k]) / dt(s)  # the merged row's bias, least squares: b_k <- (r b_d + b_k)/s


def _bias_scaled(b, k, d, r, s, dt):
    b[k] *= dt(s)  # [w_k, b_k] <- s [w_k, b_k], Eq. (9) on the augmented row


BIAS = {"w": _bias_least_squares, "wb": _bias_scaled}  # the bias at a row merge, by ``row_vectors``


def _moments_carried(m, v, k, d, r, s, dt):
    if abs(r) < 1e15:
        m[k] = (m[d] * dt(r) + m[k]) / dt(s)  # exact: the merged vector's gradient is (r g_d + g_k)/s
        v[k] = (v[d] * dt(r * r) + v[k]) / dt(s * s)  # its analogue for the squares
    else:  # a kept vector near zero: r^2 would overflow float32; the same with the weights r/s, 1/s <= 1
        m[k] = m[d] * dt(r / s) + m[k] * dt(1 / s)
        v[k] = v[d] * dt((r / s) ** 2) + v[k] * dt(1 / (s * s))


def _moments_reset(m, v, k, d, r, s, dt):
    m[k], v[k] = 0, 0


MOMENTS = {"carry": _moments_carried, "reset": _moments_reset}  # Adam's moments at a merge, by ``adam_merge``


class FactorizedLayer:
    """Layer l (1-based) of L: P (m x m'), FN(W') (m' x n'), Q (n' x n); see the module doc for the interface.

    factors : LayerFactors (P, Q);  k : FN's constant ||W'||_F at initialization, or None (no FN)
    classes : the network's output width (the last layer's columns never fuse below it)
    keys    : the names of this layer's arrays in params, grads and Adam's m and v: {"W": "W3", "b": "b3", "g": "g3"}
    """

    def __init__(self, l, n_layers, factors, k=None, classes=1):
        self.l, self.first, self.last = l, l == 1, l == n_layers
        self.factors, self.k, self.classes = factors, k, classes
        self.keys = {"W": f"W{l}", "b": f"b{l}"} | ({"g": f"g{l}"} if k is not None else {})

    # --- shape and which axes ---------------------------------------------------------------------------------
    def shape(self):
        """(m'_l, n'_l): every row and column of W' is read by at least one output and input."""
        return int(self.factors.p_idx.max()) + 1, int(self.factors.q_idx.max()) + 1

    def fusable_axes(self):
        return fusable_axes(*self.shape(), self.first, self.last, self.classes)

    def n_weights(self):
        """The entries of W' (m' n' here; a convolution's W' has more entries than m' times its columns)."""
        m, n = self.shape()
        return m * n

    def view(self, a, axis):
        """An array shaped like W' (W' itself, its gradient or Adam's moments) with the vectors of `axis` as the
        columns of a view: "cols", a itself (m', n'); "rows", a^T (n', m')."""
        return a if axis == "cols" else a.T

    def drop(self, a, d, axis):
        """An array shaped like W' without vector d of `axis` ("cols" or "rows"), fresh and contiguous."""
        return _delete(a, d, 1 if axis == "cols" else 0)

    def vectors(self, params, kind):
        """The vectors compared on `kind`, as the columns of a (view of a) matrix: "cols": W' (m', n');
        "rows": W'^T (n', m'); "rows+b": [W', b']^T (n'+1, m')."""
        W = params[self.keys["W"]]
        if kind in ("cols", "rows"):
            return self.view(W, kind)
        return array_module(W).concatenate([W, params[self.keys["b"]][:, None]], axis=1).T

    def c_fn(self, params):
        """FN's scale c = k g / ||W'||_F (Eq. 15), or 1.0 without FN."""
        return 1.0 if self.k is None else fn_scale(params[self.keys["W"]], params[self.keys["g"]], self.k)

    def params_of(self, params):
        """This layer's arrays, keyed as the ops take them ("W", "b", and "g" with FN)."""
        return {k: params[v] for k, v in self.keys.items()}

    # --- a merge: Eqs. (7)-(12) -------------------------------------------------------------------------------
    def fuse(self, params, opt_state, axis, k, d, rules):
        """Fuse vector d into k on `axis` ("cols" or "rows"), Eqs. (7)-(12) corrected; returns (r, s).

        r of Eq. (8) comes from the compared vectors (``fuse_ratio``; with "sum" and a kept vector whose
        entries sum to (nearly) 0, where the paper's estimator is undefined, least squares), s = sqrt(r^2+1).
        Columns: W' (m', n') loses column d and column k becomes s w_k (Eq. 9); Q loses row d, row k
        becomes (r q_d + q_k)/s (Eq. 11, corrected). Rows: W' loses row d, row k becomes s w_k; b' loses
        entry d, b_k by :data:`BIAS`; P loses column d, column k becomes (r p_d + p_k)/s. Adam's m and v
        lose the same entries, the kept ones set by :data:`MOMENTS`. Call :meth:`build` (the network's
        ``rebuild``) afterwards.
        """
        cols = axis == "cols"
        V = self.vectors(params, "cols" if cols else ROW_KIND[rules.row_vectors])  # the compared vectors, as columns
        w_d, w_k = to_numpy(V[:, d]).astype(np.float64), to_numpy(V[:, k]).astype(np.float64)  # two vectors, host
        ratio = rules.fuse_ratio
        if ratio == "sum" and abs(w_k.sum()) <= 1e-6 * np.abs(w_k).sum():
            ratio = "lstsq"  # the paper's sum(w_d)/sum(w_k) is undefined (or unstable) here; the pair passed Eq. (13)
        r = fusion_ratio(w_d, w_k, ratio)  # Eq. (8)
        s = math.sqrt(r * r + 1.0)
        for name in [self.keys["W"]] if cols else [self.keys["W"], self.keys["b"]]:
            p, m, v = params[name], opt_state["m"][name], opt_state["v"][name]
            if p.ndim == 1:  # b': its entries are the rows
                p_, m_, v_, drop = p, m, v, lambda a: _delete(a, d, 0)  # noqa: E731
            else:  # views with the merged vectors along axis 0
                p_, m_, v_ = (self.view(a, axis).T for a in (p, m, v))
                drop = lambda a: self.drop(a, d, axis)  # noqa: E731
            dt = p.dtype.type
            if p.ndim == 1:  # b'
                BIAS[rules.row_vectors](p_, k, d, r, s, dt)
            else:
                p_[k] *= dt(s)  # Eq. (9): the kept vector scaled by s
            MOMENTS[rules.adam_merge](m_, v_, k, d, r, s, dt)
            params[name] = drop(p)
            opt_state["m"][name], opt_state["v"][name] = drop(m), drop(v)
        (self.factors.fuse_columns if cols else self.factors.fuse_rows)(k, d, r, s)  # Eq. (11) on Q, or its mirror on P
        return r, s

    # --- forward and backward ---------------------------------------------------------------------------------
    def build(self, prev, m_full, r0, xp, dtype):
        """Derive the ops from P and Q (after construction and after every merge): the feature groups (Sec. 4.3),
        the connector from the previous layer `prev` (None for the first), FN linear, then grouped ReLU and
        dropout at the decayed rate of Eq. (14) (a hidden layer of `m_full` dense units, initial rate r0), or the
        gather by P (the last layer)."""
        f, (mp, np_) = self.factors, self.shape()
        self.groups = None if self.last else FeatureGroups.of(f)
        self.pq_weights = _pq_weights(f, mp, np_, xp, dtype)
        conn = Connect(connector(np_, f, *(() if prev is None else (prev.groups, np.abs(prev.factors.p_scale)))),
                       np_, xp, dtype)
        lin = FNLinear(self.k)
        if self.last:
            act, drop = Gather(f, mp, xp, dtype), None
        else:
            act = GroupReLU(self.groups, mp, xp, dtype)
            drop = Dropout(dropout_rate(self.groups.size, m_full, r0))  # Eq. (14)
        self.ops = (conn, lin, act, drop)

    def forward(self, params, a, *, training=False, rng=None):
        """a (B, G_{l-1}) -> the features (B, G_l), or the logits (B, m) of the last layer; and the cache."""
        conn, lin, act, drop = self.ops
        z, _ = conn.forward({}, a)  # (B, n'_l)
        u, c_lin = lin.forward(self.params_of(params), z)  # (B, m'_l)
        a, c_act = act.forward({}, u)  # (B, G_l) features, or (B, m_L) logits
        c_drop = None
        if drop is not None:
            a, c_drop = drop.forward({}, a, training=training, rng=rng)
        return a, (c_lin, c_act, c_drop)

    def backward(self, d, cache, *, input_grad=True):
        """(dL/da_{l-1} or None, the gradients of this layer's arrays keyed as in params)."""
        conn, lin, act, drop = self.ops
        c_lin, c_act, c_drop = cache
        if drop is not None:
            d, _ = drop.backward(d, c_drop)
        d, _ = act.backward(d, c_act)
        d, g = lin.backward(d, c_lin, input_grad=input_grad)
        if input_grad:
            d, _ = conn.backward(d, None)
        return d, {self.keys[k]: v for k, v in g.items()}

    # --- dense forms ------------------------------------------------------------------------------------------
    def weight(self, params):
        """c W' (FN(W'), Eq. 15) in float64 NumPy, (m', n')."""
        W = to_numpy(params[self.keys["W"]]).astype(np.float64)
        if self.k is not None:
            W = W * fn_scale(W, to_numpy(params[self.keys["g"]]).astype(np.float64), self.k)
        return W

    def to_dense(self, params):
        """(W, b) = (P FN(W') Q (m, n), P b' (m,)), float64 NumPy."""
        f, (mp, np_) = self.factors, self.shape()
        P, Q = f.dense_P(mp), f.dense_Q(np_)
        return P @ self.weight(params) @ Q, P @ to_numpy(params[self.keys["b"]]).astype(np.float64)  # (m, m')(m', n')(n', n)

    def export(self, params, prev):
        """This layer of the plain MLP (see FactorizedMLP.export): (W_l (G_l, G_{l-1}), b_l (G_l,)), float64."""
        f, (mp, np_) = self.factors, self.shape()
        W = self.weight(params)  # c W', (m', n')
        spec = connector(np_, f, *(() if prev is None else (prev.groups, np.abs(prev.factors.p_scale))))
        if spec is not None:
            rows, cols, vals, G = spec
            M = np.zeros((np_, G))
            np.add.at(M, (rows, cols), vals)  # duplicates summed, as the sparse connector does
            W = W @ M  # (m', n') @ (n', G_{l-1}) -> (m', G_{l-1})
        b = to_numpy(params[self.keys["b"]]).astype(np.float64)
        if self.last:
            P = f.dense_P(mp)
            return P @ W, P @ b  # (m, m') @ (m', G_{L-1}) -> (m, G_{L-1})
        g = self.groups
        return g.signs[:, None] * W[g.rows], g.signs * b[g.rows]  # (G_l, G_{l-1})

    def arrays(self, params, opt_state=None):
        """The layer's state, dense, in float64 NumPy: W' (m', n'), b' (m',), g (a float, or None), P (m, m'),
        Q (n', n), and with `opt_state` Adam's moments {"m": {"W", "b", "g"}, "v": {...}}."""
        f, (mp, np_) = self.factors, self.shape()
        host = lambda a: to_numpy(a).astype(np.float64)  # noqa: E731
        out = {"W": host(params[self.keys["W"]]), "b": host(params[self.keys["b"]]),
               "g": float(host(params[self.keys["g"]])[0]) if self.k is not None else None,
               "k": self.k, "P": f.dense_P(mp), "Q": f.dense_Q(np_)}
        if opt_state is not None:
            for mom in ("m", "v"):
                out[mom] = {n: host(opt_state[mom][key]).reshape(() if n == "g" else -1 if n == "b" else out["W"].shape)
                            for n, key in self.keys.items()}
        return out

    # --- size accounting ----------------------------------------------------------------------------------------
    def stats(self, m_full):
        """m' (outputs of W'), n' (inputs of W'), feat (the reduced feature dim G; m for the last layer)."""
        mp, np_ = self.shape()
        return {"m": mp, "n": np_, "feat": m_full if self.last else self.groups.size}

    def param_count(self):
        """W', b' and, with FN, the gain g. P and Q are not trainable and not counted (Sec. 4.1)."""
        return self.n_weights() + self.shape()[0] + (1 if self.k is not None else 0)


def _pq_weights(factors, m_prime, n_prime, xp, dtype):
    """(a (m',), b (n',)) with a_k = sum of p_i^2 over the outputs i reading row k of W', b_j the same for the
    inputs feeding column j through Q: ||P W' Q||_F^2 = sum_kj a_k b_j W'_kj^2. None while all are 1, which
    merges preserve from P = Q = I ((r^2 + 1) / s^2 = 1; to rounding, hence the 1e-12)."""
    a = np.bincount(factors.p_idx, factors.p_scale**2, minlength=m_prime)
    b = np.bincount(factors.q_idx, factors.q_scale**2, minlength=n_prime)
    if np.abs(a - 1).max() < 1e-12 and np.abs(b - 1).max() < 1e-12:
        return None
    return xp.asarray(a, dtype=dtype), xp.asarray(b, dtype=dtype)


def _delete(a, d, axis):
    """`a` without index d along `axis`, as a fresh contiguous array."""
    xp = array_module(a)
    keep = xp.ones(a.shape[axis], dtype=bool)
    keep[d] = False
    return xp.ascontiguousarray(xp.compress(keep, a, axis=axis))
