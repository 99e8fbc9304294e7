"""Five gaps a mutation sweep found (issue 29), each closed by a direct test.

Each test below pins one line that a realistic one-line bug could change with every other test still
passing (or caught only by a golden output). Each was checked by its mutation: the line was changed as
named, the test failed, and the line was restored.

- Eq. (13) with ``merge_pairs = "any"``: when the closest pair fails the Euclidean test, the MOST parallel
  admissible pair is fused, not merely one that passes (mutation: the fallback's candidates sorted
  ascending in |cos|, the least parallel first).
- The same fallback with ``row_vectors = "wb"`` and FN: its rows are the network's [c w', b'], FN's c on
  the weights only (mutation: the bias row scaled by c as well, i.e. c [w', b']).
- ``task_loss = "sum"`` with ``l2_mode = "decoupled"``: the L2 gradient stays out of Adam (mutation: the
  ``coupled`` guard of the summed loss dropped, so L2 counts twice).
- The gradient noise of Algorithm 1 is drawn at the 0-based update index t (sigma_t^2 = eta / (1 + t)^gamma)
  (mutation: t + 1 passed to the noise).
- Adam's moments at a merge (Eqs. 7-12 with ``adam_merge = "carry"``): m_k <- (r m_d + m_k)/s and
  v_k <- (r^2 v_d + v_k)/s^2, for r > 0 and r < 0 (mutation: r instead of r^2 in v).
"""
import numpy as np
import pytest

from numpy_dlra.dlra import equations as eq
from numpy_dlra.dlra.ops import fn_scale
from numpy_dlra.dlra.merge import candidate, find_pair, merge_step
from numpy_dlra.dlra.network import FactorizedMLP
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules
from numpy_dlra.experiments.train import make_rngs
from numpy_dlra.models.mlp import init_params
from numpy_dlra.nn.optim import gradient_noise
from test_fusion import _rotated as rotated
from test_readings import _adam_once as adam_once, _one_step as one_step


def zero_moments(params):
    """A fresh Adam state's moments (m, v) for `params`: zeros shaped like each array."""
    return {key: {k: np.zeros_like(v) for k, v in params.items()} for key in ("m", "v")}


# --- Eq. (13), merge_pairs = "any": the most parallel admissible pair ------------------------------------------

@pytest.mark.parametrize("gap_a, gap_b", [(8e-5, 6e-5), (6e-5, 8e-5)])
def test_any_fuses_the_most_parallel_of_two_admissible_pairs(gap_a, gap_b):
    """--merge-pairs any: columns 0, 1 are the closest pair (1 - cos = 5e-5) but long (|w| = 1000, D_euc = 10 >
    tau_euc). Columns 5, 6 (1 - cos = gap_a) and 8, 9 (gap_b) are short and both pass Eq. (13); the more parallel
    of the two is fused first, whichever indices it has, then the other."""
    g = np.random.default_rng(0)
    sizes = (6, 40, 12, 3)
    model, params = FactorizedMLP.from_dense(init_params(sizes, g, np.float64), sizes, 0.2, fn=False)
    W = params["W2"]
    W[:, 0] = 1000 * W[:, 0] / np.linalg.norm(W[:, 0])
    W[:, 1] = rotated(g, W[:, 0], 5e-5)
    for (a, b), gap in (((5, 6), gap_a), ((8, 9), gap_b)):
        W[:, a] /= np.linalg.norm(W[:, a])
        W[:, b] = rotated(g, W[:, a], gap)
    pairs = ClosestPairs(model, FusionRules(lambda1=0.0, merge_pairs="any"))
    pairs.refresh(params)
    assert pairs.pairs[(2, "cols")][:2] == (0, 1)  # the closest pair, which fails the Euclidean test
    k, d, c, d_euc = find_pair(pairs, params, 2, "cols")
    best, gap = ((5, 6), gap_a) if gap_a < gap_b else ((8, 9), gap_b)
    assert tuple(sorted((k, d))) == best
    assert 1 - abs(c) == pytest.approx(gap, rel=1e-6) and d_euc < 0.1
    recs = [r for r in merge_step(pairs, params, zero_moments(params), 1) if r["layer"] == 2]
    assert [tuple(sorted((r["kept"], r["dropped"]))) for r in recs][:1] == [best]  # fused first
    assert len(recs) == 2 and 1 - abs(recs[0]["cos"]) < 1 - abs(recs[1]["cos"])  # then the other pair


# --- Eq. (13), merge_pairs = "any" on rows [c w', b'] ----------------------------------------------------------

def test_any_with_bias_rows_reads_the_networks_rows_c_w_and_b():
    """--merge-pairs any --row-vectors wb --eq13-on effective, FN's c = k g / ||W'||_F = 2: the closest rows 0, 1
    (|w'| = 20, bias 0) are parallel enough but D_euc = c |w'| sqrt(2e-5 x 2) = 0.25 > tau_euc, so the fallback
    searches. Rows 5, 6 have biases not in the ratio of their weights, so [c w', b'] and [w', b'] (or c [w', b'])
    differ in cosine: the pair it returns has the cos and D_euc of [c w'_i, b'_i] (FN scales the weights, never
    the bias), computed here directly."""
    g = np.random.default_rng(0)
    sizes = (6, 12, 12, 3)
    model, params = FactorizedMLP.from_dense(init_params(sizes, g, np.float64), sizes, 0.2)
    W, b = params["W2"], params["b2"]
    b[:] = 0.0
    W[0] = 20 * W[0] / np.linalg.norm(W[0])
    W[1] = rotated(g, W[0], 2e-5)  # the closest pair, too far apart
    W[5] = 0.3 * W[5] / np.linalg.norm(W[5])
    W[6] = 1.5 * rotated(g, W[5], 1e-4)  # w'_6 ~ 1.5 w'_5, but b'_6 = 0.4 b'_5
    b[5], b[6] = 0.05, 0.02
    params["g2"][0] = 2.0 * np.linalg.norm(W) / model.fn_k[1]
    c_fn = fn_scale(W, params["g2"], model.fn_k[1])
    assert c_fn == pytest.approx(2.0, rel=1e-12)
    pairs = ClosestPairs(model, FusionRules(lambda1=0.0, tau_cos=1e-2, tau_euc=0.1, merge_pairs="any",
                                            row_vectors="wb"))
    pairs.refresh(params)
    closest = candidate(pairs, 2, "rows", params)
    assert {closest.kept, closest.dropped} == {0, 1}
    assert 1 - abs(closest.cos) < 1e-2 and closest.d_euc > 0.1  # the fallback is what decides

    V = np.concatenate([c_fn * W, b[:, None]], axis=1).T  # the network's rows [c w'_i, b'_i], as columns
    want_cos = V[:, 5] @ V[:, 6] / (np.linalg.norm(V[:, 5]) * np.linalg.norm(V[:, 6]))
    raw = np.concatenate([W, b[:, None]], axis=1).T  # [w', b'] (the cosine of c [w', b'] too)
    raw_cos = raw[:, 5] @ raw[:, 6] / (np.linalg.norm(raw[:, 5]) * np.linalg.norm(raw[:, 6]))
    assert abs((1 - want_cos) - (1 - raw_cos)) > 1e-3  # the readings differ: the test can tell them apart

    k, d, c, d_euc = find_pair(pairs, params, 2, "rows")
    assert (k, d) == (5, 6)  # row 5 is the shorter
    assert c == pytest.approx(want_cos, abs=1e-12)
    assert d_euc == pytest.approx(eq.euclidean_distance(V, d, k), rel=1e-6)
    assert eq.meets_eq13(c, d_euc, 1e-2, 0.1)


# --- Algorithm 1: the summed task loss with decoupled L2, and the gradient noise's step ------------------------

@pytest.mark.parametrize("method", ["fn", "dlra"])
def test_summed_task_loss_with_decoupled_l2_keeps_l2_out_of_adam(method):
    """--task-loss sum --l2-mode decoupled (Eqs. 17-18): Adam sees only B times the mean task gradient; then
    W' <- W' - lr lambda2 dL_L2/dW' (at the weights before the update), and the loss reports
    B L_task + lambda2 L_L2 once."""
    extra = {"lambda1": 0.0} if method == "dlra" else {}
    before, after, r, cfg, model, x, y = one_step(method, 5, lambda2=0.5, task_loss="sum", l2_mode="decoupled",
                                                  grad_noise_eta=0.0, **extra)
    _, task, grads = model.loss_and_grads(before, x, y, training=True, rng=None, lambda2=0.0)
    for g in grads.values():
        g *= len(y)
    want = adam_once(before, grads, cfg.lr)
    decay = {k: np.zeros_like(v) for k, v in before.items()}
    l2 = model.add_l2(before, decay, 0.5)
    assert l2 > 0 and any(np.abs(decay[k]).max() > 0 for k in decay)
    for k in want:
        want[k] -= cfg.lr * decay[k]
        np.testing.assert_allclose(after[k], want[k], rtol=1e-12, atol=1e-15, err_msg=k)
    assert r.task == pytest.approx(len(y) * task, rel=1e-12)
    assert r.loss == pytest.approx(len(y) * task + l2, rel=1e-12)


@pytest.mark.parametrize("method", ["baseline", "dlra"])
def test_gradient_noise_of_the_first_update_is_drawn_at_step_0(method):
    """Algorithm 1, step 3: the first update (t = 0 in Adam's fresh state) adds noise of variance eta / (1 + 0)^gamma:
    one train_step equals Adam applied to ``gradient_noise(grads, 0, eta, rng, gamma)`` with the run's own noise
    generator, and differs from the noise of step 1 (variance eta / 2^gamma)."""
    eta = 1e-2  # large, so that the noise decides the sign of many first Adam steps
    extra = {"lambda1": 0.0} if method == "dlra" else {}
    before, after, r, cfg, model, x, y = one_step(method, 6, grad_noise_eta=eta, **extra)
    _, _, grads = model.loss_and_grads(before, x, y, training=True, rng=None, lambda2=cfg.lambda2)
    noisy, sigma = gradient_noise(grads, 0, eta, make_rngs(6)["noise"], cfg.grad_noise_gamma)
    assert sigma == pytest.approx(eta**0.5, rel=1e-15)
    want = adam_once(before, noisy, cfg.lr)
    for k in want:
        np.testing.assert_allclose(after[k], want[k], rtol=1e-12, atol=1e-15, err_msg=k)
    later, _ = gradient_noise(grads, 1, eta, make_rngs(6)["noise"], cfg.grad_noise_gamma)
    other = adam_once(before, later, cfg.lr)
    assert any(np.abs(other[k] - want[k]).max() > 1e-6 for k in want)  # the step number shows in the update


# --- Adam's moments at a merge ---------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", ["cols", "rows"])
@pytest.mark.parametrize("r", [2.0, -2.5])
def test_carried_adam_moments_follow_the_documented_rule(axis, r):
    """adam_merge = "carry" (merge.MOMENTS): fusing w_d = r w_k into w_k (s = sqrt(r^2 + 1)) sets the kept
    vector's moments to m_k <- (r m_d + m_k)/s and v_k <- (r^2 v_d + v_k)/s^2 (on rows, b's moments too) and
    removes d's; every other entry is unchanged. v stays positive for r < 0 as well."""
    g = np.random.default_rng(7)
    sizes = (5, 6, 6, 3)
    model, params = FactorizedMLP.from_dense(init_params(sizes, g, np.float64), sizes, 0.2)
    k, d = 1, 4
    W, b = params["W2"], params["b2"]
    if axis == "cols":
        W[:, d] = r * W[:, k]
    else:
        W[d] = r * W[k]
        b[d] = r * b[k]
    opt = {"m": {n: g.standard_normal(v.shape) for n, v in params.items()},
           "v": {n: g.uniform(0.1, 1.0, v.shape) for n, v in params.items()}}
    old = {key: {n: a.copy() for n, a in opt[key].items()} for key in ("m", "v")}
    pairs = ClosestPairs(model, FusionRules(lambda1=0.0, tau_cos=1e-9, tau_euc=1e-6, adam_merge="carry"))
    pairs.refresh(params)
    (rec,) = merge_step(pairs, params, opt, 1)
    assert (rec["layer"], rec["axis"], rec["kept"], rec["dropped"]) == (2, axis, k, d)
    assert rec["r"] == pytest.approx(r, rel=1e-12)
    s = np.sqrt(r * r + 1.0)
    for name in ["W2"] + (["b2"] if axis == "rows" else []):
        ax = 1 if (axis == "cols" and name == "W2") else 0
        m_old, v_old = np.moveaxis(old["m"][name], ax, 0), np.moveaxis(old["v"][name], ax, 0)
        want_m, want_v = np.delete(m_old, d, axis=0), np.delete(v_old, d, axis=0)
        want_m[k] = (r * m_old[d] + m_old[k]) / s
        want_v[k] = (r * r * v_old[d] + v_old[k]) / (s * s)
        np.testing.assert_allclose(np.moveaxis(opt["m"][name], ax, 0), want_m, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(np.moveaxis(opt["v"][name], ax, 0), want_v, rtol=1e-13, atol=1e-15)
        assert (opt["v"][name] > 0).all()
