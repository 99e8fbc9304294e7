"""The whole network's loss gradient, w.r.t. every parameter, against central differences."""
import numpy as np
import pytest

from numpy_dlra.nn.gradcheck import check_param_grads, directional_check
from numpy_dlra.models.mlp import MLP, PAPER_SIZES, init_params


@pytest.mark.parametrize("lambda2", [0.0, 0.1])
def test_tiny_network_every_parameter_elementwise(lambda2):
    model = MLP((6, 5, 4, 3), dropout=0.3)
    params = init_params(model.sizes, np.random.default_rng(0), np.float64)
    for k in params:  # nonzero biases so their gradients are exercised too
        params[k] += 0.1 * np.random.default_rng(1).standard_normal(params[k].shape)
    r = np.random.default_rng(2)
    x, y = r.standard_normal((7, 6)), r.integers(0, 3, 7)

    def f():  # the dropout mask is held fixed by re-seeding its generator
        return model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(3), lambda2=lambda2)[0]

    _, _, grads = model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(3), lambda2=lambda2)
    errors = check_param_grads(f, params, grads)
    assert set(errors) == set(params) and max(errors.values()) < 1e-6, errors


def test_paper_network_random_direction():
    model = MLP(PAPER_SIZES, dropout=0.2)
    params = init_params(model.sizes, np.random.default_rng(0), np.float64)
    r = np.random.default_rng(1)
    x, y = r.random((8, 784)), r.integers(0, 10, 8)

    def f(p):
        return model.loss_and_grads(p, x, y, training=True, rng=np.random.default_rng(4), lambda2=0.1)[0]

    _, _, grads = model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(4), lambda2=0.1)
    analytic, numeric = directional_check(f, params, grads, np.random.default_rng(5))
    assert abs(analytic - numeric) <= 1e-6 * max(1.0, abs(numeric))


def test_counts_match_the_paper():
    model = MLP()
    assert model.param_count() == 1_399_510  # Table 1: 1.40 M
    assert model.flops_per_sample() == 2_794_000  # Table 1: 2.79 M


def test_eval_mode_is_deterministic_and_dropout_free():
    model = MLP((6, 5, 3), dropout=0.5)
    params = init_params(model.sizes, np.random.default_rng(0), np.float32)
    x = np.random.default_rng(1).random((4, 6), dtype=np.float32)
    a, _ = model.forward(params, x, training=False)
    b, _ = model.forward(params, x, training=False, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32


def test_init_schemes():
    p = init_params((500, 400, 10), np.random.default_rng(0), np.float64, "he")
    assert abs(p["W1"].std() - np.sqrt(2 / 500)) < 1e-3 and p["W1"].shape == (400, 500)
    g = init_params((500, 400, 10), np.random.default_rng(0), np.float64, "glorot")
    assert np.abs(g["W1"]).max() <= np.sqrt(6 / 900)
    with pytest.raises(ValueError, match="unknown init"):
        init_params((2, 2), np.random.default_rng(0), np.float64, "zeros")


def test_input_gradient_when_asked_and_skipped_otherwise():
    from numpy_dlra.nn.gradcheck import numerical_grad, rel_error
    from numpy_dlra.nn.losses import softmax_cross_entropy, softmax_cross_entropy_backward

    model = MLP((5, 4, 3), dropout=0.0)
    params = init_params(model.sizes, np.random.default_rng(0), np.float64)
    x, y = np.random.default_rng(1).standard_normal((3, 5)), np.array([0, 2, 1])
    logits, caches = model.forward(params, x)
    _, ce = softmax_cross_entropy(logits, y)
    dx, _ = model.backward(softmax_cross_entropy_backward(ce), caches)
    num = numerical_grad(lambda: softmax_cross_entropy(model.forward(params, x)[0], y)[0], x)
    assert rel_error(num, dx) < 1e-7
    assert model.backward(softmax_cross_entropy_backward(ce), caches, input_grad=False)[0] is None
