"""The Eq. (11) erratum as a property: for any W', Q, pair of columns and ratio r, the code's row of Q keeps
W' Q, and the printed one misses it by exactly (r - 1) w_k (q_d - q_k), zero only when r = 1 or q_d = q_k.

The fixed example on record (seed 0, r = 2.5) is tests/test_equations.py's
test_printed_eq11_is_wrong_and_the_corrected_form_holds; this file states the same for every input.
"""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from numpy_dlra import equations as eq


def printed_eq11(W, Q, d, k, r):
    """Eq. (11) as printed (paper indices: column i = d dropped, w_i = r w_j, j = k kept): q_k <- (q_d + r q_k)/s."""
    s = np.sqrt(r * r + 1)
    W2, Q2 = W.copy(), Q.copy()
    W2[:, k] *= s
    Q2[k] = (Q[d] + r * Q[k]) / s
    keep = [c for c in range(W.shape[1]) if c != d]
    return W2[:, keep], Q2[keep]


ratios = st.floats(1.0, 8.0) | st.floats(-8.0, -1.0)  # |r| >= 1: the dropped column d is the longer one


@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(2, 6), st.integers(1, 6), ratios, st.data())
def test_the_printed_eq11_is_off_by_r_minus_1_times_w_k_outer_q_d_minus_q_k(seed, m, n_cols, n, r, data):
    g = np.random.default_rng(seed)
    W, Q = g.standard_normal((m, n_cols)), g.standard_normal((n_cols, n))
    k, d = data.draw(st.lists(st.integers(0, n_cols - 1), min_size=2, max_size=2, unique=True))
    W[:, d] = r * W[:, k]
    if data.draw(st.booleans()):
        Q[d] = Q[k]  # q_d = q_k: the one case, besides r = 1, where the printed form is right
    scale = 1 + np.abs(W).max() * np.abs(Q).max() * n_cols
    tol = 1e-12 * scale

    Wc, Qc = eq.fuse_columns(W, Q, d, k)  # the code: the corrected (r q_d + q_k) / s
    np.testing.assert_allclose(Wc @ Qc, W @ Q, rtol=0, atol=tol)

    Wp, Qp = printed_eq11(W, Q, d, k, r)
    miss = W @ Q - Wp @ Qp
    np.testing.assert_allclose(miss, (r - 1) * np.outer(W[:, k], Q[d] - Q[k]), rtol=0, atol=tol)
    if r == 1 or np.array_equal(Q[d], Q[k]):
        assert np.abs(miss).max() <= tol  # the printed form is right only here

