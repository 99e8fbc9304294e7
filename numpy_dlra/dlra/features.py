"""Feature-space reduction for ReLU layers (paper Sec. 4.3): the network carries one feature per group.

Output i of a layer is p_i u_k (u = FN(W') Q x + b', k = its row of W'). For ReLU,
relu(p_i u_k) = |p_i| relu(sign(p_i) u_k), so the outputs fall into groups keyed by (k, sign p_i),
each an exact positive multiple of one feature relu(sign u_k). The network carries one coordinate
per group (:class:`FeatureGroups`, G of them, m' <= G <= min(m, 2 m')) and folds |p_i| into the
next layer's Q: the next layer reads its features through the sparse connector
M = Q diag|p| (grouped), an n' x G matrix with one entry per original unit (:func:`connector`).
This is exact for any signs. Dropout then acts on the G features (Eq. 14, :mod:`.network`).
"""
from dataclasses import dataclass

import numpy as np

from ..nn.backend import array_module


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

    def backward(self, df, cache, *, input_grad=True):
        d = df * (cache > 0)  # (B, G)
        if self.identity:
            return d, {}
        xp = array_module(df)
        du = xp.zeros((df.shape[0], self.m_prime), dtype=df.dtype)
        du[:, self.rows_pos] = d[:, self.pos]
        du[:, self.rows_neg] -= d[:, self.neg]
        return du, {}
