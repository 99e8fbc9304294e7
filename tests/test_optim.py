import numpy as np
import pytest
from scipy import stats

from numpy_dlra.nn import fast
from numpy_dlra.nn.fast import add_gradient_noise
from numpy_dlra.nn.optim import (Adam, adam_update, box_muller, box_muller_raw, gradient_noise, noise_variance,
                                 raw_integers, standard_normal)


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
    sigma = add_gradient_noise(g, 5, 0.01, np.random.default_rng(8), stream="uniform")
    r = np.random.default_rng(8)
    for k, s in shapes.items():
        expect = (fast.standard_normal(r, int(np.prod(s)), np.float32) * np.float32(sigma)).reshape(s)
        np.testing.assert_array_equal(g[k], expect)


# --- the "raw" stream (the default): Box-Muller on the generator's 64-bit words -------------------------------

def noise_of(shapes, dtype, stream, t=12, eta=0.01, seed=9):
    """The fast form's noise on gradients of `shapes` (a ramp, so that each entry differs)."""
    grads = {f"g{i}": np.linspace(-1, 1, int(np.prod(s))).reshape(s).astype(dtype) for i, s in enumerate(shapes)}
    sigma = add_gradient_noise(grads, t, eta, np.random.default_rng(seed), stream=stream)
    return grads, sigma


SHAPES = [[(1,)], [(5,), (2,)], [(fast.DRAW_BLOCK - 1,), (7,)], [(300, 250), (250,), (3, fast.DRAW_BLOCK + 3)]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", SHAPES)
def test_the_fast_raw_noise_is_bitwise_the_textbook(shapes, dtype):
    """nn.fast draws the "raw" stream block by block into small buffers; optim.gradient_noise writes it on whole
    arrays. Same bits, across blocks and arrays."""
    got, sigma = noise_of(shapes, dtype, "raw")
    ramps = {k: np.linspace(-1, 1, g.size).reshape(g.shape).astype(dtype) for k, g in got.items()}
    want, s2 = gradient_noise(ramps, 12, 0.01, np.random.default_rng(9))
    assert sigma == s2
    for k in got:
        assert got[k].dtype == dtype
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_the_streams_differ_and_the_uniform_one_is_the_old_definition():
    """"uniform" is the stream of the runs made before "raw": sigma times optim.standard_normal, array by array."""
    raw, _ = noise_of([(1000,)], np.float32, "raw")
    uni, sigma = noise_of([(1000,)], np.float32, "uniform")
    ramp = np.linspace(-1, 1, 1000).astype(np.float32)
    np.testing.assert_array_equal(uni["g0"], ramp + standard_normal(np.random.default_rng(9), 1000, np.float32)
                                  * np.float32(sigma))
    assert np.abs(raw["g0"] - uni["g0"]).max() > 1e-3


def test_raw_integers_take_each_words_halves_low_first():
    w = np.array([(5 << 9) | 0x1FF | ((7 << 9) << 32), 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
    a, b = raw_integers(w, np.float32)
    assert b == 23 and a.dtype == np.float32
    np.testing.assert_array_equal(a, [5, 7, 2**23 - 1, 2**23 - 1])
    a, b = raw_integers(w, np.float64)
    assert b == 52 and a.dtype == np.float64
    np.testing.assert_array_equal(a, [float(int(w[0]) >> 12), 2.0**52 - 1])


@pytest.mark.parametrize("dtype,bits", [(np.float32, 23), (np.float64, 52)])
def test_box_muller_raw_at_its_extremes(dtype, bits):
    """The smallest integer gives u = 2^-(b+1), the largest radius sigma sqrt(2 (b + 1) ln 2); theta = 0 puts it
    all in the cosine half (the paired draw is 0)."""
    a = np.array([0, 2**bits - 1, 0, 2**(bits - 2)], dtype=dtype)  # rho from a[0], a[1]; theta from a[2], a[3]
    z = box_muller_raw(a, 4, 2.0, bits)
    top = 2.0 * np.sqrt(2 * (bits + 1) * np.log(2))
    np.testing.assert_allclose(z[0], 0.0, atol=1e-6)  # sin(0)
    np.testing.assert_allclose(z[2], top, rtol=1e-6)  # cos(0) times the largest radius
    np.testing.assert_allclose(z[1], 2.0 * np.sqrt(-2 * np.log1p(-2.0 ** -(bits + 1))), rtol=1e-3)  # sin(pi / 2)
    assert abs(z[3]) < 1e-3 * top  # cos(pi / 2)


def _normal_checks(z):
    """Moments (each as a z-score against its standard error for n normal draws), tail fractions (against the
    binomial), the KS and Cramer-von Mises tests against N(0, 1), for draws z (float64)."""
    n = z.size
    assert abs(z.mean()) < 4.5 / np.sqrt(n)
    assert abs(z.var() - 1) < 4.5 * np.sqrt(2 / n)
    assert abs(stats.skew(z)) < 4.5 * np.sqrt(6 / n)
    assert abs(stats.kurtosis(z)) < 4.5 * np.sqrt(24 / n)
    for c in (1.0, 2.0, 3.0, 4.0):
        p = 2 * stats.norm.sf(c)
        k = np.count_nonzero(np.abs(z) > c)
        assert abs(k - n * p) < 4.5 * np.sqrt(n * p * (1 - p)) + 1, (c, k, n * p)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert stats.cramervonmises(z, "norm").pvalue > 1e-3  # against N(0, 1) itself, no parameter estimated


@pytest.mark.parametrize("stream", ["raw", "uniform"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_noise_streams_are_gaussian(stream, dtype):
    """The paper leaves the noise's draw open; Neelakantan et al. make it Gaussian. Both streams, on 1 M draws of
    sigma = 1 across two arrays: moments, the tails out to 4 sigma, KS and Cramer-von Mises; neighbouring draws,
    and neighbouring blocks, uncorrelated."""
    g = {"a": np.zeros(700_001, dtype), "b": np.zeros((3, 100_000), dtype)}
    add_gradient_noise(g, 0, 1.0, np.random.default_rng(21), stream=stream)
    z = np.concatenate([x.ravel() for x in g.values()]).astype(np.float64)
    _normal_checks(z)
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 4.5 / np.sqrt(z.size)
    B = fast.DRAW_BLOCK
    even, odd = z[: 10 * B].reshape(10, B)[0::2].ravel(), z[: 10 * B].reshape(10, B)[1::2].ravel()
    assert abs(np.corrcoef(even, odd)[0, 1]) < 4.5 / np.sqrt(even.size)


@pytest.mark.parametrize("b", [1.0, 0.5])
def test_scaled_add_updates_a_non_contiguous_array_itself(b):
    """y <- b y + a x on a transposed view: the blocked path would write into a flat copy and lose it."""
    y = np.arange(12.0).reshape(3, 4).T  # (4, 3), not C-contiguous
    want = b * y + 2.0 * np.ones_like(y)
    assert fast.scaled_add_(y, 2.0, np.ones_like(y), b=b) is y
    np.testing.assert_array_equal(y, want)
