"""metrics.jsonl's per-axis diagnostics (experiments/diagnostics.py) are what the run's own state says."""
import json

import numpy as np
import pytest

from numpy_dlra import equations as eq
from numpy_dlra.data.datasets import load_dataset
from numpy_dlra.dlra.ops import fn_scale
from numpy_dlra.experiments.config import TrainConfig
from numpy_dlra.experiments.run_folder import RunFolder
from numpy_dlra.experiments.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two epochs of a small merging DLRA run on the embedded subset."""
    out = tmp_path_factory.mktemp("diag") / "run"
    cfg = TrainConfig(method="dlra", sizes=(784, 24, 24, 24, 10), data="embedded", epochs=2, batch_size=250,
                      lambda1=200.0, tau_cos=0.2, tau_euc=10.0, dtype="float64", probe_size=0)
    train(cfg, out, progress=False, log=lambda m: None, dataset=load_dataset("embedded"))
    return out


def test_each_axis_records_its_merges_its_gaps_and_its_layers_scale(run):
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    merges = [json.loads(line) for line in (run / "merges.jsonl").read_text().splitlines()]
    state = RunFolder(run).load()
    assert sum(r["merges"] for r in recs) == len(merges) > 0
    steps = [0] + [r["step"] for r in recs]
    for e, rec in enumerate(recs):
        for a in rec["axes"]:
            mine = [m for m in merges if m["layer"] == a["layer"] and m["axis"] == a["axis"]
                    and steps[e] < m["step"] <= steps[e + 1]]
            assert a["merges"] == len(mine)
            assert a["gap_min"] <= a["gap_end"]
    for a in recs[-1]["axes"]:  # the last epoch's end: the closest pair of the saved W', and its norms
        W = state.params[f"W{a['layer']}"]
        V = W if a["axis"] == "cols" else W.T
        if V.shape[1] >= 2:
            C = np.abs(eq.cos_matrix(V))
            np.fill_diagonal(C, 0)
            assert a["gap_end"] == pytest.approx(1 - C.max(), abs=1e-9)
        assert a["w_norm"] == pytest.approx(np.linalg.norm(W), rel=1e-12)
        assert a["c"] == pytest.approx(fn_scale(W, state.params[f"g{a['layer']}"], state.fn_k[a["layer"] - 1]),
                                       rel=1e-12)


def test_the_gap_min_is_the_smallest_over_the_steps_and_the_end_the_last():
    from numpy_dlra.dlra.network import FactorizedMLP
    from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules
    from numpy_dlra.experiments.diagnostics import AxisTrace
    from numpy_dlra.models.mlp import init_params

    g = np.random.default_rng(0)
    sizes = (8, 6, 6, 3)
    model, params = FactorizedMLP.from_dense(init_params(sizes, g, np.float64), sizes, 0.2)
    pairs = ClosestPairs(model, FusionRules(lambda1=1.0))
    trace, seen = AxisTrace(pairs), {}
    for _ in range(6):
        params["W2"] += 0.5 * g.standard_normal(params["W2"].shape)
        pairs.refresh(params)
        trace.step()
        for axis in ("cols", "rows"):
            seen.setdefault(axis, []).append(1 - abs(pairs.pairs[(2, axis)][2]))
    recs = trace.epoch_record(params, [{"layer": 2, "axis": "rows"}] * 3)
    for a in (r for r in recs if r["layer"] == 2):
        assert a["gap_min"] == min(seen[a["axis"]]) and a["gap_end"] == seen[a["axis"]][-1]
        assert a["merges"] == (3 if a["axis"] == "rows" else 0)
    assert trace.epoch_record(params, [])[0]["gap_min"] == trace.epoch_record(params, [])[0]["gap_end"]  # reset
