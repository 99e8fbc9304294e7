"""The readings the paper leaves open, each a flag: where Eq. (17) reads the weight, how Table 1 counts
FLOPs, and Eq. (14)'s rate on the reduced features (G, not m')."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_factorized import random_factors, random_net
from test_fusion import make_parallel

from numpy_dlra.dlra.equations import dropout_rate
from numpy_dlra.dlra.ops import fn_scale
from numpy_dlra.dlra.merge import merge_step
from numpy_dlra.dlra.network import L2_READINGS, FactorizedMLP
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules
from numpy_dlra.models.mlp import init_params
from numpy_dlra.nn.gradcheck import check_param_grads


def l2_by_definition(model, params, reading):
    """(1/N) sum_l ||X_l||_F^2 with X = W', c W' or P c W' Q, computed from the dense form."""
    dense = model.to_dense(params)
    total = 0.0
    for l in range(1, model.n_layers + 1):
        W = params[f"W{l}"]
        c = fn_scale(W, params[f"g{l}"], model.fn_k[l - 1]) if model.fn_k else 1.0
        X = {"w": W, "effective": c * W, "dense": dense[f"W{l}"]}[reading]
        total += float((X * X).sum())
    return total / model.n_layers


@pytest.mark.parametrize("fn", [True, False])
@pytest.mark.parametrize("reading", L2_READINGS)
def test_each_l2_reading_is_its_definition_and_its_gradient_checks(reading, fn):
    model, params = random_net(5, (5, 6, 4, 3), fn=fn)  # random signed P, Q: a b != 1
    model.l2_on = reading
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    value = model.add_l2(params, grads, 0.7)
    assert value == pytest.approx(0.7 * l2_by_definition(model, params, reading), rel=1e-12)

    def f():
        return model.add_l2(params, {k: np.zeros_like(v) for k, v in params.items()}, 0.7)

    errors = check_param_grads(f, params, grads)
    assert max(errors.values()) < 1e-7, errors
    if fn and reading == "effective":  # the function's weight does not depend on ||W'||: no gradient on W'
        assert all(not grads[f"W{l}"].any() for l in (1, 2, 3))


def test_whole_loss_gradient_with_the_dense_reading():
    model, params = random_net(8, (5, 4, 6, 3), fn=True)
    model.l2_on = "dense"
    g = np.random.default_rng(3)
    x, y = g.standard_normal((6, 5)), g.integers(0, 3, 6)

    def loss():
        return model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(4), lambda2=0.3)[0]

    _, _, grads = model.loss_and_grads(params, x, y, training=True, rng=np.random.default_rng(4), lambda2=0.3)
    errors = check_param_grads(loss, params, grads)
    assert max(errors.values()) < 1e-6, errors


def test_effective_and_dense_agree_before_any_merge():
    sizes = (6, 5, 4, 3)
    dense = init_params(sizes, np.random.default_rng(0), np.float64)
    out = {}
    for reading in ("effective", "dense"):
        model, params = FactorizedMLP.from_dense(dense, sizes, 0.2, l2_on=reading)
        params["g2"][0] = 1.3
        grads = {k: np.zeros_like(v) for k, v in params.items()}
        out[reading] = (model.add_l2(params, grads, 0.1), grads)
    assert out["effective"][0] == pytest.approx(out["dense"][0], rel=1e-14)
    for k in out["dense"][1]:
        np.testing.assert_allclose(out["effective"][1][k], out["dense"][1][k], atol=1e-14)


def test_paper_flops_count_the_products_between_reduced_feature_spaces():
    model, _ = random_net(2, (7, 6, 5, 3))
    feats = [7] + [d["feat"] for d in model.layer_stats()]
    assert model.flops_paper() == 2 * sum(a * b for a, b in zip(feats, feats[1:]))
    assert feats[-1] == 3 and model.flops_paper() != model.flops_per_sample()
    # at Table 2's average dimensions the count is the paper's 2.09 M (docs/method.md Sec. 11)
    table2 = [784, 500, 417.00, 406.15, 359.30, 353.45, 10]
    assert 2 * sum(a * b for a, b in zip(table2, table2[1:])) == pytest.approx(2.0926e6, rel=1e-4)
    dense_model, _ = FactorizedMLP.from_dense(init_params((7, 6, 5, 3), np.random.default_rng(0), np.float64),
                                              (7, 6, 5, 3), 0.2)
    assert dense_model.flops_paper() == dense_model.flops_per_sample() == 2 * (7 * 6 + 6 * 5 + 5 * 3)


def test_eq14_rate_uses_the_reduced_feature_dimension_not_m_prime():
    """Mixed signs in P: a row of W' read by outputs of both signs gives two features, so G > m'."""
    sizes = (4, 6, 3)
    model, _ = FactorizedMLP.from_dense(init_params(sizes, np.random.default_rng(0), np.float64), sizes, 0.3)
    f = random_factors(np.random.default_rng(1), 6, 3, 4, 4)
    f.p_idx[:] = [0, 0, 1, 1, 2, 2]
    f.p_scale[:] = [1.0, -2.0, 0.5, 0.7, -1.0, 3.0]  # rows 0 and 2 have both signs: G = 5, m' = 3
    model.layers[0].factors = f
    model.rebuild()
    (stats, _), (rate,) = model.layer_stats(), model.dropout_rates()
    assert (stats["m"], stats["feat"]) == (3, 5)
    assert rate == dropout_rate(5, 6, 0.3) == pytest.approx(0.25)
    assert rate != dropout_rate(3, 6, 0.3)


@given(st.integers(0, 2**32 - 1), st.sampled_from(["lstsq", "sum"]))
def test_merges_keep_p_and_q_unit_norm_so_dense_is_effective(seed, ratio):
    """s = sqrt(r^2 + 1) keeps every a_k = sum p_i^2 and b_j = sum q_j^2 at 1 (from P = Q = I), so
    ||P c W' Q||_F = ||c W'||_F after any merges: the "dense" and "effective" readings are one L2 term."""
    g = np.random.default_rng(seed)
    sizes = (6, 8, 7, 7, 4)
    model, params = FactorizedMLP.from_dense(init_params(sizes, g, np.float64), sizes, 0.2, l2_on="dense")
    opt = {"m": {k: np.zeros_like(v) for k, v in params.items()}, "v": {k: np.zeros_like(v) for k, v in params.items()}}
    pairs = ClosestPairs(model, FusionRules(lambda1=0.0, tau_cos=1e-9, tau_euc=1e-6, fuse_ratio=ratio))
    merged = 0
    for step in range(1, 6):
        l, axis = [(2, "cols"), (2, "rows"), (3, "cols"), (3, "rows"), (4, "cols")][step - 1]
        make_parallel(g, model, params, l, axis)
        pairs.refresh(params)
        merged += len(merge_step(pairs, params, opt, step))
    assert merged >= 5 and all(layer.pq_weights is None for layer in model.layers)
    values = {}
    for reading in ("dense", "effective"):
        model.l2_on = reading
        values[reading] = model.add_l2(params, {k: np.zeros_like(v) for k, v in params.items()}, 0.1)
    assert values["dense"] == pytest.approx(values["effective"], rel=1e-12)
    assert values["dense"] == pytest.approx(0.1 * l2_by_definition(model, params, "dense"), rel=1e-12)


def _one_step(method, seed, **flags):
    """One train_step of a small float64 net (no dropout; no noise unless `flags` give grad_noise_eta) from a
    fresh Adam state under `flags`; returns (params before, params after, the step's result, cfg, model, x, y)."""
    from numpy_dlra.dlra.algorithm1 import train_step
    from numpy_dlra.experiments.build import build_model
    from numpy_dlra.experiments.config import TrainConfig
    from numpy_dlra.experiments.train import make_rngs
    from numpy_dlra.nn.optim import Adam

    cfg = TrainConfig(method=method, sizes=(784, 9, 7, 10), dtype="float64", seed=seed, dropout=0.0,
                      **({"grad_noise_eta": 0.0} | flags))
    rngs = make_rngs(seed)
    model, params = build_model(cfg, rng=rngs["init"])
    g = np.random.default_rng(seed)
    x, y = g.standard_normal((16, 784)), g.integers(0, 10, 16)
    before = {k: v.copy() for k, v in params.items()}
    opt = Adam(cfg.lr)
    state = opt.init(params)
    r = train_step(model, params, opt, state, x, y, cfg, rngs)
    return before, params, r, cfg, model, x, y


def _adam_once(params, grads, lr):
    """The first Adam update from zero moments: p - lr g / (|g| + eps) (bias-corrected, t = 1)."""
    from numpy_dlra.nn.optim import Adam

    out = {k: v.copy() for k, v in params.items()}
    opt = Adam(lr)
    opt.step(out, grads, opt.init(out))
    return out


@pytest.mark.parametrize("method", ["fn", "dlra"])
def test_decoupled_l2_shrinks_w_outside_adam(method):
    """--l2-mode decoupled: Adam sees only the task gradient; then W' <- W' - lr lambda2 dL_L2/dW' (at the
    weights before the update), as AdamW does; the loss still reports lambda2 L_L2."""
    extra = {"lambda1": 0.0} if method == "dlra" else {}
    before, after, r, cfg, model, x, y = _one_step(method, 3, lambda2=0.5, l2_mode="decoupled", **extra)
    loss, task, grads = model.loss_and_grads(before, x, y, training=True, rng=None, lambda2=0.0)
    want = _adam_once(before, grads, cfg.lr)
    decay = {k: np.zeros_like(v) for k, v in before.items()}
    l2 = model.add_l2(before, decay, 0.5)
    for k in want:
        want[k] -= cfg.lr * decay[k]
        np.testing.assert_allclose(after[k], want[k], rtol=1e-12, atol=1e-15)
    assert any(np.abs(decay[k]).max() > 0 for k in decay)
    assert r.loss == pytest.approx(task + l2, rel=1e-12) and r.task == pytest.approx(task, rel=1e-12)


@pytest.mark.parametrize("method", ["baseline", "dlra"])
def test_summed_task_loss_weighs_the_task_batch_size_times_more(method):
    """--task-loss sum: L_task and its gradient are B times the mean's, and the L2 term is added as before."""
    extra = {"lambda1": 0.0} if method == "dlra" else {}
    before, after, r, cfg, model, x, y = _one_step(method, 4, lambda2=0.3, task_loss="sum", **extra)
    _, task, grads = model.loss_and_grads(before, x, y, training=True, rng=None, lambda2=0.0)
    for g in grads.values():
        g *= len(y)
    l2 = model.add_l2(before, grads, 0.3)
    want = _adam_once(before, grads, cfg.lr)
    for k in want:
        np.testing.assert_allclose(after[k], want[k], rtol=1e-12, atol=1e-15)
    assert r.task == pytest.approx(len(y) * task, rel=1e-12) and r.loss == pytest.approx(len(y) * task + l2, rel=1e-12)
