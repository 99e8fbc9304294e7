"""The engine against the reference Algorithm 1 (numpy_dlra.dlra.reference), written from the equations alone:
the same merges (layer, axis, kept, dropped) at the same steps, and the same W', b', g, P, Q and Adam moments
to rounding.

Training is chaotic: two float64 implementations that differ in the last bit drift apart exponentially (here
from 1e-15 at step 50 to 1e-3 at step 300). So each step starts the reference from the engine's state, and
the step itself is compared: every one of a few hundred steps, merges included, from identical states.
"""
import numpy as np
import pytest

from numpy_dlra.dlra import reference as ref
from numpy_dlra.dlra.algorithm1 import train_step
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules
from numpy_dlra.dlra.network import FactorizedMLP
from numpy_dlra.experiments.config import TrainConfig
from numpy_dlra.experiments.train import make_rngs
from numpy_dlra.models.mlp import init_params
from numpy_dlra.nn.optim import Adam


def engine_and_reference(seed, sizes, **rules):
    """An engine net on `sizes` (float64, FN, no dropout) with random biases, and its settings (no gradient noise;
    `rules` are TrainConfig fields)."""
    cfg = TrainConfig(method="dlra", dtype="float64", seed=seed, dropout=0.0, grad_noise_eta=0.0, probe_size=0,
                      **rules)  # the settings the step reads; the net is built here on `sizes`
    g = np.random.default_rng(seed)
    model, params = FactorizedMLP.from_dense(init_params(sizes, g, np.float64), sizes, dropout=0.0)
    for l in range(1, model.n_layers + 1):
        params[f"b{l}"][:] = 0.1 * g.standard_normal(params[f"b{l}"].shape)
    return cfg, model, params, make_rngs(seed)


def reference_of(model, params, state):
    """The reference Net in the engine's state: each layer through the interface both implement (arrays)."""
    L = model.n_layers
    return ref.Net([ref.DenseLayer.from_arrays(layer.arrays(params, state), layer.l, L, model.sizes[-1])
                    for layer in model.layers], state["t"])


def assert_same(model, params, state, net):
    """Every layer's W', b', g, P, Q and Adam moments, read through the same interface, agree to rounding."""
    close = dict(rtol=1e-9, atol=1e-12)
    for layer, twin in zip(model.layers, net.layers):
        a, b = layer.arrays(params, state), twin.arrays()
        for name in ("W", "b", "g", "P", "Q"):
            np.testing.assert_allclose(a[name], b[name], **close)
        for moment in "mv":
            for name in ("W", "b", "g"):
                np.testing.assert_allclose(a[moment][name], b[moment][name], **close)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_engine_makes_the_references_merges_and_parameters(seed):
    """300 steps with a strong RaRe term, a large step and a loose tau_cos, so that every hidden layer merges
    on both axes: from the same state, each step makes the same merges and the same parameters."""
    cfg, model, params, rngs = engine_and_reference(seed, (20, 12, 12, 12, 10), lambda1=200.0, lr=1e-2,
                                                    tau_cos=1e-3, tau_euc=10.0)
    opt = Adam(cfg.lr, cfg.beta1, cfg.beta2, cfg.eps)
    state = opt.init(params)
    pairs = ClosestPairs(model, FusionRules.from_config(cfg))
    pairs.refresh(params)
    g = np.random.default_rng(seed + 2)
    x, y = g.standard_normal((64, 20)), g.integers(0, 10, 64)
    made = []
    for step in range(1, 301):
        idx = g.choice(64, 32, replace=False)
        net = reference_of(model, params, state)  # from the engine's state
        r = train_step(model, params, opt, state, x[idx], y[idx], cfg, rngs, pairs)
        loss, want = ref.train_step(net, x[idx], y[idx], cfg.lambda1, cfg.lambda2, cfg.lr, cfg.tau_cos, cfg.tau_euc)
        got = [(m["layer"], m["axis"], m["kept"], m["dropped"]) for m in r.merges]
        assert got == want, f"step {step}"
        assert r.loss == pytest.approx(loss, rel=1e-12), f"step {step}"
        assert_same(model, params, state, net)
        made += got
    axes = {(l, a) for l, a, _, _ in made}
    assert {(2, "cols"), (2, "rows"), (3, "cols"), (3, "rows")} <= axes, axes  # the test covers both axes
    assert len(made) >= 15
