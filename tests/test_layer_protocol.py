"""One layer protocol, implemented twice: the engine's FactorizedLayer (sparse P, Q; arrays in the network's
params) and the reference's DenseLayer (dense P, Q, from dlra/equations.py alone). The fusing identities hold
for both, and from one state both make the same fusion (Eqs. 7-12, corrected), compared through ``arrays()``."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numpy_dlra.dlra.pairs import FusionRules
from numpy_dlra.dlra.reference import DenseLayer
from test_factorized import random_net

RULES = FusionRules()  # the defaults: r by least squares, Adam's moments carried, rows of W'


def engine_state(seed, sizes):
    """A random engine net (random P, Q of both signs, FN on), random Adam moments; returns (model, params, state)."""
    model, params = random_net(seed, sizes, fn=True)
    g = np.random.default_rng(seed + 7)
    state = {"t": 3, "m": {k: g.standard_normal(v.shape) for k, v in params.items()},
             "v": {k: g.uniform(0.1, 1.0, v.shape) for k, v in params.items()}}
    return model, params, state


def make_parallel(g, layer, params, axis, k, d, r):
    """Vector d of `axis` becomes r times vector k exactly (and, for rows, its bias too): a pair Eq. (13) fuses
    without changing the layer's function."""
    W, b = params[layer.keys["W"]], params[layer.keys["b"]]
    if axis == "cols":
        W[:, d] = r * W[:, k]
    else:
        W[d], b[d] = r * W[k], r * b[k]


def pair_case(draw_seed, sizes, want):
    """(model, params, state, layer, axis, k, d, r) for a random layer and axis with at least two vectors."""
    g = np.random.default_rng(draw_seed)
    model, params, state = engine_state(draw_seed, sizes)
    options = [(layer, axis) for layer in model.layers for axis in ("cols", "rows")
               if layer.shape()[0 if axis == "rows" else 1] >= 2 and (want is None or axis == want)]
    if not options:
        return None
    layer, axis = options[g.integers(len(options))]
    n = layer.shape()[0 if axis == "rows" else 1]
    k, d = (int(v) for v in g.choice(n, 2, replace=False))
    r = float(g.uniform(0.3, 3.0) * g.choice([-1.0, 1.0]))
    make_parallel(g, layer, params, axis, k, d, r)
    return model, params, state, layer, axis, k, d, r


seeds = st.integers(0, 2**32 - 1)
axes = st.sampled_from(["cols", "rows"])


@given(seeds, axes)
def test_an_exactly_parallel_pair_fuses_without_changing_the_layer_in_both_implementations(seed, axis):
    case = pair_case(seed, (6, 7, 6, 4), axis)
    if case is None:
        return
    model, params, state, layer, axis, k, d, r = case
    twin = DenseLayer.from_arrays(layer.arrays(params, state), layer.l, model.n_layers, model.sizes[-1])
    W0, b0 = layer.to_dense(params)
    m0, n0 = layer.shape()
    layer.fuse(params, state, axis, k, d, RULES)
    twin.fuse(axis, k, d)
    for W, b in (layer.to_dense(params), twin.to_dense()):  # P FN(W') Q and P b': the function is unchanged
        np.testing.assert_allclose(W, W0, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b, b0, rtol=1e-10, atol=1e-12)
    assert layer.shape() == twin.shape() == ((m0, n0 - 1) if axis == "cols" else (m0 - 1, n0))


@given(seeds, axes)
def test_from_one_state_both_implementations_make_the_same_fusion(seed, axis):
    """Any pair (not only parallel ones; the shorter vector kept, as Eq. 13's reading and the reference's fuse_columns
    and fuse_rows decide), any signs of P and Q: W', b', g, P, Q and Adam's m, v agree."""
    g = np.random.default_rng(seed)
    model, params, state = engine_state(seed, (6, 7, 6, 4))
    layer = model.layers[int(g.integers(model.n_layers))]
    n = layer.shape()[0 if axis == "rows" else 1]
    if n < 2:
        return
    i, j = (int(v) for v in g.choice(n, 2, replace=False))
    V = layer.vectors(params, axis)
    k, d = (i, j) if np.linalg.norm(V[:, i]) <= np.linalg.norm(V[:, j]) else (j, i)  # the shorter is kept (Eq. 13)
    twin = DenseLayer.from_arrays(layer.arrays(params, state), layer.l, model.n_layers, model.sizes[-1])
    r_engine, _ = layer.fuse(params, state, axis, k, d, RULES)
    r_ref, _ = twin.fuse(axis, k, d)
    assert r_engine == pytest.approx(r_ref, rel=1e-12)
    a, b = layer.arrays(params, state), twin.arrays()
    for name in ("W", "b", "g", "P", "Q"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-14)
    for moment in "mv":
        for name in ("W", "b", "g"):
            np.testing.assert_allclose(a[moment][name], b[moment][name], rtol=1e-12, atol=1e-14)


@given(seeds)
def test_the_engine_network_computes_the_dense_layers_of_its_protocol(seed):
    """The network's forward pass (eval) is the composition of the layers' dense forms (P FN(W') Q, P b')."""
    model, params, _ = engine_state(seed, (6, 7, 6, 4))
    x = np.random.default_rng(seed).standard_normal((5, 6))
    h = x
    for layer in model.layers:
        W, b = layer.to_dense(params)
        h = h @ W.T + b
        if not layer.last:
            h = np.maximum(h, 0)
    np.testing.assert_allclose(model.forward(params, x)[0], h, rtol=1e-10, atol=1e-12)
