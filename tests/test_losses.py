import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from numpy_dlra.nn.gradcheck import numerical_grad, rel_error
from numpy_dlra.nn.losses import l2_penalty, l2_penalty_grad, softmax_cross_entropy, softmax_cross_entropy_backward


@given(st.integers(1, 6), st.integers(2, 7), st.floats(0.1, 30.0), st.integers(0, 2**31))
def test_cross_entropy_grad(B, C, scale, seed):
    r = np.random.default_rng(seed)
    z, y = r.standard_normal((B, C)) * scale, r.integers(0, C, B)
    loss, cache = softmax_cross_entropy(z, y)
    d = softmax_cross_entropy_backward(cache)
    assert rel_error(numerical_grad(lambda: softmax_cross_entropy(z, y)[0], z, h=1e-5), d) < 1e-6


def test_cross_entropy_value_and_stability():
    z = np.array([[0.0, np.log(3.0)], [1e4, -1e4]])
    loss, _ = softmax_cross_entropy(z, np.array([1, 1]))
    # row 1: -log(3/4); row 2: logsumexp - z_y = 1e4 - (-1e4) = 2e4, no overflow
    np.testing.assert_allclose(loss, (-np.log(0.75) + 2e4) / 2)
    loss32, _ = softmax_cross_entropy(np.float32(1e30) * np.ones((2, 3), np.float32), np.array([0, 2]))
    np.testing.assert_allclose(loss32, np.log(3.0), rtol=1e-6)


def test_l2_penalty_grad(rng):
    Ws = [rng.standard_normal((3, 4)), rng.standard_normal((2, 3))]
    np.testing.assert_allclose(l2_penalty(Ws), sum((W**2).sum() for W in Ws) / 2)
    for W in Ws:
        assert rel_error(numerical_grad(lambda: l2_penalty(Ws), W), l2_penalty_grad(W, len(Ws))) < 1e-8
