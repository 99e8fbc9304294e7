"""The controls at equal size (`numpy-dlra controls`, `analyze controls`): the pruned and truncated networks are
what they say, the from-scratch arms have DLRA's sizes, and the table reads the runs."""
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numpy_dlra.cli import main
from numpy_dlra.data.datasets import load_dataset
from numpy_dlra.experiments import controls as ctl
from numpy_dlra.experiments.config import TrainConfig
from numpy_dlra.experiments.export import forward
from numpy_dlra.experiments.train import train
from numpy_dlra.models.mlp import MLP, init_params


@given(st.integers(0, 2**32 - 1), st.lists(st.integers(2, 9), min_size=1, max_size=3))
def test_pruning_removes_the_units_of_smallest_l1_norm_exactly(seed, hidden):
    """The pruned net computes what the dense net computes with the pruned units' outgoing weights zeroed."""
    g = np.random.default_rng(seed)
    sizes = (6, *hidden, 3)
    dense = init_params(sizes, g, np.float64)
    for l in range(1, len(sizes)):
        dense[f"b{l}"] = g.standard_normal(sizes[l])
    widths = [6] + [int(g.integers(1, h + 1)) for h in hidden] + [3]
    pruned = ctl.prune_l1(dense, widths)
    assert [pruned[f"W{l}"].shape for l in range(1, len(sizes))] == list(zip(widths[1:], widths[:-1]))
    zeroed = {k: v.copy() for k, v in dense.items()}
    for l in range(1, len(sizes) - 1):  # the kept units: the largest l1-norms of incoming weights over kept inputs
        W = zeroed[f"W{l}"] * (np.abs(zeroed[f"W{l}"]).sum(axis=1, keepdims=True) > 0)
        norms = np.abs(W).sum(axis=1)
        drop = np.argsort(-norms, kind="stable")[widths[l]:]
        zeroed[f"W{l + 1}"][:, drop] = 0
        zeroed[f"W{l}"][drop] = 0
        zeroed[f"b{l}"][drop] = 0
    x = g.standard_normal((5, 6))
    np.testing.assert_allclose(forward(pruned, x), forward(zeroed, x), rtol=1e-12, atol=1e-12)
    assert MLP(tuple(widths)).param_count() == sum(v.size for v in pruned.values())


def test_the_uniform_width_and_the_ranks_meet_the_count():
    sizes = (784, 500, 500, 500, 500, 500, 10)
    for count in (412_863, 661_490, 1_000_000):
        w = ctl.uniform_width(sizes, count)
        assert abs(MLP((784,) + (w,) * 5 + (10,)).param_count() - count) < 4 * 2 * w + 800
    shapes = [(500, 784), (55, 56), (76, 75), (70, 69), (76, 75), (10, 76)]
    ranks = ctl.ranks_at_count(sizes, shapes)
    assert 1 not in ranks and set(ranks) == {2, 3, 4, 5, 6}
    for l, r in ranks.items():
        m, n = sizes[l], sizes[l - 1]
        assert r * (m + n) <= max(shapes[l - 1][0] * shapes[l - 1][1], m + n)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A DLRA run that merged on 784-16-16-10 and its baseline, 2 embedded epochs each."""
    root = tmp_path_factory.mktemp("controls")
    data = load_dataset("embedded")
    common = dict(data="embedded", epochs=2, sizes=(784, 16, 16, 10), batch_size=250)
    train(TrainConfig(method="dlra", lambda1=200.0, tau_cos=0.5, tau_euc=100.0, **common), root / "dlra",
          progress=False, log=lambda m: None, dataset=data)
    train(TrainConfig(method="baseline", **common), root / "base", progress=False, log=lambda m: None, dataset=data)
    return root


def test_controls_train_at_dlras_sizes_and_the_table_reads_them(runs, capsys):
    widths, exported, wprime, shapes = ctl.sizes_of(runs / "dlra")
    assert exported == MLP(tuple(widths)).param_count() and wprime < MLP((784, 16, 16, 10)).param_count()
    out = runs / "c"
    assert main(["controls", "--dlra", str(runs / "dlra"), "--baseline", str(runs / "base"), "--finetune-epochs", "1",
                 "--out", str(out)]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["exported_widths"] == widths
    cfg = json.loads((out / "scratch-dense" / "config.json").read_text())
    assert cfg["sizes"] == widths and cfg["epochs"] == 2 and cfg["method"] == "baseline" and cfg["seed"] == 0
    assert json.loads((out / "scratch-fn" / "config.json").read_text())["method"] == "fn"
    assert r["arms"]["pruned-l1"]["count"] == exported and 0 <= r["arms"]["pruned-l1"]["test_acc"] <= 100
    assert json.loads((out / "pruned-l1-finetuned" / "config.json").read_text())["init_from"].endswith("pruned-l1.npz")
    capsys.readouterr()
    assert main(["analyze", "controls", str(out), "--plot", str(out / "c.png")]) == 0
    text = capsys.readouterr().out
    assert "| DLRA itself | its own (W') | 1 |" in text and "| the same, fine-tuned | exported | 1 |" in text
    assert (out / "c.png").is_file()


def test_a_baseline_of_another_seed_is_refused(runs, tmp_path, capsys):
    import shutil

    other = tmp_path / "base"
    shutil.copytree(runs / "base", other)
    s = json.loads((other / "summary.json").read_text())
    s["config"]["seed"] = 5
    (other / "summary.json").write_text(json.dumps(s))
    assert main(["controls", "--dlra", str(runs / "dlra"), "--baseline", str(other), "--out", str(tmp_path / "c")]) == 2
    assert "not the dense baseline" in capsys.readouterr().err


def test_only_the_arms_asked_for_are_trained(runs, capsys):
    out = runs / "some"
    assert main(["controls", "--dlra", str(runs / "dlra"), "--baseline", str(runs / "base"), "--arms",
                 "scratch-uniform", "--out", str(out)]) == 0
    assert (out / "scratch-uniform" / "summary.json").is_file() and not (out / "scratch-dense").exists()
    r = json.loads((out / "results.json").read_text())
    assert "test_acc" in r["arms"]["pruned-l1"] and "test_acc" in r["arms"]["svd"]  # as-is arms: always measured
    assert main(["controls", "--dlra", str(runs / "dlra"), "--baseline", str(runs / "base"), "--arms", "svd",
                 "--out", str(out)]) == 2
    assert "--arms svd: choose among" in capsys.readouterr().err


def test_a_baseline_without_checkpoint_trains_the_scratch_arms_and_keeps_the_measured_ones(runs, tmp_path, capsys):
    """A committed results/ folder keeps no checkpoint: the from-scratch arms still train from its config and the
    DLRA run's records, the as-is and fine-tuned entries of the earlier results.json are kept, not measured again;
    asking for a fine-tuned arm, which starts from the checkpoint, is an error naming the fix."""
    import shutil

    base = tmp_path / "base"
    shutil.copytree(runs / "base", base)
    for f in base.glob("checkpoint*.npz"):
        f.unlink()
    out = tmp_path / "c"
    assert main(["controls", "--dlra", str(runs / "dlra"), "--baseline", str(runs / "base"), "--arms",
                 "scratch-uniform", "--out", str(out)]) == 0
    before = json.loads((out / "results.json").read_text())["arms"]
    shutil.rmtree(out / "scratch-uniform")
    assert main(["controls", "--dlra", str(runs / "dlra"), "--baseline", str(base), "--arms", "scratch-uniform",
                 "--out", str(out)]) == 0
    assert "has no checkpoint: the pruned and SVD arms are kept from" in capsys.readouterr().out
    after = json.loads((out / "results.json").read_text())["arms"]
    assert (out / "scratch-uniform" / "summary.json").is_file() and after == before
    assert main(["controls", "--dlra", str(runs / "dlra"), "--baseline", str(base), "--arms", "svd-finetuned",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint" in err and "leave pruned-l1-finetuned and svd-finetuned out of --arms" in err
    r = json.loads((out / "results.json").read_text())
    for key, bad, says in (("seed", 7, "(seed differ"), ("arms", ["not", "a", "dict"], "is unreadable")):
        (out / "results.json").write_text(json.dumps(r | {key: bad}))  # another run's results, or a broken file
        assert main(["controls", "--dlra", str(runs / "dlra"), "--baseline", str(base), "--arms", "scratch-uniform",
                     "--out", str(out)]) == 2
        assert says in capsys.readouterr().err
