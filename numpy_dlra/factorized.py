"""The factorized layer y = P (FN(W') Q x + b') of paper Sec. 4.1, with P and Q stored sparsely.

P (m x m') has one nonzero per row and Q (n' x n) one nonzero per column, so each is held as an
(index, scale) pair per row or column -- :class:`LayerFactors`, on the host, in float64 -- and
costs O(m + n) to apply instead of a matrix product.

Feature-space reduction (Sec. 4.3). Output i of a layer is p_i u_k (u = FN(W') Q x + b', k = its
row). For ReLU, relu(p_i u_k) = |p_i| relu(sign(p_i) u_k), so the outputs fall into groups keyed
by (k, sign p_i), each an exact multiple of one feature relu(sign u_k). The network carries one
coordinate per group (:class:`FeatureGroups`) and folds |p_i| into the next layer's Q: the
next layer reads its features through the sparse connector M = Q diag|p| (grouped), an n' x G
matrix with one entry per original unit (:func:`connector`). This is exact, for any signs.

The ops below follow the contract of :mod:`numpy_dlra.layers`; their fixed structure (index maps,
the connector) is given at construction, their trainable arrays in `params`.
"""
from dataclasses import dataclass

import numpy as np

from .backend import array_module
from .optim import scaled_add_


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


@dataclass
class FeatureGroups:
    """The reduced features of a ReLU layer (Sec. 4.3): feature g is relu(signs[g] * u[:, rows[g]]).

    rows, signs : (G,)  sorted by (row, sign +1 before -1); G lies in [m', min(m, 2 m')]
    of_unit     : (m,)  the feature that original output i is a positive multiple of (|p_i| times)
    """

    rows: np.ndarray
    signs: np.ndarray
    of_unit: np.ndarray

    @classmethod
    def of(cls, factors):
        key = 2 * factors.p_idx + (factors.p_scale < 0)
        keys, of_unit = np.unique(key, return_inverse=True)
        return cls(keys // 2, np.where(keys % 2 == 1, -1.0, 1.0), of_unit.reshape(-1))

    @property
    def size(self):
        return len(self.rows)

    def is_identity(self, m_prime):
        return self.size == m_prime and bool((self.signs > 0).all())


def connector(n_prime, factors, prev_groups=None, prev_abs_scale=None):
    """The sparse (n', G) matrix M taking the previous layer's G reduced features to this layer's Q x.

    Input unit j of this layer is output j of the previous one, = |p_j| * feature of_unit[j]; Q sends
    it to row q_idx[j] with q_scale[j]. So M[q_idx[j], of_unit[j]] += q_scale[j] |p_j| (duplicates
    summed). For the first layer (no previous groups) M is Q itself. Returns M's coordinate triplets
    and width, (rows (n,), cols (n,), vals (n,), G), or None when M is the identity.
    """
    n = len(factors.q_idx)
    if prev_groups is None:
        cols, vals, G = np.arange(n), factors.q_scale.copy(), n
    else:
        cols, vals, G = prev_groups.of_unit, factors.q_scale * prev_abs_scale, prev_groups.size
    if G == n_prime == n and (factors.q_idx == np.arange(n)).all() and (cols == np.arange(n)).all() and (vals == 1).all():
        return None
    return factors.q_idx, cols, vals, G


class Connect:
    """z = a M^T with the sparse connector M (n', G) (Q, with the previous |P| folded in).

    a: (B, G) -> z: (B, n'). Backward: da = dz M. `spec` from :func:`connector`, or None (identity).
    """

    def __init__(self, spec, n_prime, xp, dtype):
        self.identity = spec is None
        if not self.identity:
            rows, cols, vals, G = spec
            sp = _sparse(xp)
            self.M = sp.csr_matrix((xp.asarray(vals, dtype=dtype), (xp.asarray(rows), xp.asarray(cols))),
                                   shape=(n_prime, G))
            self.MT = self.M.T.tocsr()

    def forward(self, params, a, *, training=False, rng=None):
        if self.identity:
            return a, None
        return (self.M @ a.T).T, None  # (n', G) @ (G, B) -> (n', B), as (B, n')

    def backward(self, dz, cache):
        if self.identity:
            return dz, {}
        return (self.MT @ dz.T).T, {}  # (G, n') @ (n', B) -> (B, G)


def _sparse(xp):
    if xp is np:
        import scipy.sparse

        return scipy.sparse
    import cupyx.scipy.sparse  # pragma: no cover - GPU only

    return cupyx.scipy.sparse


class FNLinear:
    """Paper Eq. (15) inside Eq. (1): u = z (c W')^T + b', c = k g / ||W'||_F (FN); c = 1 without FN.

    params: W (m', n'), b (m',), and g (1,) when `k` is given. z: (B, n'); u: (B, m').
    The product is taken with W' and scaled by c afterwards, so FN costs O(B m') and no copy of W'.
    """

    def __init__(self, k=None, input_grad=True):
        self.k, self.input_grad = k, input_grad

    def forward(self, params, z, *, training=False, rng=None):
        W, b = params["W"], params["b"]
        u = z @ W.T  # (B, n') @ (n', m') -> (B, m')
        c = None
        if self.k is not None:
            c = fn_scale(W, params["g"], self.k)
            u *= u.dtype.type(c)
        u += b
        return u, (z, W, params.get("g"), c)

    def backward(self, du, cache):
        z, W, g, c = cache
        gW = du.T @ z  # (m', B) @ (B, n') -> (m', n'): dL/d(c W')
        if c is None:
            return (du @ W if self.input_grad else None), {"W": gW, "b": du.sum(axis=0)}  # (B, m') @ (m', n')
        gW, gg = fn_backward_inplace(gW, W, self.k, float(g[0]))
        grads = {"W": gW, "b": du.sum(axis=0), "g": gg}
        dz = None
        if self.input_grad:
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


def fn_backward_inplace(dY, W, k, g):
    """Eq. (15)'s backward, overwriting dY (m', n') = dL/d(c W') with dL/dW'; returns (dW', dg (1,)).

    With f = ||W'||_F and c = k g / f:  dL/dW' = c (dY - (<dY, W'> / f^2) W'),  dL/dg = k <dY, W'> / f.
    (The same as :func:`numpy_dlra.equations.frobenius_normalize_backward`, without temporaries.)
    """
    xp = array_module(W)
    inner = float(xp.dot(dY.reshape(-1), W.reshape(-1)))
    f2 = sq_norm(W)
    c = k * g / f2**0.5
    dg = xp.asarray([k * inner / f2**0.5], dtype=W.dtype)
    scaled_add_(dY, -c * inner / f2, W, b=c)
    return dY, dg


class GroupReLU:
    """f = relu(signs * u[:, rows]): the reduced ReLU features of Sec. 4.3. u: (B, m') -> f: (B, G)."""

    def __init__(self, groups, m_prime, xp, dtype):
        self.identity = groups.is_identity(m_prime)
        self.m_prime = m_prime
        if not self.identity:
            pos = groups.signs > 0
            self.rows = xp.asarray(groups.rows)
            self.signs = xp.asarray(groups.signs, dtype=dtype)
            # rows are unique within each sign, so the backward scatter needs no accumulation
            self.pos, self.neg = xp.asarray(np.flatnonzero(pos)), xp.asarray(np.flatnonzero(~pos))
            self.rows_pos, self.rows_neg = xp.asarray(groups.rows[pos]), xp.asarray(groups.rows[~pos])

    def forward(self, params, u, *, training=False, rng=None):
        xp = array_module(u)
        pre = u if self.identity else u[:, self.rows] * self.signs  # (B, G)
        f = xp.maximum(pre, 0)
        return f, f

    def backward(self, df, cache):
        d = df * (cache > 0)  # (B, G)
        if self.identity:
            return d, {}
        xp = array_module(df)
        du = xp.zeros((df.shape[0], self.m_prime), dtype=df.dtype)
        du[:, self.rows_pos] = d[:, self.pos]
        du[:, self.rows_neg] -= d[:, self.neg]
        return du, {}


class Gather:
    """y = P u for a layer without ReLU after it (the logits): y_i = p_scale[i] u[:, p_idx[i]]. (B, m') -> (B, m)."""

    def __init__(self, factors, m_prime, xp, dtype):
        m = len(factors.p_idx)
        self.identity = m == m_prime and bool((factors.p_idx == np.arange(m)).all() and (factors.p_scale == 1).all())
        self.m_prime = m_prime
        if not self.identity:
            self.P = _sparse(xp).csr_matrix(
                (xp.asarray(factors.p_scale, dtype=dtype), (xp.arange(m), xp.asarray(factors.p_idx))), shape=(m, m_prime))
            self.PT = self.P.T.tocsr()

    def forward(self, params, u, *, training=False, rng=None):
        return (u, None) if self.identity else ((self.P @ u.T).T, None)  # (m, m') @ (m', B) -> (B, m)

    def backward(self, dy, cache):
        return (dy, {}) if self.identity else ((self.PT @ dy.T).T, {})
