"""Property tests of the merge algebra and the RaRe/FN gradients (paper Eqs. 5-16), random shapes and signs."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from numpy_dlra import equations as eq
from numpy_dlra.nn.gradcheck import numerical_grad

seeds = st.integers(0, 2**32 - 1)
ratios = st.floats(-4.0, 4.0).filter(lambda r: abs(r) > 0.25)


def with_parallel_columns(seed, m, n_prime, n, r, ratio):
    """W' (m x n') whose column d is exactly r times column k, and a dense Q (n' x n)."""
    g = np.random.default_rng(seed)
    W = g.standard_normal((m, n_prime)) * g.choice([-1.0, 1.0], n_prime)
    k, d = g.choice(n_prime, 2, replace=False)
    if ratio == "sum":
        W[0, k] += 3.0 * np.sign(W[:, k].sum() or 1.0)  # keep sum(w_k) away from 0 (the paper's r is unstable there)
    W[:, d] = r * W[:, k]
    Q = g.standard_normal((n_prime, n))
    return W, Q, int(k), int(d)


@given(seeds, st.integers(1, 7), st.integers(2, 7), st.integers(1, 9), ratios, st.sampled_from(["sum", "lstsq"]))
def test_fusing_parallel_columns_preserves_everything(seed, m, n_prime, n, r, ratio):
    W, Q, k, d = with_parallel_columns(seed, m, n_prime, n, r, ratio)
    W2, Q2 = eq.fuse_columns(W, Q, k, d, ratio)
    assert W2.shape == (m, n_prime - 1) and Q2.shape == (n_prime - 1, n)
    np.testing.assert_allclose(W2 @ Q2, W @ Q, atol=1e-10)  # the layer's matrix, so its function
    x = np.random.default_rng(seed + 1).standard_normal((n, 3))
    np.testing.assert_allclose(W2 @ (Q2 @ x), W @ (Q @ x), atol=1e-9)
    np.testing.assert_allclose(W2 @ W2.T, W @ W.T, atol=1e-9)  # row Gram: angles between rows untouched
    np.testing.assert_allclose(np.linalg.norm(W2), np.linalg.norm(W), rtol=1e-12)  # FN is not disturbed


@given(seeds, st.integers(2, 7), st.integers(1, 6), st.integers(1, 7), ratios, st.sampled_from(["sum", "lstsq"]))
def test_fusing_parallel_rows_preserves_everything_bias_included(seed, m_prime, n_prime, m, r, ratio):
    aug_T, PT, k, d = with_parallel_columns(seed, n_prime + 1, m_prime, m, r, ratio)
    aug = aug_T.T  # rows [w_i, b_i], row d = r row k
    W, b, P = aug[:, :-1].copy(), aug[:, -1].copy(), PT.T.copy()
    W2, b2, P2 = eq.fuse_rows(W, b, P, k, d, ratio)
    assert W2.shape == (m_prime - 1, n_prime) and b2.shape == (m_prime - 1,) and P2.shape == (m, m_prime - 1)
    np.testing.assert_allclose(P2 @ W2, P @ W, atol=1e-9)
    np.testing.assert_allclose(P2 @ b2, P @ b, atol=1e-9)
    aug2 = np.concatenate([W2, b2[:, None]], axis=1)
    np.testing.assert_allclose(aug2.T @ aug2, aug.T @ aug, atol=1e-9)  # column Gram of [W', b']
    np.testing.assert_allclose(np.linalg.norm(aug2), np.linalg.norm(aug), rtol=1e-12)


@given(seeds, st.integers(2, 7), st.integers(1, 6), st.integers(1, 7), ratios, st.sampled_from(["sum", "lstsq"]))
def test_fusing_parallel_rows_of_w_fits_the_bias_by_least_squares(seed, m_prime, n_prime, m, r, ratio):
    """Rows of W' parallel, biases anything: P W' is kept exactly, and the merged row's bias
    b_k <- (r b_d + b_k)/s is the least-squares fit of (b_k, b_d) by a multiple of (1, r), so
    P_new b'_new = P b'_fit with b'_fit the projection of b' and (b' - b'_fit) orthogonal to (1, r)."""
    W_T, PT, k, d = with_parallel_columns(seed, n_prime, m_prime, m, r, ratio)
    W, P = W_T.T.copy(), PT.T.copy()  # row d of W' = r row k
    b = np.random.default_rng(seed + 2).standard_normal(m_prime)
    W2, b2, P2 = eq.fuse_rows(W, b, P, k, d, ratio)
    np.testing.assert_allclose(P2 @ W2, P @ W, atol=1e-9)
    rr = eq.fusion_ratio(W[d], W[k], ratio)
    u = np.zeros(m_prime)
    u[k], u[d] = 1.0, rr  # the direction the merged row spans in (b_k, b_d)
    fit = b.copy()
    fit[[k, d]] = 0.0
    fit += (u @ b) / (u @ u) * u  # the least-squares fit of (b_k, b_d) by beta (1, r)
    np.testing.assert_allclose(P2 @ b2, P @ fit, atol=1e-9)
    assert abs((b - fit) @ u) < 1e-9
    if abs(b[d] - rr * b[k]) > 1e-6:  # the biases not parallel: the scaled bias s b_k would be another answer
        s = np.sqrt(rr * rr + 1)
        assert not np.isclose(b2[k - (d < k)], s * b[k])


@given(seeds, st.integers(1, 6), st.integers(2, 6), ratios)
def test_the_shorter_vector_is_kept_in_place(seed, m, n_prime, r):
    W, Q, k, d = with_parallel_columns(seed, m, n_prime, 4, r, "lstsq")
    W2, _ = eq.fuse_columns(W, Q, d, k, "lstsq")  # argument order does not matter
    kept = k if abs(r) >= 1 else d
    pos = kept - (1 if (d if kept == k else k) < kept else 0)
    s = np.sqrt((r if abs(r) >= 1 else 1 / r) ** 2 + 1)
    np.testing.assert_allclose(W2[:, pos], s * W[:, kept], rtol=1e-10)


def printed_eq11(W, Q, i, j, r):
    """The paper as printed: drop column i (w_i = r w_j), keep j, Q's row j -> (q_i + q_j r) / s."""
    s = np.sqrt(r * r + 1)
    W2, Q2 = W.copy(), Q.copy()
    W2[:, j] *= s
    Q2[j] = (Q[i] + Q[j] * r) / s
    keep = [c for c in range(W.shape[1]) if c != i]
    return W2[:, keep], Q2[keep]


def test_printed_eq11_is_wrong_and_the_corrected_form_holds():
    """Erratum on record: the printed Eq. (11) changes the layer's function; ours preserves it."""
    g = np.random.default_rng(0)
    W, Q = g.standard_normal((6, 5)), g.standard_normal((5, 7))
    r = 2.5
    W[:, 1] = r * W[:, 3]  # column 1 = r * column 3: drop 1, keep the shorter 3
    Wp, Qp = printed_eq11(W, Q, 1, 3, r)
    assert np.abs(Wp @ Qp - W @ Q).max() > 0.1
    Wc, Qc = eq.fuse_columns(W, Q, 1, 3)
    assert np.abs(Wc @ Qc - W @ Q).max() < 1e-12
    # the two agree only when r = 1
    W[:, 1] = W[:, 3]
    Wp, Qp = printed_eq11(W, Q, 1, 3, 1.0)
    np.testing.assert_allclose(Wp @ Qp, W @ Q, atol=1e-12)


@given(seeds, st.integers(1, 6), st.integers(2, 6))
def test_rare_grad_matches_central_differences(seed, m, n):
    W = np.random.default_rng(seed).standard_normal((m, n))
    C = eq.cos_matrix(W)
    S = np.sort((1 - C**2)[np.triu_indices(n, 1)])
    assume(len(S) == 1 or S[1] - S[0] > 1e-4)  # a unique closest pair: rare is differentiable there
    assume(np.linalg.norm(W, axis=0).min() > 1e-3)
    num = numerical_grad(lambda: eq.rare(W), W, h=1e-7)
    np.testing.assert_allclose(eq.rare_grad(W), num, rtol=1e-5, atol=1e-7)  # m = 1: both ~0


@given(seeds, st.integers(1, 6), st.integers(1, 6))
def test_cos_matrix_and_rare_definitions(seed, m, n):
    W = np.random.default_rng(seed).standard_normal((m, n)) * 3
    C = eq.cos_matrix(W)
    for i in range(n):
        for j in range(n):
            ref = W[:, i] @ W[:, j] / np.linalg.norm(W[:, i]) / np.linalg.norm(W[:, j])
            assert C[i, j] == pytest.approx(ref, abs=1e-12)
    if n >= 2:
        ref = min(1 - C[i, j] ** 2 for i in range(n) for j in range(n) if i != j)
        assert eq.rare(W) == pytest.approx(ref, abs=1e-12)
        assert eq.rare(W * np.arange(1, n + 1)) == pytest.approx(ref, abs=1e-9)  # scale-invariant
    else:
        assert eq.rare(W) == 0.0 and not eq.rare_grad(W).any()


def test_rare_of_parallel_columns_is_zero():
    W = np.random.default_rng(0).standard_normal((4, 3))
    W[:, 2] = -0.5 * W[:, 0]
    assert eq.rare(W) == pytest.approx(0.0, abs=1e-14)


def test_rare_loss_total_weights_by_size():
    g = np.random.default_rng(0)
    A, B = g.standard_normal((3, 4)), g.standard_normal((5, 2))
    expect = (12 * (eq.rare(A) + eq.rare(A.T)) + 10 * (eq.rare(B) + eq.rare(B.T))) / (2 * 22)
    assert eq.rare_loss_total([A, B]) == pytest.approx(expect)


@given(seeds, st.integers(1, 6), st.floats(0.01, 0.2), st.sampled_from([1, -1]))
def test_merge_criterion_and_distance_identity(seed, m, angle, sign):
    g = np.random.default_rng(seed)
    wj = g.standard_normal(m + 1)
    perp = g.standard_normal(m + 1)
    perp -= perp @ wj / (wj @ wj) * wj
    assume(np.linalg.norm(perp) > 1e-6)
    wi = sign * 2.0 * (np.cos(angle) * wj + np.sin(angle) * np.linalg.norm(wj) * perp / np.linalg.norm(perp))
    W = np.stack([wi, wj], axis=1)
    c = eq.cos_matrix(W)[0, 1]
    d = eq.euclidean_distance(W, 0, 1)
    assert d == pytest.approx(np.linalg.norm(wj) * np.sqrt(2 * (1 - abs(c))), rel=1e-9)
    assert eq.d_euc_from_cos(np.linalg.norm(wj), c) == pytest.approx(d, rel=1e-9)  # the engine's form
    for tc, te in [(1e-4, 1e-1), (1.0, 10.0), (1.0, 1e-6)]:
        assert eq.merge_criterion(W, 0, 1, tc, te) == ((1 - abs(c) < tc) and (d < te))
    W[:, 0] = sign * 3.0 * wj  # exactly parallel: fused under the paper's thresholds
    assert eq.merge_criterion(W, 0, 1)


@given(seeds, st.integers(1, 5), st.integers(1, 5), st.floats(0.2, 3.0), st.floats(-2.0, 2.0).filter(lambda g: abs(g) > 0.1))
def test_frobenius_normalization_and_its_gradient(seed, m, n, k, gain):
    r = np.random.default_rng(seed)
    W, dY = r.standard_normal((m, n)), r.standard_normal((m, n))
    Y = eq.frobenius_normalize(W, k, gain)
    assert np.linalg.norm(Y) == pytest.approx(k * abs(gain))
    np.testing.assert_allclose(eq.cos_matrix(Y), eq.cos_matrix(W), atol=1e-12)  # angles kept on both axes
    np.testing.assert_allclose(eq.cos_matrix(Y.T), eq.cos_matrix(W.T), atol=1e-12)
    dW, dg = eq.frobenius_normalize_backward(dY, W, k, gain)
    num = numerical_grad(lambda: float((eq.frobenius_normalize(W, k, gain) * dY).sum()), W)
    np.testing.assert_allclose(dW, num, rtol=1e-6, atol=1e-8)  # 1 x 1: FN is constant, both ~0
    gg = np.array([gain])
    num_g = numerical_grad(lambda: float((eq.frobenius_normalize(W, k, gg[0]) * dY).sum()), gg)
    assert num_g[0] == pytest.approx(dg, rel=1e-6, abs=1e-9)


def test_dropout_rate_decay():
    assert eq.dropout_rate(500, 500, 0.2) == 0.2
    assert eq.dropout_rate(250, 500, 0.2) == pytest.approx(0.1)


def test_ratio_estimators():
    wk = np.array([1.0, 2.0, -0.5])
    for r in (-3.0, 0.7, 2.0):
        assert eq.fusion_ratio(r * wk, wk, "sum") == pytest.approx(r)
        assert eq.fusion_ratio(r * wk, wk, "lstsq") == pytest.approx(r)
    with pytest.raises(ValueError, match="lstsq"):
        eq.fusion_ratio(np.array([1.0, -1.0]), np.array([1.0, -1.0]), "sum")
    with pytest.raises(ValueError, match="unknown ratio"):
        eq.fusion_ratio(wk, wk, "mean")
