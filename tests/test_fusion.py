"""The DLRA engine (numpy_dlra.dlra: pairs, merge, rare, layer, network) against the pure equations
(numpy_dlra.dlra.equations), and exact merges anywhere in a network."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from numpy_dlra import equations as eq
from numpy_dlra.dlra.network import FactorizedMLP
from numpy_dlra.dlra.merge import candidate, find_pair, merge_step
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules, closest_pair
from numpy_dlra.dlra.rare import rare_term
from numpy_dlra.nn.gradcheck import check_param_grads, numerical_grad
from numpy_dlra.models.mlp import init_params
from test_factorized import random_net

seeds = st.integers(0, 2**32 - 1)
EXACT = FusionRules(tau_cos=1e-9, tau_euc=1e-6)  # only exactly parallel pairs qualify


def weights(model, params):
    return [params[f"W{l}"] for l in range(1, model.n_layers + 1)]


@given(seeds, st.integers(2, 9), st.integers(2, 9))
def test_closest_pair_from_the_gram_is_the_equations_pair(seed, m, n):
    W = np.random.default_rng(seed).standard_normal((m, n))
    i, j, c = closest_pair(W.T @ W)
    assert abs((1 - c * c) - eq.rare(W)) < 1e-12
    assert abs(c - eq.cos_matrix(W)[i, j]) < 1e-12  # the value at (i, j) is the minimum: (i, j) is a minimizing pair


@given(seeds, st.sampled_from(["all", "fusable"]))
def test_rare_term_is_eq16_and_its_gradient_matches_central_differences(seed, axes):
    model, params = random_net(seed, (6, 5, 7, 4, 3))
    red = ClosestPairs(model, FusionRules(lambda1=2.0, rare_axes=axes))
    red.refresh(params)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    value = rare_term(red, params, grads)
    if axes == "all":
        assert abs(value - eq.rare_loss_total(weights(model, params))) < 1e-12
    for l in range(1, model.n_layers + 1):
        W = params[f"W{l}"]

        def f():
            red.refresh(params)
            return rare_term(red, params, {k: np.zeros_like(v) for k, v in params.items()})

        num = numerical_grad(f, W, h=1e-7)
        # scale-aware: a 1-row W' has only parallel columns, where both gradients are 0 up to rounding
        assert np.abs(2.0 * num - grads[f"W{l}"]).max() < 1e-5 * max(1.0, np.abs(grads[f"W{l}"]).max())


def test_whole_dlra_loss_gradient_elementwise():
    """L = L_task + lambda1 L_RaRe + lambda2 L_L2 (Eq. 18) with FN, dropout and a merged structure."""
    model, params = random_net(21, (5, 4, 6, 3))
    lam1, lam2 = 20.0, 0.1
    red = ClosestPairs(model, FusionRules(lambda1=lam1))
    g = np.random.default_rng(1)
    x, y = g.standard_normal((7, 5)), g.integers(0, 3, 7)

    def total():
        task_l2 = model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(2), lambda2=lam2)[0]
        return task_l2 + lam1 * eq.rare_loss_total(weights(model, params))

    _, _, grads = model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(2), lambda2=lam2)
    red.refresh(params)
    rare_term(red, params, grads)
    errors = check_param_grads(total, params, grads, h=1e-7)
    assert max(errors.values()) < 1e-5, errors


def near_parallel(g, V, k, d, angle, r):
    """Make V[:, d] = r * (V[:, k] turned by `angle` radians within a random plane)."""
    u = V[:, k] / np.linalg.norm(V[:, k])
    p = g.standard_normal(len(u))
    p -= (p @ u) * u
    p /= np.linalg.norm(p)
    V[:, d] = r * np.linalg.norm(V[:, k]) * (np.cos(angle) * u + np.sin(angle) * p)


def compared(params, l, axis, row_vectors):
    """The vectors Eq. (13) compares on `axis` of layer l, as columns: W' ("cols"), the rows of W'
    (``row_vectors="w"``) or the augmented rows [w', b'] ("wb")."""
    W, b = params[f"W{l}"], params[f"b{l}"]
    return W if axis == "cols" else W.T if row_vectors == "w" else np.concatenate([W, b[:, None]], axis=1).T


def set_compared(params, l, axis, row_vectors, V):
    """Write back the vectors of :func:`compared` (V may be a modified copy)."""
    if axis == "rows" and row_vectors == "wb":
        params[f"W{l}"], params[f"b{l}"] = V.T[:, :-1].copy(), V.T[:, -1].copy()
    else:
        params[f"W{l}"] = np.ascontiguousarray(V if axis == "cols" else V.T)


@given(seeds, st.floats(0.0, 0.05), st.floats(-3.0, 3.0).filter(lambda r: abs(r) > 0.3),
       st.sampled_from(["cols", "rows"]), st.sampled_from(["w", "wb"]))
def test_merge_test_is_eq13(seed, angle, r, axis, row_vectors):
    """The engine's decision, cos and D_euc are those of equations.merge_criterion on (dropped, kept) of W'
    (rows: of W', or of [W', b'] with ``row_vectors="wb"``; ``eq13_on="w"``, the effective reading is the
    next test's)."""
    g = np.random.default_rng(seed)
    model, params = FactorizedMLP.from_dense(init_params((8, 6, 6, 3), g, np.float64), (8, 6, 6, 3), 0.2)
    params["b2"] = 0.2 * g.standard_normal(6)
    V = compared(params, 2, axis, row_vectors).copy()
    near_parallel(g, V, 1, 4, angle, r)
    set_compared(params, 2, axis, row_vectors, V)
    red = ClosestPairs(model, FusionRules(lambda1=0.0, eq13_on="w", row_vectors=row_vectors))  # Eq. (13) on W' itself
    red.refresh(params)
    k, d, c, d_euc = candidate(red, 2, axis)
    assert {k, d} == {1, 4} and np.linalg.norm(V[:, k]) <= np.linalg.norm(V[:, d]) * (1 + 1e-12)
    # from the Gram, D_euc = |w_k| sqrt(2 (1 - |cos|)) carries an absolute error ~ |w_k| sqrt(2 eps)
    assert abs(d_euc - eq.euclidean_distance(V, d, k)) < 1e-7 * np.linalg.norm(V[:, k])
    decide = eq.meets_eq13(c, d_euc, 1e-4, 1e-1)  # the engine's decision (merge.merge_step calls it)
    if abs((1 - abs(c)) - 1e-4) > 1e-9 and abs(d_euc - 0.1) > 1e-9:  # away from the thresholds
        assert decide == eq.merge_criterion(V, d, k)


@given(seeds, st.floats(0.0, 0.05), st.floats(-3.0, 3.0).filter(lambda r: abs(r) > 0.3),
       st.sampled_from(["cols", "rows"]), st.floats(0.2, 5.0), st.sampled_from(["w", "wb"]))
def test_eq13_on_effective_reads_the_networks_weights(seed, angle, r, axis, gain, row_vectors):
    """--eq13-on effective: the candidate pair's cosine and D_euc are those of FN's c W' (columns and rows),
    or of the rows [c w'_i, b'_i] with ``row_vectors="wb"``, where c = k g / ||W'||_F; the pair itself is
    the one the W' search found."""
    g = np.random.default_rng(seed)
    model, params = FactorizedMLP.from_dense(init_params((8, 6, 6, 3), g, np.float64), (8, 6, 6, 3), 0.2)
    params["b2"] = 0.2 * g.standard_normal(6)
    params["g2"][0] = gain  # c = k g / ||W'||: moves away from 1
    near_parallel(g, params["W2"] if axis == "cols" else params["W2"].T, 1, 4, angle, r)
    red = ClosestPairs(model, FusionRules(lambda1=0.0, eq13_on="effective", row_vectors=row_vectors))
    red.refresh(params)
    i, j = red.pairs[(2, red.test_kind(axis))][:2]
    k, d, c, d_euc = candidate(red, 2, axis, params)
    cW = eq.frobenius_normalize(params["W2"], model.fn_k[1], params["g2"][0])  # the network's weight
    V = compared({"W2": cW, "b2": params["b2"]}, 2, axis, row_vectors)
    vk, vd = V[:, k], V[:, d]
    assert {k, d} == {i, j} and np.linalg.norm(vk) <= np.linalg.norm(vd) + 1e-12
    assert c == pytest.approx(vk @ vd / (np.linalg.norm(vk) * np.linalg.norm(vd)), abs=1e-12)
    assert abs(d_euc - eq.euclidean_distance(V, d, k)) < 1e-7 * np.linalg.norm(vk)


def test_merge_pairs_any_falls_back_on_the_effective_weights():
    """--merge-pairs any --eq13-on effective: the closest columns are too far apart in c W', so the next
    parallel pair is fused, and its cosine and D_euc are those of c W'."""
    g = np.random.default_rng(3)
    model, params = FactorizedMLP.from_dense(init_params((8, 6, 6, 3), g, np.float64), (8, 6, 6, 3), 0.2)
    W = params["W2"]
    W[:, 1] *= 10.0  # long: a small angle is still a large D_euc
    near_parallel(g, W, 1, 4, 2e-3, 1.0)  # the closest pair
    near_parallel(g, W, 2, 5, 4e-3, 1.0)  # less parallel, short
    params["g2"][0] = 3.0
    cW = eq.frobenius_normalize(W, model.fn_k[1], 3.0)
    far, near = eq.euclidean_distance(cW, 4, 1), eq.euclidean_distance(cW, 5, 2)
    assert near < far
    red = ClosestPairs(model, FusionRules(lambda1=0.0, tau_cos=1e-4, tau_euc=(far * near) ** 0.5,
                                          merge_pairs="any", eq13_on="effective"))
    red.refresh(params)
    assert set(red.pairs[(2, "cols")][:2]) == {1, 4}
    k, d, c, d_euc = find_pair(red, params, 2, "cols")
    assert {k, d} == {2, 5}
    assert c == pytest.approx(cW[:, 2] @ cW[:, 5] / (np.linalg.norm(cW[:, 2]) * np.linalg.norm(cW[:, 5])), abs=1e-12)
    assert d_euc == pytest.approx(eq.euclidean_distance(cW, d, k), rel=1e-6)


@given(seeds, st.floats(-3.0, 3.0).filter(lambda r: abs(r) > 0.3), st.sampled_from(["sum", "lstsq"]),
       st.sampled_from(["w", "wb"]))
def test_engine_fuses_as_the_equations_do(seed, r, ratio, row_vectors):
    """Columns: W' and Q after the engine's merge equal eq.fuse_columns; rows: eq.fuse_rows with P and b'
    (the rows of W' with the least-squares bias, or with ``row_vectors="wb"`` the rows of [W', b'])."""
    g = np.random.default_rng(seed)
    sizes = (8, 6, 6, 3)
    model, params = FactorizedMLP.from_dense(init_params(sizes, g, np.float64), sizes, 0.2, fn=False)
    params["b2"] = 0.2 * g.standard_normal(6)
    W, b = params["W2"], params["b2"]
    W[:, 4] = r * W[:, 1]  # exact parallel columns 1, 4 of layer 2
    W[3] = -1.5 * W[0]  # and exact parallel rows 0, 3 of W'
    if row_vectors == "wb":
        b[3] = -1.5 * b[0]  # the augmented rows too (else Eq. 13 on [w', b'] would not pass)
    want_W, want_Q = eq.fuse_columns(params["W2"], np.eye(6), 1, 4, ratio)
    want_W2, want_b2, want_P = eq.fuse_rows(want_W, params["b2"], np.eye(6), 0, 3, ratio, row_vectors)
    red = ClosestPairs(model, FusionRules(lambda1=0.0, tau_cos=1e-9, tau_euc=1e-6, fuse_ratio=ratio,
                                          row_vectors=row_vectors))
    red.refresh(params)
    opt = {"m": {k: np.zeros_like(v) for k, v in params.items()}, "v": {k: np.zeros_like(v) for k, v in params.items()}}
    recs = merge_step(red, params, opt, step=1)
    assert [(x["axis"], x["layer"]) for x in recs] == [("cols", 2), ("rows", 2)]
    f = model.factors[1]
    np.testing.assert_allclose(params["W2"], want_W2, atol=1e-12)
    np.testing.assert_allclose(params["b2"], want_b2, atol=1e-12)
    np.testing.assert_allclose(f.dense_Q(5), want_Q, atol=1e-12)
    np.testing.assert_allclose(f.dense_P(5), want_P, atol=1e-12)


def make_parallel(g, model, params, l, axis):
    """Overwrite one vector of layer l on `axis` by r times another (rows: augmented with b')."""
    W, b = params[f"W{l}"], params[f"b{l}"]
    V = W if axis == "cols" else np.concatenate([W, b[:, None]], axis=1).T
    k, d = g.choice(V.shape[1], 2, replace=False)
    V[:, d] = g.choice([-1, 1]) * g.uniform(0.5, 2.0) * V[:, k]
    if axis == "rows":
        params[f"W{l}"], params[f"b{l}"] = V.T[:, :-1].copy(), V.T[:, -1].copy()


def one_column_rows(red):
    """Layers whose W' has one column and rows that may fuse: their W' rows are all parallel (scalars),
    so with ``row_vectors="w"`` Eq. (13) passes them whatever their biases, and the merge is not exact."""
    return [l for l in range(1, red.model.n_layers + 1)
            if red.model.shape(l)[1] == 1 and red.model.shape(l)[0] >= 2 and "rows" in red.fusable_axes(l)]


@given(seeds, st.booleans(), st.sampled_from(["carry", "reset"]), st.sampled_from(["w", "wb"]))
def test_any_sequence_of_exact_fusions_preserves_the_network_output(seed, fn, adam_merge, row_vectors):
    """Exactly parallel vectors (rows: with parallel biases) fuse without changing the network's output."""
    sizes = (6, 8, 7, 7, 4)
    model, params = random_net(seed, sizes, fn=fn, first_cols=False)
    g = np.random.default_rng(seed + 7)
    opt = {"m": {k: g.standard_normal(v.shape) for k, v in params.items()},
           "v": {k: g.uniform(0.1, 1, v.shape) for k, v in params.items()}}
    red = ClosestPairs(model, FusionRules(lambda1=1.0, tau_cos=1e-9, tau_euc=1e-6, adam_merge=adam_merge,
                                          row_vectors=row_vectors))
    x = g.standard_normal((9, 6))
    assume(row_vectors == "wb" or not one_column_rows(red))
    for step in range(1, 6):
        options = [(l, a) for l in range(1, model.n_layers + 1) for a in red.fusable_axes(l)
                   if (model.shape(l)[1] if a == "cols" else model.shape(l)[0]) >= 2
                   and not (row_vectors == "w" and a == "cols" and model.shape(l)[1] == 2)]  # see one_column_rows
        if not options:
            break
        l, axis = options[g.integers(len(options))]
        make_parallel(g, model, params, l, axis)
        before = model.forward(params, x)[0]
        shape = model.shape(l)
        red.refresh(params)  # after an update, as in training
        recs = merge_step(red, params, opt, step, probe=x)
        # our pair is fused (and any other exactly parallel pair, e.g. all columns of a 1-row W')
        assert (l, axis) in [(rec["layer"], rec["axis"]) for rec in recs]
        if len(recs) == 1:
            assert model.shape(l) == ((shape[0], shape[1] - 1) if axis == "cols" else (shape[0] - 1, shape[1]))
        np.testing.assert_allclose(model.forward(params, x)[0], before, atol=1e-10)
        assert max(rec["probe_change"] for rec in recs) < 1e-10
        for (ll, kind), pair in red.pairs.items():  # the pairs after the merges are those of the new W'
            assert_is_closest(pair, model.layers[ll - 1], params, kind)
        for k, v in params.items():
            assert opt["m"][k].shape == v.shape == opt["v"][k].shape


@given(seeds, st.sampled_from(["cols", "rows"]), st.sampled_from(["carry", "reset"]))
def test_adam_moments_are_carried_as_documented(seed, axis, how):
    g = np.random.default_rng(seed)
    sizes = (5, 6, 6, 3)
    model, params = FactorizedMLP.from_dense(init_params(sizes, g, np.float64), sizes, 0.2)
    make_parallel(g, model, params, 2, axis)
    opt = {"m": {k: g.standard_normal(v.shape) for k, v in params.items()},
           "v": {k: g.uniform(0.1, 1, v.shape) for k, v in params.items()}}
    old_m, old_v = {k: v.copy() for k, v in opt["m"].items()}, {k: v.copy() for k, v in opt["v"].items()}
    red = ClosestPairs(model, FusionRules(lambda1=0.0, tau_cos=1e-9, tau_euc=1e-6, adam_merge=how))
    red.refresh(params)
    (rec,) = merge_step(red, params, opt, 1)
    k, d, r, s = rec["kept"], rec["dropped"], rec["r"], rec["s"]
    pos = k - (d < k)
    for name in ["W2"] + (["b2"] if axis == "rows" else []):
        take = (lambda a, i: a[:, i]) if (axis == "cols") else (lambda a, i: a[i])
        want_m = (r * take(old_m[name], d) + take(old_m[name], k)) / s if how == "carry" else 0
        want_v = (r * r * take(old_v[name], d) + take(old_v[name], k)) / s**2 if how == "carry" else 0
        np.testing.assert_allclose(take(opt["m"][name], pos), want_m, atol=1e-12)
        np.testing.assert_allclose(take(opt["v"][name], pos), want_v, atol=1e-12)


@given(seeds, st.booleans(), st.sampled_from(["cols", "rows"]))
def test_the_merged_vectors_gradient_is_r_g_d_plus_g_k_over_s(seed, fn, axis):
    """Why Adam's first moment carries exactly (``adam_merge = "carry"``): for an exactly parallel pair (rows: with
    their biases) the loss gradient at the merged vector after a real merge_step is (r g_d + g_k)/s of the pair's
    gradients before it, with and without FN, for W' and (rows) b'. Two backward passes, not the formula again."""
    g = np.random.default_rng(seed)
    sizes = (5, 6, 6, 3)
    model, params = FactorizedMLP.from_dense(init_params(sizes, g, np.float64), sizes, 0.2, fn=fn)
    make_parallel(g, model, params, 2, axis)
    x, y = g.standard_normal((7, 5)), g.integers(0, 3, 7)
    before = model.loss_and_grads(params, x, y, training=False, rng=None, lambda2=0.0)[2]
    opt = {"m": {k: np.zeros_like(v) for k, v in params.items()}, "v": {k: np.zeros_like(v) for k, v in params.items()}}
    red = ClosestPairs(model, FusionRules(lambda1=0.0, tau_cos=1e-9, tau_euc=1e-6))
    red.refresh(params)
    (rec,) = merge_step(red, params, opt, 1)
    after = model.loss_and_grads(params, x, y, training=False, rng=None, lambda2=0.0)[2]
    k, d, r, s = rec["kept"], rec["dropped"], rec["r"], rec["s"]
    pos = k - (d < k)
    take = (lambda a, i: a[:, i]) if axis == "cols" else (lambda a, i: a[i])
    for name in ["W2"] + (["b2"] if axis == "rows" else []):
        want = (r * take(before[name], d) + take(before[name], k)) / s
        np.testing.assert_allclose(take(after[name], pos), want, rtol=1e-8, atol=1e-11, err_msg=name)


def assert_is_closest(pair, layer, params, kind):
    """`pair` = (i, j, cos, |v_i|, |v_j|) is a closest pair of the current vectors of `layer` on `kind`."""
    V = layer.vectors(params, kind)
    i, j, c, ni, nj = pair
    assert abs(c - eq.cos_matrix(V)[i, j]) < 1e-10 and abs(1 - c * c - eq.rare(V)) < 1e-10
    np.testing.assert_allclose([ni, nj], np.linalg.norm(V[:, [i, j]], axis=0), rtol=1e-10)


def test_search_every_k_searches_on_multiples_of_k_and_remeasures_in_between():
    model, params = random_net(4, (6, 7, 7, 4), first_cols=False)
    red = ClosestPairs(model, FusionRules(lambda1=1.0, search_every=3))
    red.refresh(params, step=0)
    found = dict(red.pairs)
    for l, kind in found:
        assert_is_closest(red.pairs[(l, kind)], model.layers[l - 1], params, kind)
    g = np.random.default_rng(0)
    for W in weights(model, params):
        W += 0.5 * g.standard_normal(W.shape)  # a large update: the closest pairs move
    red.refresh(params, step=1)
    for (l, kind), pair in red.pairs.items():
        assert pair[:2] == found[(l, kind)][:2]  # the same pairs ...
        V = model.layers[l - 1].vectors(params, kind)
        assert abs(pair[2] - eq.cos_matrix(V)[pair[0], pair[1]]) < 1e-12  # ... measured on the new vectors
    red.refresh(params, step=3)
    for (l, kind), pair in red.pairs.items():
        assert_is_closest(pair, model.layers[l - 1], params, kind)


@pytest.mark.parametrize("l, shape, axes", [
    (1, (500, 784), []),  # the input layer's columns never fuse, and its rows are the shorter axis
    (1, (500, 400), ["rows"]),
    (2, (500, 500), ["cols", "rows"]),  # square: both
    (2, (499, 500), ["cols"]),
    (2, (500, 499), ["rows"]),
    (6, (10, 500), ["cols"]),  # the classification layer's rows never fuse
    (6, (10, 10), []),  # and its columns stop at the class count
])
def test_which_axes_may_fuse(l, shape, axes):
    """The one rule (equations.fusable_axes), as the engine's layer and the reference's layer read it."""
    from numpy_dlra.dlra.layer import FactorizedLayer, LayerFactors
    from numpy_dlra.dlra.reference import DenseLayer

    assert eq.fusable_axes(*shape, l == 1, l == 6, 10) == axes
    assert FactorizedLayer(l, 6, LayerFactors.identity(*shape), None, 10).fusable_axes() == axes
    m, n = shape
    assert DenseLayer(l, 6, 10, np.ones(shape), np.zeros(m), 1.0, 1.0, np.eye(m), np.eye(n)).fusable_axes() == axes


def _rotated(g, v, one_minus_cos):
    """A vector of |v|'s length at angle arccos(1 - one_minus_cos) from v."""
    u = g.standard_normal(v.shape)
    u -= (u @ v) / (v @ v) * v
    u *= np.linalg.norm(v) / np.linalg.norm(u)
    c = 1.0 - one_minus_cos
    return c * v + np.sqrt(1.0 - c * c) * u


@pytest.mark.parametrize("which", ["closest", "one", "any"])
def test_which_pairs_eq13_fuses_when_the_closest_pair_is_too_far_apart(which):
    """Columns 0, 1: long (|w| = 1000) at 1 - cos = 5e-5: the closest pair, but D_euc = 10 > tau_euc.
    Columns 5, 6: short (|w| = 1) at 1 - cos = 8e-5: D_euc = 0.013. Only "any" looks past the closest pair;
    "one" and "closest" wait for it (here: "one" fuses nothing either)."""
    g = np.random.default_rng(0)
    sizes = (6, 40, 12, 3)
    model, params = FactorizedMLP.from_dense(init_params(sizes, g, np.float64), sizes, 0.2, fn=False)
    W = params["W2"]
    W[:, 0] = 1000 * W[:, 0] / np.linalg.norm(W[:, 0])
    W[:, 1] = _rotated(g, W[:, 0], 5e-5)
    W[:, 5] /= np.linalg.norm(W[:, 5])
    W[:, 6] = _rotated(g, W[:, 5], 8e-5)
    pairs = ClosestPairs(model, FusionRules(lambda1=0.0, merge_pairs=which))
    pairs.refresh(params)
    assert pairs.pairs[(2, "cols")][:2] == (0, 1)
    opt = {"m": {k: np.zeros_like(v) for k, v in params.items()}, "v": {k: np.zeros_like(v) for k, v in params.items()}}
    recs = merge_step(pairs, params, opt, 1)
    want = [(5, 6)] if which == "any" else []
    recs = [r for r in recs if r["layer"] == 2]  # (the 3 x 12 last layer may hold a parallel pair of its own)
    assert [tuple(sorted((r["kept"], r["dropped"]))) for r in recs] == want
    if recs:
        assert recs[0]["d_euc"] < 0.1 and 1 - abs(recs[0]["cos"]) < 1e-4


@pytest.mark.parametrize("which, n_merges", [("closest", 2), ("one", 1), ("any", 2)])
def test_one_fuses_at_most_once_per_layer_axis_and_step(which, n_merges):
    g = np.random.default_rng(1)
    sizes = (6, 40, 12, 3)
    model, params = FactorizedMLP.from_dense(init_params(sizes, g, np.float64), sizes, 0.2, fn=False)
    W = params["W2"]
    W[:, 4] = 0.7 * W[:, 1]
    W[:, 7] = -1.3 * W[:, 1]  # three exactly parallel columns: two fusions to make
    pairs = ClosestPairs(model, FusionRules(lambda1=0.0, merge_pairs=which))
    pairs.refresh(params)
    opt = {"m": {k: np.zeros_like(v) for k, v in params.items()}, "v": {k: np.zeros_like(v) for k, v in params.items()}}
    recs = merge_step(pairs, params, opt, 1)
    assert [(r["layer"], r["axis"]) for r in recs if r["layer"] == 2] == [(2, "cols")] * n_merges


@pytest.mark.parametrize("scale", [1e-13, 1e-19, 1e-30])
def test_a_vector_near_zero_never_makes_a_cosine_above_one_an_overflow_or_a_nan(scale):
    """A unit that died under L2 leaves a column of W' near zero (in a CNN run of the paper's settings, norms of
    1e-19 in float32: |w|^2 near underflow, its Gram entries rounding). Its cosine is then either measured
    (scale 1e-13: RaRe's gradient, ~1/|w|, is taken through unit vectors and matches the float64 definition) or
    treated as zero (cos 0 with everything: never fused, no RaRe pull); never |cos| > 1, never inf or NaN."""
    g = np.random.default_rng(0)
    sizes = (8, 6, 6, 4)
    model, params = FactorizedMLP.from_dense(init_params(sizes, g, np.float32), sizes, dropout=0.0)
    W = params["W2"]
    W[:, 3] = W[:, 1] * np.float32(scale)
    W[:, 3] += np.float32(scale * 1e-3) * g.standard_normal(6).astype(np.float32)  # nearly parallel to column 1
    i, j, c = closest_pair(W.T @ W)
    assert abs(c) <= 1.0
    pairs = ClosestPairs(model, FusionRules(lambda1=20.0))
    pairs.refresh(params)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    rare_term(pairs, params, grads)
    assert all(np.isfinite(v).all() for v in grads.values())
    if scale == 1e-13:  # measured: the closest pair is (1, 3); the short column's gradient (~1e10) is the definition's
        assert (i, j) == (1, 3)
        c_tot = sum(layer.n_weights() for layer in model.layers)
        want = 20.0 * W.size / (2.0 * c_tot) * eq.rare_grad(W.astype(np.float64))  # Eq. (16)'s columns term, layer 2
        np.testing.assert_allclose(grads["W2"][:, 3], want[:, 3], rtol=1e-3)
    else:  # treated as zero: not the closest pair, and no merge on it
        assert 3 not in (i, j)
        opt_state = {"t": 1, "m": {k: np.zeros_like(v) for k, v in params.items()},
                     "v": {k: np.zeros_like(v) for k, v in params.items()}}
        recs = merge_step(pairs, params, opt_state, 1)
        assert not any(r["layer"] == 2 and 3 in (r["kept"], r["dropped"]) for r in recs)


def test_a_fusion_with_a_huge_ratio_carries_adams_moments_without_overflow():
    """r = <w_d, w_k> / <w_k, w_k> of a kept vector near zero can exceed 1e19: r^2 v_d would overflow float32. The
    carried moments are then computed with the weights r/s and 1/s, and stay finite (v_k ~ v_d, m_k ~ m_d)."""
    from numpy_dlra.dlra.layer import _moments_carried
    m = np.array([[0.5, 1.0], [2.0, -3.0]], dtype=np.float32)
    v = np.array([[1e-3, 2e-3], [5.0, 7.0]], dtype=np.float32)
    r = 3e20
    s = float(np.sqrt(r * r + 1.0))
    _moments_carried(m, v, 0, 1, r, s, np.float32)
    assert np.isfinite(m).all() and np.isfinite(v).all()
    np.testing.assert_allclose(m[0], [2.0, -3.0], rtol=1e-6)
    np.testing.assert_allclose(v[0], [5.0, 7.0], rtol=1e-6)
