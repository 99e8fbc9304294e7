"""The factorized layer y = P (FN(W') Q x + b') of paper Sec. 4.1, with P and Q stored sparsely.

P (m x m') has one nonzero per row and Q (n' x n) one nonzero per column, so each is held as an
(index, scale) pair per row or column -- :class:`LayerFactors`, on the host, in float64 -- and
costs O(m + n) to apply instead of a matrix product. Merges (Eqs. 8-12, :mod:`.merge`) change P
and Q; nothing else does.

A layer of the network is four ops, after the contract of :mod:`numpy_dlra.nn.layers`:
:class:`Connect` (Q, with the previous layer's |P| folded in: :mod:`.features`), :class:`FNLinear`
(Eq. 15 inside Eq. 1), then :class:`.features.GroupReLU` for a hidden layer or :class:`Gather`
(P) for the logits. Their fixed structure (index maps, the connector) is given at construction,
their trainable arrays in `params`.
"""
from dataclasses import dataclass

import numpy as np

from ..nn.backend import array_module, sparse_module
from ..nn.fast import scaled_add_


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


class Connect:
    """z = a M^T with the sparse connector M (n', G) (Q, with the previous |P| folded in).

    a: (B, G) -> z: (B, n'). Backward: da = dz M. `spec` from :func:`connector`, or None (identity).
    """

    def __init__(self, spec, n_prime, xp, dtype):
        self.identity = spec is None
        if not self.identity:
            rows, cols, vals, G = spec
            sp = sparse_module(xp)
            self.M = sp.csr_matrix((xp.asarray(vals, dtype=dtype), (xp.asarray(rows), xp.asarray(cols))),
                                   shape=(n_prime, G))
            self.MT = self.M.T.tocsr()

    def forward(self, params, a, *, training=False, rng=None):
        if self.identity:
            return a, None
        return (self.M @ a.T).T, None  # (n', G) @ (G, B) -> (n', B), as (B, n')

    def backward(self, dz, cache, *, input_grad=True):
        if self.identity:
            return dz, {}
        return (self.MT @ dz.T).T, {}  # (G, n') @ (n', B) -> (B, G)


class FNLinear:
    """Paper Eq. (15) inside Eq. (1): u = z (c W')^T + b', c = k g / ||W'||_F (FN); c = 1 without FN.

    params: W (m', n'), b (m',), and g (1,) when `k` is given. z: (B, n'); u: (B, m').
    The product is taken with W' and scaled by c afterwards, so FN costs O(B m') and no copy of W'.
    """

    def __init__(self, k=None):
        self.k = k

    def forward(self, params, z, *, training=False, rng=None):
        W, b = params["W"], params["b"]
        u = z @ W.T  # (B, n') @ (n', m') -> (B, m')
        c = f2 = None
        if self.k is not None:
            f2 = sq_norm(W)  # ||W'||_F^2, kept for backward (one pass over W' a step instead of two)
            c = self.k * float(params["g"][0]) / f2**0.5  # = fn_scale(W, g, k)
            u *= u.dtype.type(c)
        u += b
        return u, (z, W, params.get("g"), c, f2)

    def backward(self, du, cache, *, input_grad=True):
        z, W, g, c, f2 = cache
        gW = du.T @ z  # (m', B) @ (B, n') -> (m', n'): dL/d(c W')
        if c is None:
            return (du @ W if input_grad else None), {"W": gW, "b": du.sum(axis=0)}  # (B, m') @ (m', n')
        gW, gg = fn_backward_inplace(gW, W, self.k, float(g[0]), f2)
        grads = {"W": gW, "b": du.sum(axis=0), "g": gg}
        dz = None
        if input_grad:
            dz = du @ W  # (B, m') @ (m', n') -> (B, n')
            dz *= dz.dtype.type(c)
        return dz, grads


def sq_norm(W):
    """||W||_F^2 as a Python float (one BLAS dot, no temporary). W: any contiguous array."""
    v = W.reshape(-1)
    return float(array_module(W).dot(v, v))


def fn_scale(W, g, k):
    """c = k g / ||W'||_F of Eq. (15), as a Python float (float64). W: (m', n'); g: (1,)."""
    return k * float(g[0]) / sq_norm(W) ** 0.5


def fn_backward_inplace(dY, W, k, g, f2=None):
    """Eq. (15)'s backward, overwriting dY (m', n') = dL/d(c W') with dL/dW'; returns (dW', dg (1,)).

    With f = ||W'||_F and c = k g / f:  dL/dW' = c (dY - (<dY, W'> / f^2) W'),  dL/dg = k <dY, W'> / f.
    (The same as :func:`numpy_dlra.equations.frobenius_normalize_backward`, without temporaries.)
    """
    xp = array_module(W)
    inner = float(xp.dot(dY.reshape(-1), W.reshape(-1)))
    f2 = sq_norm(W) if f2 is None else f2  # forward's ||W'||_F^2 when it has it
    c = k * g / f2**0.5
    dg = xp.asarray([k * inner / f2**0.5], dtype=W.dtype)
    scaled_add_(dY, -c * inner / f2, W, b=c)
    return dY, dg


class Gather:
    """y = P u for a layer without ReLU after it (the logits): y_i = p_scale[i] u[:, p_idx[i]]. (B, m') -> (B, m)."""

    def __init__(self, factors, m_prime, xp, dtype):
        m = len(factors.p_idx)
        self.identity = m == m_prime and bool((factors.p_idx == np.arange(m)).all() and (factors.p_scale == 1).all())
        self.m_prime = m_prime
        if not self.identity:
            self.P = sparse_module(xp).csr_matrix(
                (xp.asarray(factors.p_scale, dtype=dtype), (xp.arange(m), xp.asarray(factors.p_idx))), shape=(m, m_prime))
            self.PT = self.P.T.tocsr()

    def forward(self, params, u, *, training=False, rng=None):
        return (u, None) if self.identity else ((self.P @ u.T).T, None)  # (m, m') @ (m', B) -> (B, m)

    def backward(self, dy, cache, *, input_grad=True):
        return (dy, {}) if self.identity else ((self.PT @ dy.T).T, {})
