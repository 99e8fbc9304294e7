import numpy as np
import pytest
from scipy import stats

from numpy_dlra.nn import fast
from numpy_dlra.nn.fast import add_gradient_noise
from numpy_dlra.nn.optim import Adam, adam_update, box_muller, gradient_noise, noise_variance, standard_normal


def reference_adam(p, g, m, v, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """Kingma & Ba's Algorithm 1, as printed (bias-corrected m_hat and v_hat)."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    mhat, vhat = m / (1 - b1**t), v / (1 - b2**t)
    return p - lr * mhat / (np.sqrt(vhat) + eps), m, v


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_update_is_the_papers_formula(dtype):
    """optim.adam_update (the textbook form the engine's update is held to) against Kingma & Ba as printed."""
    r = np.random.default_rng(1)
    p, m, v = r.standard_normal(50).astype(dtype), np.zeros(50, dtype), np.zeros(50, dtype)
    q, mq, vq = p.astype(np.float64), np.zeros(50), np.zeros(50)
    for t in range(1, 6):
        g = r.standard_normal(50).astype(dtype)
        p, m, v = adam_update(p, g, m, v, t)
        q, mq, vq = reference_adam(q, g.astype(np.float64), mq, vq, t)
        np.testing.assert_allclose(p, q, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 7, (1 << 15) + 3, 100_000])  # across the blocking boundary
def test_the_fast_adam_step_is_bitwise_the_textbook_update(size, dtype):
    r = np.random.default_rng(0)
    params = {"w": r.standard_normal(size).astype(dtype), "b": r.standard_normal((3, 2)).astype(dtype)}
    state = Adam().init(params)
    ref = {k: (p.copy(), np.zeros_like(p), np.zeros_like(p)) for k, p in params.items()}
    for t in range(1, 4):
        grads = {k: r.standard_normal(p.shape).astype(dtype) for k, p in params.items()}
        fast.adam_step_(params, grads, state, 1e-3, 0.9, 0.999, 1e-8)
        for k in params:
            ref[k] = adam_update(*ref[k][:1], grads[k], *ref[k][1:], t)
            np.testing.assert_array_equal(params[k], ref[k][0])
            np.testing.assert_array_equal(state["m"][k], ref[k][1])
            np.testing.assert_array_equal(state["v"][k], ref[k][2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 5, fast.DRAW_BLOCK - 1, fast.DRAW_BLOCK + 3])
def test_the_fast_draws_are_bitwise_the_textbook_box_muller(n, dtype):
    np.testing.assert_array_equal(fast.standard_normal(np.random.default_rng(4), n, dtype),
                                  standard_normal(np.random.default_rng(4), n, dtype))
    u = np.random.default_rng(5).random(2 * ((n + 1) // 2), dtype=dtype)
    assert box_muller(u, n).shape == (n,)


def test_the_fast_noise_is_bitwise_the_textbook_noise():
    grads = {"W": np.random.default_rng(6).standard_normal((300, 250)).astype(np.float32),
             "b": np.zeros(7, np.float32)}
    want, sigma = gradient_noise(grads, 12, 0.01, np.random.default_rng(9))
    got = {k: g.copy() for k, g in grads.items()}
    assert add_gradient_noise(got, 12, 0.01, np.random.default_rng(9)) == sigma
    for k in grads:
        np.testing.assert_array_equal(got[k], want[k])


@pytest.mark.parametrize("size", [1, 7, (1 << 15) + 3, 100_000])  # across the blocking boundary
def test_adam_matches_the_textbook_formula(size):
    r = np.random.default_rng(0)
    params = {"w": r.standard_normal(size), "b": r.standard_normal((3, 2))}
    opt = Adam()
    state = opt.init(params)
    ref = {k: (p.copy(), np.zeros_like(p), np.zeros_like(p)) for k, p in params.items()}
    for t in range(1, 5):
        grads = {k: r.standard_normal(p.shape) for k, p in params.items()}
        g_before = {k: g.copy() for k, g in grads.items()}
        opt.step(params, grads, state)
        for k in params:
            ref[k] = reference_adam(*ref[k][:1], grads[k], *ref[k][1:], t)
            np.testing.assert_allclose(params[k], ref[k][0], rtol=1e-12, atol=1e-15)
            np.testing.assert_array_equal(grads[k], g_before[k])
    assert state["t"] == 4


def test_noise_schedule_is_a_variance():
    assert noise_variance(0, 0.3) == 0.3
    np.testing.assert_allclose(noise_variance(99, 0.01), 0.01 / 100**0.55)


@pytest.mark.parametrize("t", [0, 1000])
def test_added_noise_has_the_scheduled_variance(t):
    g = {"a": np.zeros(200_000, np.float32), "b": np.zeros((300, 300), np.float32)}
    sigma = add_gradient_noise(g, t, 0.01, np.random.default_rng(0))
    assert sigma == pytest.approx(np.sqrt(0.01 / (1 + t) ** 0.55))
    allv = np.concatenate([x.ravel() for x in g.values()]).astype(np.float64)
    assert allv.var() == pytest.approx(sigma**2, rel=0.01)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_box_muller_is_standard_normal(dtype):
    z = fast.standard_normal(np.random.default_rng(3), 300_001, dtype)
    assert z.dtype == dtype and z.shape == (300_001,)
    assert stats.kstest(z.astype(np.float64), "norm").pvalue > 0.01
    # neighbouring draws are uncorrelated
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.01


def test_box_muller_odd_lengths_and_reproducibility():
    for n in (1, 2, 3, 65535, 65537):
        a = fast.standard_normal(np.random.default_rng(1), n, np.float32)
        b = fast.standard_normal(np.random.default_rng(1), n, np.float32)
        assert a.shape == (n,) and np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)


def test_fused_noise_equals_sigma_times_the_documented_draws():
    shapes = {"W": (70_000,), "b": (3, 5)}
    g = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    sigma = add_gradient_noise(g, 5, 0.01, np.random.default_rng(8))
    r = np.random.default_rng(8)
    for k, s in shapes.items():
        expect = (fast.standard_normal(r, int(np.prod(s)), np.float32) * np.float32(sigma)).reshape(s)
        np.testing.assert_array_equal(g[k], expect)
