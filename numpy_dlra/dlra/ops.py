"""The ops of one factorized layer (paper Sec. 4.1, Eq. 15), after the contract of :mod:`numpy_dlra.nn.layers`:
``forward(params, x, *, training, rng) -> (y, cache)`` and ``backward(dy, cache, ...) -> (dx, grads)``.

A layer of the factorized network is :class:`Connect` (Q, with the previous layer's |P| folded in:
:mod:`.features`), :class:`FNLinear` (Eq. 15 inside Eq. 1), then :class:`.features.GroupReLU` for a hidden
layer or :class:`Gather` (P) for the logits. :class:`.layer.FactorizedLayer` builds them from its P and Q.
"""
import numpy as np

from ..nn.backend import array_module, sparse_module
from ..nn.fast import scaled_add_


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


FOLD = True  # FN's c folded into the backward GEMMs; False: scaled afterwards, as before issue 27 (benchmarks only)
TINY_C = 1e-30  # below this |c|, c dL/du could underflow in float32: backward takes the unfolded path


class FNLinear:
    """Paper Eq. (15) inside Eq. (1): u = z (c W')^T + b', c = k g / ||W'||_F (FN); c = 1 without FN.

    params: W (m', n'), b (m',), and g (1,) when `k` is given. z: (B, n'); u: (B, m').
    The product is taken with W' and scaled by c afterwards, so FN costs O(B m') and no copy of W'; backward
    scales du by c before its two products (:func:`fn_backward_folded`), so the gradients cost a dot and one
    y += a x over W' beyond the dense layer's.
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
        if c is None:
            gW = du.T @ z  # (m', B) @ (B, n') -> (m', n')
            return (du @ W if input_grad else None), {"W": gW, "b": du.sum(axis=0)}  # (B, m') @ (m', n')
        if abs(c) < TINY_C or not FOLD:  # a gain at or near 0: c dY would hide (or underflow) dY, which dg needs
            gW, gg = fn_backward_inplace(du.T @ z, W, self.k, float(g[0]), f2)  # (m', n') dL/d(c W')
            return (du @ W * du.dtype.type(c) if input_grad else None), {"W": gW, "b": du.sum(axis=0), "g": gg}
        du_c = du * du.dtype.type(c)  # (B, m'): dL/du scaled by c once, for both products
        gW, gg = fn_backward_folded(du_c.T @ z, W, self.k, float(g[0]), f2, c)  # (m', B) @ (B, n'): c dY
        dz = du_c @ W if input_grad else None  # (B, m') @ (m', n') -> (B, n') = dL/du (c W')
        return dz, {"W": gW, "b": du.sum(axis=0), "g": gg}


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


def fn_backward_folded(cdY, W, k, g, f2, c):
    """Eq. (15)'s backward from cdY = c dY (m', n'), c = k g / f != 0, overwritten with dL/dW'; returns (dW', dg (1,)).

    With f = ||W'||_F (f2 = f^2) and inner = <dY, W'> = <cdY, W'> / c:
        dL/dW' = c (dY - (inner / f^2) W') = cdY - (<cdY, W'> / f^2) W'    (a dot, then y += a x),
        dL/dg = k inner / f.
    The same as :func:`fn_backward_inplace` on dY (tests/test_factorized.py), with c taken into the GEMM.
    """
    xp = array_module(W)
    inner_c = float(xp.dot(cdY.reshape(-1), W.reshape(-1)))  # c <dY, W'>
    dg = xp.asarray([k * (inner_c / c) / f2**0.5], dtype=W.dtype)
    scaled_add_(cdY, -inner_c / f2, W)
    return cdY, dg


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
