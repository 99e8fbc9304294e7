"""Algorithm 1 in one place: the trainer is a loop over dlra.algorithm1.train_step, nothing more."""
import numpy as np
import pytest

from numpy_dlra.data.datasets import load_dataset
from numpy_dlra.dlra.algorithm1 import PHASES, train_step
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules
from numpy_dlra.errors import UserError
from numpy_dlra.experiments.build import build_model
from numpy_dlra.experiments.config import TrainConfig
from numpy_dlra.experiments.run_folder import RunFolder
from numpy_dlra.experiments.train import make_rngs, train
from numpy_dlra.nn.optim import Adam


@pytest.fixture(scope="module")
def data():
    return load_dataset("embedded")


@pytest.mark.parametrize("method", ["baseline", "fn", "dlra"])
def test_the_trainer_is_a_loop_over_train_step(tmp_path, data, method):
    # lambda1 200 and loose thresholds, so that the DLRA epoch merges
    extra = {"lambda1": 200.0, "tau_cos": 0.2, "tau_euc": 10.0} if method == "dlra" else {}
    cfg = TrainConfig(method=method, sizes=(784, 24, 24, 10), batch_size=500, epochs=1, data="embedded",
                      probe_size=16, **extra)
    train(cfg, tmp_path / "run", progress=False, log=lambda m: None, dataset=data)
    got = RunFolder(tmp_path / "run").load()

    rngs = make_rngs(cfg.seed)
    model, params = build_model(cfg, rng=rngs["init"])
    opt = Adam(cfg.lr, cfg.beta1, cfg.beta2, cfg.eps)
    state = opt.init(params)
    pairs = ClosestPairs(model, FusionRules.from_config(cfg)) if method == "dlra" else None
    if pairs:
        pairs.refresh(params)
    perm = rngs["shuffle"].permutation(len(data.y_train))
    clock, merges = {}, []
    for i in range(0, len(perm), cfg.batch_size):
        idx = perm[i:i + cfg.batch_size]
        r = train_step(model, params, opt, state, data.x_train[idx], data.y_train[idx], cfg, rngs, pairs,
                       data.x_val[:16] if pairs else None, clock=clock)
        merges += r.merges
    assert params.keys() == got.params.keys()
    for k in params:
        np.testing.assert_array_equal(params[k], got.params[k])
    assert got.history[0]["merges"] == len(merges)
    if method == "dlra":
        assert len(merges) >= 3, "the DLRA epoch made too few merges: the test would not cover them"
    assert set(clock) <= set(PHASES) and all(v >= 0 for v in clock.values())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_non_finite_loss_stops_with_the_step(data):
    cfg = TrainConfig(sizes=(784, 8, 10), data="embedded")
    rngs = make_rngs(0)
    model, params = build_model(cfg, rng=rngs["init"])
    params["W1"][0, 0] = np.nan
    opt = Adam()
    with pytest.raises(UserError, match="the loss became nan at step 1 .parameter W1 of layer 1 holds NaN"):
        train_step(model, params, opt, opt.init(params), data.x_train[:4], data.y_train[:4], cfg, rngs)
    params["W1"][0, 0] = 0.0
    x = data.x_train[:4].copy()
    x[2, 5] = np.inf
    with pytest.raises(UserError, match="the input batch holds NaN or Inf"):
        train_step(model, params, opt, opt.init(params), x, data.y_train[:4], cfg, rngs)
    params["W1"] *= 1e20  # finite, but the logits overflow float32
    params["W2"] *= 1e20
    with pytest.raises(UserError, match="the parameters are finite: the forward pass overflowed"):
        with np.errstate(over="ignore", invalid="ignore"):
            train_step(model, params, opt, opt.init(params), data.x_train[:4], data.y_train[:4], cfg, rngs)
