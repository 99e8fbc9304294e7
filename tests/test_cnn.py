"""The fixed-rank baseline's CNN: convolution, pooling and the whole network against central differences."""
import numpy as np
import pytest

from numpy_dlra.models.cnn import CNN
from numpy_dlra.nn.conv import Conv2D, Flatten, MaxPool2D
from numpy_dlra.nn.gradcheck import check_param_grads, directional_check, numerical_grad, rel_error


def test_convolution_equals_the_direct_sum(rng):
    x, K, b = rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((3, 2, 3, 4)), rng.standard_normal(4)
    y, _ = Conv2D().forward({"K": K, "b": b}, x)
    want = np.zeros((2, 3, 5, 4))
    for p in range(3):
        for q in range(5):
            want[:, p, q, :] = np.einsum("bijc,ijcf->bf", x[:, p:p + 3, q:q + 2, :], K) + b
    np.testing.assert_allclose(y, want, atol=1e-12)


def test_convolution_gradients_elementwise(rng):
    op = Conv2D()
    params = {"K": rng.standard_normal((3, 3, 2, 3)), "b": rng.standard_normal(3)}
    x = rng.standard_normal((2, 5, 4, 2))
    w = rng.standard_normal((2, 3, 2, 3))
    f = lambda: float((op.forward(params, x)[0] * w).sum())  # noqa: E731
    dx, grads = op.backward(w, op.forward(params, x)[1])
    errors = check_param_grads(f, params, grads)
    assert max(errors.values()) < 1e-7, errors
    assert rel_error(numerical_grad(f, x), dx) < 1e-7
    assert Conv2D().backward(w, op.forward(params, x)[1], input_grad=False)[0] is None


@pytest.mark.parametrize("shape", [(2, 4, 6, 3), (1, 5, 7, 2)])  # the odd row / column is dropped
def test_max_pool_forward_and_gradient(rng, shape):
    x = rng.standard_normal(shape)
    y, cache = MaxPool2D().forward({}, x)
    H2, W2 = shape[1] // 2, shape[2] // 2
    want = x[:, :2 * H2, :2 * W2, :].reshape(shape[0], H2, 2, W2, 2, shape[3]).max(axis=(2, 4))
    np.testing.assert_array_equal(y, want)
    w = rng.standard_normal(y.shape)
    dx, _ = MaxPool2D().backward(w, cache)
    num = numerical_grad(lambda: float((MaxPool2D().forward({}, x)[0] * w).sum()), x)
    assert rel_error(num, dx) < 1e-7


def test_max_pool_sends_the_gradient_to_one_of_tied_maxima():
    x = np.ones((1, 2, 2, 1))
    y, cache = MaxPool2D().forward({}, x)
    dx, _ = MaxPool2D().backward(np.ones_like(y), cache)
    assert dx.sum() == 1.0 and dx[0, 0, 0, 0] == 1.0


def test_flatten_round_trip(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    y, cache = Flatten().forward({}, x)
    assert y.shape == (2, 60) and np.array_equal(y[1], x[1].reshape(-1))
    np.testing.assert_array_equal(Flatten().backward(y, cache)[0], x)


@pytest.mark.parametrize("rank", [0, 2])
def test_whole_cnn_gradient(rng, rank):
    model = CNN(input_shape=(8, 7, 2), n_classes=3, widths=(3, 3, 5), rank=rank)
    params = model.init_params(rng, np.float64)
    assert model.param_count() == sum(p.size for p in params.values())
    x, y = rng.standard_normal((4, 8 * 7 * 2)), rng.integers(0, 3, 4)

    def loss():
        return model.loss_and_grads(params, x, y, training=True, rng=None, lambda2=0.1)[0]

    _, _, grads = model.loss_and_grads(params, x, y, training=True, rng=None, lambda2=0.1)
    assert set(grads) == set(params)
    errors = check_param_grads(loss, params, grads)
    assert max(errors.values()) < 1e-6, errors


def test_report_sized_cnn_random_direction(rng):
    model = CNN(rank=4)
    params = model.init_params(rng, np.float64)
    x, y = rng.random((3, 784)), rng.integers(0, 10, 3)
    _, _, grads = model.loss_and_grads(params, x, y, training=True, rng=None)
    a, n = directional_check(lambda p: model.loss_and_grads(p, x, y, training=True, rng=None)[0], params, grads,
                             np.random.default_rng(2))
    assert abs(a - n) < 1e-6 * max(1.0, abs(n))
    assert model.param_count() == 9 * 32 + 32 + 9 * 32 * 32 + 32 + 4608 * 256 + 256 + 10 * 4 + 4 * 256 + 10
