"""One closest pair per layer and axis: the pair RaRe pulls together is the pair Eq. (13) tests, and rows
fuse as readily as columns.

The earlier reading (``row_vectors="wb"``) tested and fused rows as [w', b'] rows while RaRe pulled the
closest rows of W': on square hidden layers the rows never passed Eq. (13), and once a column merge
made rows the longer axis the layer froze. These tests fail on that reading (tried: with the default
switched back to "wb", the invariant and the regression test below fail).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numpy_dlra.dlra import merge as merge_module
from numpy_dlra.dlra.algorithm1 import train_step
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules
from numpy_dlra.dlra.rare import rare_term
from numpy_dlra.experiments.build import build_model
from numpy_dlra.experiments.config import TrainConfig
from numpy_dlra.experiments.train import make_rngs
from numpy_dlra.nn.optim import Adam


def small_dlra(hidden, seed, **rules):
    """A float64 DLRA net 784-hidden-10 (no gradient noise), its optimizer and pairs, and a fixed random
    batch (x, y) to train on."""
    cfg = TrainConfig(method="dlra", sizes=(784, *hidden, 10), dtype="float64", seed=seed, grad_noise_eta=0.0,
                      **rules)
    rngs = make_rngs(seed)
    model, params = build_model(cfg, rng=rngs["init"])
    g = np.random.default_rng(seed + 1)
    for l in range(1, model.n_layers + 1):  # biases as large as the weights: [w', b'] rows differ from W' rows
        params[f"b{l}"][:] = 0.5 * g.standard_normal(params[f"b{l}"].shape)
    opt = Adam(cfg.lr)
    state = opt.init(params)
    pairs = ClosestPairs(model, FusionRules.from_config(cfg))
    pairs.refresh(params)
    x = g.standard_normal((48, 784))
    y = g.integers(0, 10, 48)
    return cfg, model, params, opt, state, pairs, rngs, x, y


def touched(pairs, params, l, axis):
    """The indices of the two vectors of layer l on `axis` that RaRe's gradient moves (its nonzero part)."""
    rare_axes = pairs.rare_axes
    pairs.rare_axes = lambda layer: (axis,) if layer == l else ()
    try:
        grads = {k: np.zeros_like(v) for k, v in params.items()}
        rare_term(pairs, params, grads)
    finally:
        pairs.rare_axes = rare_axes
    G = grads[f"W{l}"]
    moved = np.abs(G).sum(axis=0 if axis == "cols" else 1) > 0
    return set(np.flatnonzero(moved).tolist())


@settings(max_examples=12)
@given(st.integers(0, 2**16), st.lists(st.integers(6, 10), min_size=2, max_size=3), st.integers(8, 25))
def test_rare_pulls_the_pair_that_eq13_tests(seed, hidden, steps):
    """On every step, for every layer and fusable axis, the two vectors RaRe's gradient moves are the pair
    Eq. (13) tested after the previous update (and after any merges it made)."""
    cfg, model, params, opt, state, pairs, rngs, x, y = small_dlra(hidden, seed, lambda1=50.0, tau_cos=0.05,
                                                                  tau_euc=10.0)
    tested = {}
    real = merge_module.find_pair

    def spy(p, prm, l, axis):  # the pair Eq. (13) examines: the closest pair of the kind it tests
        tested[(l, axis)] = set(p.pairs[(l, p.test_kind(axis))][:2])
        return real(p, prm, l, axis)

    merge_module.find_pair = spy
    try:
        checked = 0
        for _ in range(steps):
            for (l, axis), pair in tested.items():
                if axis in pairs.fusable_axes(l):
                    assert touched(pairs, params, l, axis) == pair, (l, axis)
                    checked += 1
            tested.clear()
            train_step(model, params, opt, state, x, y, cfg, rngs, pairs)
        assert checked > 0
    finally:
        merge_module.find_pair = real


def test_the_bias_reading_breaks_the_invariant():
    """The stalled reading, kept as ``row_vectors="wb"``: the rows Eq. (13) tests are not RaRe's rows."""
    cfg, model, params, opt, state, pairs, rngs, x, y = small_dlra((9, 9), 3, lambda1=50.0,
                                                                  row_vectors="wb")
    differ = 0
    for _ in range(10):
        train_step(model, params, opt, state, x, y, cfg, rngs, pairs)
        for l in (1, 2):
            rows_w, rows_wb = pairs.pairs[(l, "rows")][:2], pairs.pairs.get((l, "rows+b"), (None, None))[:2]
            differ += set(rows_w) != set(rows_wb)
    assert differ > 0


def merges_by_axis(row_vectors, steps=300, seed=0):
    """Train a net with square hidden layers 2 and 3 (12 x 12) with RaRe on (strong, and a large step, so that
    300 steps suffice); the merge records and the model."""
    cfg, model, params, opt, state, pairs, rngs, x, y = small_dlra(
        (12, 12, 12), seed, lambda1=200.0, lr=1e-2, tau_cos=1e-3, tau_euc=10.0, row_vectors=row_vectors)
    recs = []
    for _ in range(steps):
        recs += train_step(model, params, opt, state, x, y, cfg, rngs, pairs).merges
    return recs, model


@pytest.mark.parametrize("seed", [0, 1])
def test_square_layers_fuse_rows_as_readily_as_columns(seed):
    """Square hidden layers: both axes keep merging; a column merge (which makes rows the longer axis) does not
    freeze the layer, the rows then merge."""
    recs, model = merges_by_axis("w", seed=seed)
    for l in (2, 3):
        cols = [r["step"] for r in recs if r["layer"] == l and r["axis"] == "cols"]
        rows = [r["step"] for r in recs if r["layer"] == l and r["axis"] == "rows"]
        assert len(cols) >= 3 and len(rows) >= 3, (l, len(cols), len(rows))
        assert max(rows) > min(cols) and max(cols) > min(rows), "one axis froze after the other merged"
        m, n = model.shape(l)
        assert abs(m - n) <= 1  # square layers stay (nearly) square


def test_with_the_bias_reading_square_layers_freeze():
    """The same net with ``row_vectors="wb"``: far fewer row merges (the stall the rows fix removes)."""
    recs_w, _ = merges_by_axis("w")
    recs_wb, _ = merges_by_axis("wb")
    rows = lambda recs: sum(r["axis"] == "rows" and r["layer"] in (2, 3) for r in recs)  # noqa: E731
    assert rows(recs_wb) < rows(recs_w) / 2, (rows(recs_wb), rows(recs_w))
