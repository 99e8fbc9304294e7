"""Each op against central differences (float64, element-wise) and the op contract itself."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numpy_dlra.nn.gradcheck import check_param_grads, numerical_grad, rel_error
from numpy_dlra.nn.layers import Dropout, Linear, ReLU

shapes = st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6))


def loss_of(op, params, x, w, **kw):
    """Scalar test function sum(w * op(x)); its gradient w.r.t. the output is w."""
    return lambda: float((op.forward(params, x, **kw)[0] * w).sum())


@given(shapes, st.integers(0, 2**31))
def test_linear_grads(shape, seed):
    B, n, m = shape
    r = np.random.default_rng(seed)
    params = {"W": r.standard_normal((m, n)), "b": r.standard_normal(m)}
    x, w = r.standard_normal((B, n)), r.standard_normal((B, m))
    op = Linear()
    y, cache = op.forward(params, x)
    np.testing.assert_allclose(y, x @ params["W"].T + params["b"])
    dx, grads = op.backward(w, cache)
    assert set(grads) == set(params)
    f = loss_of(op, params, x, w)
    assert max(check_param_grads(f, params, grads).values()) < 1e-7
    assert rel_error(numerical_grad(f, x), dx) < 1e-7


def test_relu_grad(rng):
    x = rng.standard_normal((4, 7))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    w = rng.standard_normal((4, 7))
    y, cache = ReLU().forward({}, x)
    dx, grads = ReLU().backward(w, cache)
    assert grads == {}
    assert rel_error(numerical_grad(loss_of(ReLU(), {}, x, w), x), dx) < 1e-8


def test_dropout_backward_uses_the_forward_mask(rng):
    """Would catch numpy-ml's bug (a backward that forgets the mask): dx must be dy * mask."""
    op = Dropout(0.3)
    x = rng.standard_normal((50, 40)) + 3.0  # nonzero everywhere
    y, mask = op.forward({}, x, training=True, rng=np.random.default_rng(5))
    dropped = y == 0
    assert 0.2 < dropped.mean() < 0.4
    np.testing.assert_allclose(y[~dropped], x[~dropped] / 0.7)
    dy = rng.standard_normal(x.shape)
    dx, _ = op.backward(dy, mask)
    assert np.all(dx[dropped] == 0)
    np.testing.assert_allclose(dx[~dropped], dy[~dropped] / 0.7)
    # with the mask held fixed (same generator state) it matches central differences
    f = lambda: float((op.forward({}, x, training=True, rng=np.random.default_rng(5))[0] * dy).sum())  # noqa: E731
    assert rel_error(numerical_grad(f, x), dx) < 1e-8


def test_dropout_modes_and_rng():
    op = Dropout(0.5)
    x = np.ones((3, 4))
    y, cache = op.forward({}, x, training=False)
    assert y is x and cache is None
    dx, _ = op.backward(np.full((3, 4), 2.0), cache)
    assert np.all(dx == 2.0)
    with pytest.raises(ValueError, match="explicit rng"):
        op.forward({}, x, training=True)
    a = op.forward({}, x, training=True, rng=np.random.default_rng(1))[0]
    b = op.forward({}, x, training=True, rng=np.random.default_rng(1))[0]
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        Dropout(1.0)


def test_dropout_keeps_the_expectation():
    x = np.ones((400, 500), np.float32)
    y, _ = Dropout(0.2).forward({}, x, training=True, rng=np.random.default_rng(0))
    assert y.dtype == np.float32 and abs(y.mean() - 1.0) < 0.01


@given(shapes, st.sampled_from(["linear", "relu", "dropout"]))
def test_backward_never_writes_into_dy(shape, which):
    B, n, m = shape
    r = np.random.default_rng(0)
    op, params = {
        "linear": (Linear(), {"W": r.standard_normal((m, n)), "b": r.standard_normal(m)}),
        "relu": (ReLU(), {}),
        "dropout": (Dropout(0.5), {}),
    }[which]
    x = r.standard_normal((B, n))
    y, cache = op.forward(params, x, training=True, rng=r)
    dy = r.standard_normal(y.shape)
    before = dy.copy()
    x_before = x.copy()
    op.backward(dy, cache)
    np.testing.assert_array_equal(dy, before)
    np.testing.assert_array_equal(x, x_before)
