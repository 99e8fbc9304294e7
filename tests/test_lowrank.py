"""The fixed-rank baseline (Sainath et al. 2013): the layer B (C x) + b, the rank bound, and SVD truncation (Eckart-Young)."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from numpy_dlra import equations as eq
from numpy_dlra.nn.gradcheck import check_param_grads, numerical_grad, rel_error
from numpy_dlra.nn.lowrank import LowRankLinear
from numpy_dlra.models.mlp import MLP, init_params

seeds = st.integers(0, 2**32 - 1)


def test_low_rank_layer_gradients_elementwise(rng):
    op = LowRankLinear()
    params = {"B": rng.standard_normal((4, 2)), "C": rng.standard_normal((2, 5)), "b": rng.standard_normal(4)}
    x, w = rng.standard_normal((3, 5)), rng.standard_normal((3, 4))
    f = lambda: float((op.forward(params, x)[0] * w).sum())  # noqa: E731
    y, cache = op.forward(params, x)
    np.testing.assert_allclose(y, x @ (params["B"] @ params["C"]).T + params["b"], atol=1e-12)
    dx, grads = op.backward(w, cache)
    errors = check_param_grads(f, params, grads)
    assert max(errors.values()) < 1e-7, errors
    assert rel_error(numerical_grad(f, x), dx) < 1e-7
    assert LowRankLinear().backward(w, cache, input_grad=False)[0] is None


def test_mlp_with_a_fixed_rank_last_layer_whole_network_gradient(rng):
    model = MLP((6, 5, 4), 0.2, ranks=((2, 2),))
    params = init_params(model.sizes, rng, np.float64, ranks=dict(model.ranks))
    assert set(params) == {"W1", "b1", "B2", "C2", "b2"}
    assert model.param_count() == sum(p.size for p in params.values()) == 5 * 6 + 5 + 4 * 2 + 2 * 5 + 4
    x, y = rng.standard_normal((7, 6)), rng.integers(0, 4, 7)

    def loss():
        return model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(1), lambda2=0.1)[0]

    _, _, grads = model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(1), lambda2=0.1)
    errors = check_param_grads(loss, params, grads)
    assert max(errors.values()) < 1e-6, errors


@given(st.integers(1, 2000), st.integers(1, 2000), st.floats(0.0, 1.0))
def test_reduction_rank_is_the_largest_rank_under_the_bound(m, n, p):
    r = eq.reduction_rank(m, n, p)
    assert r >= 0
    assert r == 0 or m * r + r * n < p * m * n
    assert not m * (r + 1) + (r + 1) * n < p * m * n


def test_reduction_rank_report_examples():
    # 256 x 10 softmax layer: 40 % of its weights go at r < 0.4 * 2560 / 266 = 3.85, so r = 3
    assert eq.reduction_rank(256, 10, 0.4) == 3
    assert eq.reduction_rank(10, 10, 0.2) == 0  # 2 * 10 * 1 = 20 is not < 20
    assert eq.reduction_rank(10, 10, 0.21) == 1


@given(seeds, st.integers(1, 8), st.integers(1, 8), st.data())
def test_truncated_svd_error_is_the_next_singular_value(seed, m, n, data):
    W = np.random.default_rng(seed).standard_normal((m, n))
    r = data.draw(st.integers(1, min(m, n)))
    B, C = eq.truncate_svd(W, r)
    assert B.shape == (m, r) and C.shape == (r, n)
    s = np.linalg.svd(W, compute_uv=False)
    err = np.linalg.norm(W - B @ C, 2)
    assert abs(err - (s[r] if r < len(s) else 0.0)) < 1e-10 * max(1.0, s[0])
    assert np.linalg.matrix_rank(B @ C, tol=1e-9 * max(1.0, s[0])) <= r
