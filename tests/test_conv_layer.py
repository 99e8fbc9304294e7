"""DLRA on convolutions (the paper's "other architectures" paragraph): a kernel as a C_o x (kh kw C_i) matrix held as
P FN(W') Q, under both readings of a column ("channel", "coord"). Specified here: the factorized CNN computes the
dense CNN; its gradients are the central differences; exactly parallel filters, channels or coordinates fuse
without changing the function (through ReLU and max pooling, which commute with positive scaling); the engine
makes the reference's merges and parameters step by step; and the export is a narrower plain CNN."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numpy_dlra.dlra import reference as ref
from numpy_dlra.dlra.algorithm1 import StepSettings, train_step
from numpy_dlra.dlra.conv_layer import ConvLayer
from numpy_dlra.dlra.conv_network import FactorizedCNN
from numpy_dlra.dlra.layer import LayerFactors
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules
from numpy_dlra.experiments.train import make_rngs
from numpy_dlra.models.cnn import CNN
from numpy_dlra.nn.conv import MaxPool2D
from numpy_dlra.nn.gradcheck import check_param_grads, directional_check
from numpy_dlra.nn.optim import Adam

READINGS = [("channel", "longer"), ("channel", "both"), ("coord", "longer"), ("coord", "both")]
RULES = FusionRules()


def tiny_cnn(seed, columns="channel", axes="longer", shape=(8, 8, 2), widths=(5, 6, 7), classes=3, fn=True):
    """A dense CNN (random biases) and its factorized form, float64."""
    g = np.random.default_rng(seed)
    cnn = CNN(shape, classes, widths=widths)
    params = cnn.init_params(g, np.float64)
    for k in params:
        if k.startswith("b"):
            params[k] = 0.1 * g.standard_normal(params[k].shape)
    model, fparams = FactorizedCNN.from_cnn(cnn, params, fn=fn, columns=columns, axes=axes)
    return cnn, params, model, fparams


def scramble(model, params, seed):
    """Random P, Q of both signs on every layer (as merges would leave them, several outputs per row of W'), and
    W', b' cut to match: a general state of the factorized network."""
    g = np.random.default_rng(seed)
    factors = []
    for layer in model.layers:
        f, (mp, np_) = layer.factors, layer.shape()
        m, n = len(f.p_idx), len(f.q_idx)
        mp2 = mp if layer.last else max(1, mp - 2)
        np2 = np_ if layer.first else max(1, np_ - 1)
        p_idx = np.concatenate([np.arange(mp2), g.integers(0, mp2, m - mp2)]) if not layer.last else np.arange(m)
        p_scale = np.ones(m) if layer.last else g.uniform(0.5, 1.5, m) * g.choice([-1.0, 1.0], m)
        q_idx = np.concatenate([np.arange(np2), g.integers(0, np2, n - np2)]) if not layer.first else np.arange(n)
        q_scale = np.ones(n) if layer.first else g.uniform(0.5, 1.5, n) * g.choice([-1.0, 1.0], n)
        factors.append(LayerFactors(p_idx, p_scale, q_idx, q_scale))
        W = params[layer.keys["W"]]
        if isinstance(layer, ConvLayer) and layer.columns == "channel":
            W = W.reshape(mp, layer.positions, np_)[:mp2, :, :np2].reshape(mp2, -1)
        else:
            W = W[:mp2, :np2]
        params[layer.keys["W"]], params[layer.keys["b"]] = np.ascontiguousarray(W), params[layer.keys["b"]][:mp2].copy()
    new = FactorizedCNN(model.input_shape, model.sizes, factors, model.fn_k, np, np.float64, model.l2_on,
                        model.columns, model.axes)
    return new, params


@pytest.mark.parametrize("columns", ["channel", "coord"])
def test_the_factorized_cnn_computes_the_dense_cnn(columns):
    cnn, params, model, fparams = tiny_cnn(0, columns)
    x = np.random.default_rng(1).standard_normal((4, 128))
    np.testing.assert_allclose(model.forward(fparams, x)[0], cnn.forward(params, x)[0], rtol=1e-12, atol=1e-12)
    assert model.param_count() == cnn.param_count() + 4  # FN's gains


@pytest.mark.parametrize("columns", ["channel", "coord"])
def test_gradients_are_central_differences_with_random_P_and_Q(columns):
    """Element-wise on every W', b', g of a scrambled net (signs, shared rows and columns, the pool), and along a
    random direction; the input gradient too."""
    _, _, model, params = tiny_cnn(2, columns, shape=(6, 6, 2), widths=(4, 5, 3))
    model, params = scramble(model, params, 3)
    g = np.random.default_rng(4)
    x, y = g.standard_normal((3, 72)), g.integers(0, 3, 3)

    def loss(p=None):
        return model.loss_and_grads(p or params, x, y, training=False, rng=None)[0]

    _, _, grads = model.loss_and_grads(params, x, y, training=False, rng=None)
    errors = check_param_grads(loss, params, grads)
    assert max(errors.values()) < 1e-6, errors
    analytic, numeric = directional_check(lambda p: loss(p), params, grads, g)
    assert analytic == pytest.approx(numeric, rel=1e-6)
    logits, caches = model.forward(params, x)
    v = g.standard_normal(logits.shape)
    dx, _ = model.backward(v, caches)
    h = 1e-6
    for i in g.choice(x.size, 10, replace=False):
        xp_, xm = x.copy(), x.copy()
        xp_.flat[i] += h
        xm.flat[i] -= h
        num = ((model.forward(params, xp_)[0] - model.forward(params, xm)[0]) * v).sum() / (2 * h)
        assert dx.flat[i] == pytest.approx(num, rel=1e-6, abs=1e-9)


def test_relu_and_max_pooling_commute_with_a_positive_scale():
    """max-pool(relu(p u)) = p max-pool(relu(u)) for p > 0 (and relu(p u) = |p| relu(sign(p) u) for either sign):
    why fused output channels stay exact through the pool."""
    g = np.random.default_rng(5)
    u = g.standard_normal((2, 6, 6, 3))
    p = g.uniform(0.1, 3.0, 3)
    pool = lambda a: MaxPool2D().forward({}, a)[0]  # noqa: E731
    np.testing.assert_allclose(pool(np.maximum(p * u, 0)), p * pool(np.maximum(u, 0)), rtol=1e-15)
    s = -p
    np.testing.assert_allclose(pool(np.maximum(s * u, 0)), p * pool(np.maximum(-u, 0)), rtol=1e-15)


def _parallel_case(seed, columns, axis):
    """A scrambled engine net in which vector d of a random conv layer's `axis` is r times vector k (a filter and
    its bias for rows, a channel or a coordinate for columns); random Adam moments."""
    g = np.random.default_rng(seed)
    _, _, model, params = tiny_cnn(seed % 1000, columns)
    model, params = scramble(model, params, seed % 997)
    options = [layer for layer in model.layers[:3] if layer.shape()[0 if axis == "rows" else 1] >= 2
               and not (axis == "cols" and layer.first)]
    layer = options[g.integers(len(options))]
    n = layer.shape()[0 if axis == "rows" else 1]
    k, d = (int(v) for v in g.choice(n, 2, replace=False))
    r = float(g.uniform(1.1, 3.0) * g.choice([-1.0, 1.0]))  # |r| > 1: k is the shorter vector, the one both keep
    W, b = params[layer.keys["W"]], params[layer.keys["b"]]
    if axis == "cols":
        V = layer.view(W, "cols")
        V[:, d] = r * V[:, k]
    else:
        W[d], b[d] = r * W[k], r * b[k]
    state = {"t": 3, "m": {n_: g.standard_normal(v.shape) for n_, v in params.items()},
             "v": {n_: g.uniform(0.1, 1.0, v.shape) for n_, v in params.items()}}
    return model, params, state, layer, k, d


@given(st.integers(0, 2**31 - 1), st.sampled_from(["channel", "coord"]), st.sampled_from(["cols", "rows"]))
def test_an_exactly_parallel_pair_fuses_without_changing_the_cnn_in_both_implementations(seed, columns, axis):
    """Engine: the network's logits (through ReLU, the pool and the next layer's connector) and its dense kernels
    are unchanged by the fusion. Reference: P FN(W') Q and P b' unchanged. From one state both fuse to the same
    W', b', g, P, Q and Adam moments."""
    model, params, state, layer, k, d = _parallel_case(seed, columns, axis)
    x = np.random.default_rng(seed + 1).standard_normal((3, 128))
    before, dense_before = model.forward(params, x)[0], layer.to_dense(params)
    channels = model.sizes[layer.l - 1] if layer.l > 1 else model.input_shape[2]
    twin = ref.ConvDenseLayer.from_layer(layer, layer.arrays(params, state), model.n_layers, 3, channels)
    twin_before = twin.to_dense()
    layer.fuse(params, state, "cols" if axis == "cols" else "rows", k, d, RULES)
    twin.fuse(axis, k, d)
    model.rebuild()
    np.testing.assert_allclose(model.forward(params, x)[0], before, rtol=1e-9, atol=1e-10)
    for got, want in zip(layer.to_dense(params), dense_before):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    for got, want in zip(twin.to_dense(), twin_before):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    a, b = layer.arrays(params, state), twin.arrays()
    for name in ("W", "b", "g", "P", "Q"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-12)
    for mom in "mv":
        for name in ("W", "b"):
            np.testing.assert_allclose(a[mom][name], b[mom][name], rtol=1e-12, atol=1e-12)


def reference_of(model, params, state):
    """The reference Net in the engine's state, layer by layer through ``arrays()``."""
    L, C = model.n_layers, model.sizes[-1]
    ins = (model.input_shape[2],) + tuple(model.sizes[1:3])  # the dense input channels of layers 1-3
    layers = [ref.ConvDenseLayer.from_layer(layer, layer.arrays(params, state), L, C, ins[layer.l - 1])
              if isinstance(layer, ConvLayer) else ref.DenseLayer.from_arrays(layer.arrays(params, state), layer.l, L, C)
              for layer in model.layers]
    return ref.Net(layers, state["t"])


@pytest.mark.parametrize("columns,axes", READINGS)
def test_the_engine_makes_the_references_merges_and_parameters_on_a_cnn(columns, axes):
    """A few hundred steps of a tiny CNN with a strong RaRe term and a loose tau_cos: from the same state, each
    step makes the same merges (layer, axis, kept, dropped), the same loss and the same parameters."""
    _, _, model, params = tiny_cnn(7, columns, axes, shape=(8, 8, 2), widths=(6, 6, 8), classes=3)
    settings = StepSettings(lambda2=0.1)
    rules = FusionRules(lambda1=200.0, tau_cos=2e-3, tau_euc=10.0)
    opt = Adam(1e-2)
    state = opt.init(params)
    pairs = ClosestPairs(model, rules)
    pairs.refresh(params)
    rngs = make_rngs(0)
    g = np.random.default_rng(8)
    x, y = g.standard_normal((48, 128)), g.integers(0, 3, 48)
    made = []
    for step in range(1, 201):
        idx = g.choice(48, 16, replace=False)
        net = reference_of(model, params, state)
        r = train_step(model, params, opt, state, x[idx], y[idx], settings, rngs, pairs)
        loss, want = ref.train_step(net, x[idx], y[idx], rules.lambda1, settings.lambda2, 1e-2, rules.tau_cos,
                                    rules.tau_euc)
        got = [(m["layer"], m["axis"], m["kept"], m["dropped"]) for m in r.merges]
        assert got == want, f"step {step}"
        assert r.loss == pytest.approx(loss, rel=1e-10), f"step {step}"
        for layer, twin in zip(model.layers, net.layers):
            a, b = layer.arrays(params, state), twin.arrays()
            for name in ("W", "b", "g", "P", "Q"):
                np.testing.assert_allclose(a[name], b[name], rtol=1e-8, atol=1e-11, err_msg=f"step {step} {name}")
        made += got
    axes_made = {(l, a) for l, a, _, _ in made}
    assert (2, "cols") in axes_made and len(axes_made) >= 3, axes_made  # a kernel's columns, and more
    if axes == "both" or columns == "channel":
        assert (1, "rows") in axes_made, axes_made  # filters of the first convolution
    assert len(made) >= 8, made


@pytest.mark.parametrize("columns,axes", READINGS)
def test_the_export_is_a_narrower_plain_cnn_with_the_same_logits(columns, axes):
    """After merges of both axes and both signs, the exported CNN (fewer channels) gives the run's logits."""
    _, _, model, params = tiny_cnn(9, columns, axes, widths=(6, 6, 8))
    model, params = scramble(model, params, 10)
    opt = Adam(1e-2)
    state = opt.init(params)
    pairs = ClosestPairs(model, FusionRules(lambda1=200.0, tau_cos=0.05, tau_euc=10.0))
    pairs.refresh(params)
    g = np.random.default_rng(11)
    x, y = g.standard_normal((16, 128)), g.integers(0, 3, 16)
    merged = 0
    for _ in range(20):
        merged += len(train_step(model, params, opt, state, x, y, StepSettings(), make_rngs(0), pairs).merges)
    assert merged > 0
    out = model.export(params)
    plain = model.exported_model()
    assert plain.param_count() < CNN((8, 8, 2), 3, widths=(6, 6, 8)).param_count()
    np.testing.assert_allclose(plain.forward(out, x)[0], model.forward(params, x)[0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("columns", ["channel", "coord"])
def test_the_dense_l2_reading_is_the_l2_of_the_dense_kernels(columns):
    """--l2-on dense on a kernel: (1/N) sum_l ||P FN(W') Q||_F^2 with Q over the patch (I (x) Q for channel columns),
    after merges of both signs; its gradient is the central difference."""
    _, _, model, params = tiny_cnn(12, columns, shape=(6, 6, 2), widths=(4, 5, 3))
    model, params = scramble(model, params, 13)
    model.l2_on = "dense"
    want = sum(float((layer.to_dense(params)[0] ** 2).sum()) for layer in model.layers) / model.n_layers
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    assert model.add_l2(params, grads, 1.0) == pytest.approx(want, rel=1e-10)

    def l2():
        return sum(float((layer.to_dense(params)[0] ** 2).sum()) for layer in model.layers) / model.n_layers

    errors = check_param_grads(l2, {k: v for k, v in params.items() if k[0] in "Wg"}, grads)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("axes", ["longer", "both"])
def test_the_export_with_channel_maps_keeps_merged_input_channels_out_of_the_kernels(axes):
    """Channel columns: with the connectors kept as 1 x 1 maps (M2, M3), the exported kernels read n' channels, the
    file is smaller than the folded one once columns have merged, and experiments.export.cnn_forward gives the
    run's logits from either form."""
    from numpy_dlra.experiments.export import cnn_forward
    _, _, model, params = tiny_cnn(14, "channel", axes, widths=(6, 6, 8))
    state = Adam(1e-2).init(params)
    g = np.random.default_rng(15)
    for layer, (k, d, r) in zip(model.layers[1:3], [(0, 4, -1.5), (2, 1, 2.0)]):  # a channel column of each, fused
        V = layer.view(params[layer.keys["W"]], "cols")
        V[:, d] = r * V[:, k]
        layer.fuse(params, state, "cols", k, d, RULES)
    model.rebuild()
    x = g.standard_normal((5, 128))
    want = model.forward(params, x)[0]
    folded, mapped = model.export(params), model.export(params, channel_maps=True)
    np.testing.assert_allclose(cnn_forward(folded, x, (8, 8, 2)), want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(cnn_forward(mapped, x, (8, 8, 2)), want, rtol=1e-10, atol=1e-10)
    assert mapped["M2"].shape == (5, 6) and mapped["M3"].shape == (5, 6)
    assert mapped["K2"].shape == (3, 3, 5, 6) and folded["K2"].shape == (3, 3, 6, 6)
    assert mapped["W3"].shape == (8, 4 * 5) and folded["W3"].shape == (8, 4 * 6)  # a 2 x 2 pooled image
    assert sum(a.size for a in mapped.values()) < sum(a.size for a in folded.values())
