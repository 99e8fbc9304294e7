"""The factorized network P FN(W') Q: equal to the dense net, exact feature reduction, checked gradients."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from numpy_dlra.dlra.features import FeatureGroups
from numpy_dlra.dlra.layer import LayerFactors
from numpy_dlra.dlra.network import FactorizedMLP
from numpy_dlra.nn.gradcheck import check_param_grads, directional_check, numerical_grad, rel_error
from numpy_dlra.models.mlp import MLP, init_params

seeds = st.integers(0, 2**32 - 1)


def random_factors(g, m, m_prime, n, n_prime):
    """P (m x m'), Q (n' x n) with one nonzero per row / column, every row and column of W' used, random signs."""
    p_idx = np.concatenate([np.arange(m_prime), g.integers(0, m_prime, m - m_prime)])
    q_idx = np.concatenate([np.arange(n_prime), g.integers(0, n_prime, n - n_prime)])
    sc = lambda k: g.uniform(0.3, 2.0, k) * g.choice([-1.0, 1.0], k)  # noqa: E731
    return LayerFactors(g.permutation(p_idx), sc(m), g.permutation(q_idx), sc(n))


def random_net(seed, sizes, fn=True, dtype=np.float64, first_cols=True):
    """A factorized net with random P, Q (the first layer's Q stays I unless first_cols) and random W', b', g."""
    g = np.random.default_rng(seed)
    dense = init_params(sizes, g, dtype)
    model, params = FactorizedMLP.from_dense(dense, sizes, 0.2, fn=fn)
    for l in range(1, len(sizes)):
        m, n = sizes[l], sizes[l - 1]
        mp = m if l == len(sizes) - 1 else int(g.integers(1, m + 1))
        np_ = int(g.integers(1, n + 1)) if (l > 1 or first_cols) else n
        model.layers[l - 1].factors = random_factors(g, m, mp, n, np_)
        params[f"W{l}"] = g.standard_normal((mp, np_)).astype(dtype)
        params[f"b{l}"] = (0.3 * g.standard_normal(mp)).astype(dtype)
        if fn:
            params[f"g{l}"] = np.array([g.uniform(0.5, 1.5)], dtype=dtype)
    model.rebuild()
    return model, params


def test_identity_factorization_without_fn_is_the_dense_mlp_bit_for_bit(rng):
    sizes = (12, 9, 7, 4)
    dense = init_params(sizes, rng, np.float32)
    model, params = FactorizedMLP.from_dense(dense, sizes, 0.2, fn=False)
    x, y = rng.standard_normal((6, 12)).astype(np.float32), rng.integers(0, 4, 6)
    a = MLP(sizes, 0.2).loss_and_grads(dense, x, y, training=True, rng=np.random.default_rng(1), lambda2=0.1)
    b = model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(1), lambda2=0.1)
    assert a[0] == b[0]
    assert list(a[2]) == list(b[2])  # same keys in the same order (gradient noise is drawn in this order)
    for k in a[2]:
        np.testing.assert_array_equal(a[2][k], b[2][k])


@given(seeds, st.booleans())
def test_factorized_net_equals_its_dense_form_for_any_signs(seed, fn):
    """Feature-space reduction (Sec. 4.3) and the folded |p_i| are exact: eval output = that of P FN(W') Q."""
    sizes = (7, 6, 5, 3)
    model, params = random_net(seed, sizes, fn=fn)
    x = np.random.default_rng(seed + 1).standard_normal((5, 7))
    dense = model.to_dense(params)
    np.testing.assert_allclose(model.forward(params, x)[0], MLP(sizes).forward(dense, x)[0], atol=1e-10)
    for l, stats in enumerate(model.layer_stats()[:-1], start=1):
        m_prime, m = stats["m"], sizes[l]
        assert m_prime <= stats["feat"] <= min(m, 2 * m_prime)


def test_feature_groups_are_keyed_by_row_and_sign():
    f = LayerFactors(np.array([0, 1, 1, 0, 2]), np.array([1.0, -2.0, 0.5, 3.0, -1.0]), np.arange(3), np.ones(3))
    g = FeatureGroups.of(f)
    assert g.rows.tolist() == [0, 1, 1, 2] and g.signs.tolist() == [1, 1, -1, -1]
    assert g.of_unit.tolist() == [0, 2, 1, 0, 3]


def test_dropout_rate_decays_with_the_feature_dimension():
    """Eq. (14): r = r0 n / n0 on the reduced features of each hidden layer."""
    model, _ = random_net(3, (7, 6, 5, 3))
    for rate, stats, m in zip(model.dropout_rates(), model.layer_stats(), (6, 5)):
        assert rate == 0.2 * stats["feat"] / m


def test_every_parameter_elementwise_tiny_random_structure():
    """dL/dW', db', dg with FN, L2, dropout and random signed P, Q: central differences in float64."""
    sizes = (5, 4, 4, 3)
    model, params = random_net(11, sizes, fn=True)
    g = np.random.default_rng(2)
    x, y = g.standard_normal((6, 5)), g.integers(0, 3, 6)

    def loss():
        return model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(3), lambda2=0.1)[0]

    _, _, grads = model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(3), lambda2=0.1)
    assert set(grads) == set(params)
    errors = check_param_grads(loss, params, grads)
    assert max(errors.values()) < 1e-6, errors


def test_every_parameter_elementwise_with_a_zero_gain():
    """A layer whose FN gain is 0 (c = 0) cannot fold c into its GEMM (c dY would hide dY, which dg needs): its
    own path, checked by central differences too."""
    sizes = (5, 4, 4, 3)
    model, params = random_net(12, sizes, fn=True)
    params["g2"][...] = 0.0
    g = np.random.default_rng(2)
    x, y = g.standard_normal((6, 5)), g.integers(0, 3, 6)

    def loss():
        return model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(3), lambda2=0.1)[0]

    _, _, grads = model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(3), lambda2=0.1)
    assert abs(grads["g2"][0]) > 1e-6  # the gain is pulled off zero
    errors = check_param_grads(loss, params, grads)
    assert max(errors.values()) < 1e-6, errors


def test_folding_fns_scale_into_the_gemms_changes_only_rounding(monkeypatch):
    """ops.FOLD = False (the form before issue 27, kept for benchmarks/step_phases.py) gives the same gradients."""
    from numpy_dlra.dlra import ops

    model, params = random_net(13, (6, 5, 5, 3), fn=True)
    g = np.random.default_rng(3)
    x, y = g.standard_normal((8, 6)), g.integers(0, 3, 8)
    folded = model.loss_and_grads(params, x, y, training=False, rng=None, lambda2=0.1)[2]
    monkeypatch.setattr(ops, "FOLD", False)
    unfolded = model.loss_and_grads(params, x, y, training=False, rng=None, lambda2=0.1)[2]
    for k in folded:
        np.testing.assert_allclose(folded[k], unfolded[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_whole_network_random_direction_paper_widths_scaled_down():
    sizes = (30, 20, 20, 20, 10)
    model, params = random_net(5, sizes, fn=True)
    g = np.random.default_rng(4)
    x, y = g.standard_normal((16, 30)), g.integers(0, 10, 16)

    def loss(p):
        return model.loss_and_grads(p, x, y, training=True, rng=np.random.default_rng(4), lambda2=0.1)[0]

    _, _, grads = model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(4), lambda2=0.1)
    analytic, numeric = directional_check(loss, params, grads, np.random.default_rng(6))
    assert abs(analytic - numeric) < 1e-6 * max(1.0, abs(numeric))


def test_input_gradient_through_connectors_and_groups():
    """The backward of the connector, grouped ReLU and gather, checked by dL/dx of a first layer with random Q."""
    model, params = random_net(8, (6, 5, 4), fn=True, first_cols=True)
    g = np.random.default_rng(9)
    x, w = g.standard_normal((3, 6)), g.standard_normal((3, 4))
    dx, _ = model.backward(w, model.forward(params, x)[1])
    num = numerical_grad(lambda: float((model.forward(params, x)[0] * w).sum()), x)
    assert rel_error(num, dx) < 1e-7
    assert model.backward(w, model.forward(params, x)[1], input_grad=False)[0] is None


@given(seeds, st.integers(1, 5), st.integers(1, 5))
def test_in_place_fn_backward_is_the_equations_one(seed, m, n):
    from numpy_dlra import equations as eq
    from numpy_dlra.dlra.ops import fn_backward_inplace

    g = np.random.default_rng(seed)
    W, dY, k, gain = g.standard_normal((m, n)), g.standard_normal((m, n)), g.uniform(0.5, 2), g.uniform(-2, 2)
    want_W, want_g = eq.frobenius_normalize_backward(dY, W, k, gain)
    got_W, got_g = fn_backward_inplace(dY.copy(), W, k, gain)
    np.testing.assert_allclose(got_W, want_W, rtol=1e-12, atol=1e-12)
    assert abs(got_g[0] - want_g) < 1e-12 * max(1.0, abs(want_g))


@given(seeds, st.integers(1, 5), st.integers(1, 5))
def test_fn_backward_with_c_folded_into_the_gemm_is_the_equations_one(seed, m, n):
    """FNLinear.backward scales du by c before the weight-gradient GEMM: fn_backward_folded from c dY."""
    from numpy_dlra import equations as eq
    from numpy_dlra.dlra.ops import fn_backward_folded

    g = np.random.default_rng(seed)
    W, dY, k, gain = g.standard_normal((m, n)), g.standard_normal((m, n)), g.uniform(0.5, 2), g.uniform(-2, 2)
    want_W, want_g = eq.frobenius_normalize_backward(dY, W, k, gain)
    f2 = float((W * W).sum())
    c = k * gain / f2**0.5
    got_W, got_g = fn_backward_folded(c * dY, W, k, gain, f2, c)
    np.testing.assert_allclose(got_W, want_W, rtol=1e-10, atol=1e-12)
    assert abs(got_g[0] - want_g) < 1e-10 * max(1.0, abs(want_g))


@given(seeds, st.integers(1, 6), st.integers(1, 6), st.integers(1, 6))
def test_fn_linear_folded_backward_is_the_textbook_one_for_any_shape(seed, B, m, n):
    """FNLinear's backward with c folded into its GEMMs gives Eq. (15)'s gradients, the same as the textbook path
    (ops.FOLD = False: fn_backward_inplace) to rounding, in float64, for batches smaller or larger than W'."""
    from numpy_dlra.dlra import ops

    g = np.random.default_rng(seed)
    params = {"W": g.standard_normal((m, n)), "b": g.standard_normal(m), "g": g.uniform(0.5, 2, 1) * g.choice([-1, 1])}
    z, du = g.standard_normal((B, n)), g.standard_normal((B, m))
    lin = ops.FNLinear(k=g.uniform(0.5, 2))
    u, cache = lin.forward(params, z)
    dz, grads = lin.backward(du, cache)
    fold, ops.FOLD = ops.FOLD, False
    try:
        want_dz, want = lin.backward(du, lin.forward(params, z)[1])
    finally:
        ops.FOLD = fold
    np.testing.assert_allclose(dz, want_dz, rtol=1e-10, atol=1e-12)
    for k in want:
        np.testing.assert_allclose(grads[k], want[k], rtol=1e-10, atol=1e-12, err_msg=k)
