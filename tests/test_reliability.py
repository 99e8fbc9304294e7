"""Faults: a run killed (SIGKILL) at any of several points resumes to the same bits; degenerate matrices
never give NaN or an empty layer; a full disk leaves the previous checkpoint intact."""
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numpy_dlra.dlra.merge import merge_step
from numpy_dlra.dlra.network import FactorizedMLP
from numpy_dlra.dlra.pairs import ClosestPairs, FusionRules
from numpy_dlra.errors import UserError
from numpy_dlra.experiments import run_folder
from numpy_dlra.experiments.config import TrainConfig
from numpy_dlra.experiments.run_folder import load_params
from numpy_dlra.experiments.train import train
from numpy_dlra.models.mlp import init_params

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--method", "dlra", "--data", "embedded", "--sizes", "784,24,24,10", "--batch-size", "500", "--epochs", "3",
         "--tau-cos", "0.3", "--tau-euc", "10", "--probe-size", "16", "--no-progress"]  # loose: merges every epoch


def cli(out, *extra, kill_at=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.pop("NUMPY_DLRA_KILL_AT", None)
    if kill_at:
        env["NUMPY_DLRA_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "numpy_dlra", "train", *FLAGS, "--out", str(out), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def lines(path):
    recs = [json.loads(s) for s in path.read_text().splitlines()] if path.exists() else []
    return [{k: v for k, v in r.items() if k not in ("seconds", "train_seconds")} for r in recs]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    assert cli(out).returncode == 0
    assert len(lines(out / "merges.jsonl")) >= 3
    return out


@pytest.mark.parametrize("kill_at", ["step:1", "step:5", "merge:2", "checkpoint-write:1", "checkpoint-write:2",
                                     "checkpoint-swap:2"])
def test_a_run_killed_anywhere_resumes_to_the_same_bits(tmp_path, straight, kill_at):
    out = tmp_path / "run"
    r = cli(out, kill_at=kill_at)
    assert r.returncode == -9, (r.returncode, r.stderr)  # it did die there
    r = cli(out, "--resume")
    assert r.returncode == 0, r.stderr
    a, b = load_params(straight), load_params(out)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert lines(out / "metrics.jsonl") == lines(straight / "metrics.jsonl")
    assert (out / "merges.jsonl").read_text() == (straight / "merges.jsonl").read_text()


def test_the_runner_killed_while_writing_a_table_loses_nothing(tmp_path):
    args = [sys.executable, "-m", "numpy_dlra", "reproduce", "table1", "--epochs", "1", "--seeds", "1",
            "--data", "embedded", "--sizes", "784,16,10", "--out", str(tmp_path / "r")]
    env = dict(os.environ, NUMPY_DLRA_KILL_AT="table-write:1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    assert subprocess.run(args, cwd=ROOT, env=env, capture_output=True).returncode == -9
    assert not (tmp_path / "r" / "table1.md").exists()
    env.pop("NUMPY_DLRA_KILL_AT")
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "3 of 3 runs finished before; 0 to train" in r.stdout
    assert "| +DLRA" in (tmp_path / "r" / "table1.md").read_text()


def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    cfg = TrainConfig(sizes=(784, 16, 10), data="embedded", batch_size=500, epochs=1)
    train(cfg, tmp_path / "run", progress=False, log=lambda m: None)
    before = (tmp_path / "run" / "checkpoint.npz").read_bytes()
    real = run_folder.save_checkpoint

    def full(path, arrays, meta):  # the disk fills up a third of the way into the new checkpoint
        Path(path).write_bytes(b"PK\x03\x04 a third of a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_folder, "save_checkpoint", full)
    with pytest.raises(UserError, match="checkpoint.npz: cannot write it .No space left on device.; the last checkpoint "
                                        "is intact"):
        train(TrainConfig(**{**cfg.to_dict(), "epochs": 2}), tmp_path / "run", resume=True, progress=False,
              log=lambda m: None)
    assert (tmp_path / "run" / "checkpoint.npz").read_bytes() == before
    monkeypatch.setattr(run_folder, "save_checkpoint", real)
    assert run_folder.RunFolder(tmp_path / "run").load().epoch == 1
    train(TrainConfig(**{**cfg.to_dict(), "epochs": 2}), tmp_path / "run", resume=True, progress=False,
          log=lambda m: None)  # with room again, the run goes on


def test_a_layer_fused_down_to_one_vector_keeps_working():
    """A rank-1 W'_2 (2 x 5): all its columns, then its rows, then the last columns fuse, down to 1 x 1.
    The network computes the same, has no NaN, and no axis goes below one vector."""
    g = np.random.default_rng(0)
    sizes = (3, 5, 2, 4)
    model, params = FactorizedMLP.from_dense(init_params(sizes, g, np.float64), sizes, 0.2)
    params["W2"] = np.outer(g.standard_normal(2), g.standard_normal(5))
    params["b2"] = np.zeros(2)
    x = g.standard_normal((7, 3))
    before = model.forward(params, x)[0]
    pairs = ClosestPairs(model, FusionRules(lambda1=1.0, tau_cos=1e-9, tau_euc=1e-6))
    opt = {"m": {k: np.zeros_like(v) for k, v in params.items()}, "v": {k: np.zeros_like(v) for k, v in params.items()}}
    for step in range(1, 4):
        pairs.refresh(params)
        merge_step(pairs, params, opt, step)
    assert model.shape(2) == (1, 1) and pairs.fusable_axes(2) == []
    np.testing.assert_allclose(model.forward(params, x)[0], before, atol=1e-10)
    loss, _, grads = model.loss_and_grads(params, x, g.integers(0, 4, 7), training=True,
                                          rng=np.random.default_rng(1), lambda2=0.1)
    assert np.isfinite(loss) and all(np.isfinite(v).all() for v in grads.values())


def test_zero_vectors_and_the_papers_ratio_at_a_zero_sum_give_no_nan():
    g = np.random.default_rng(3)
    sizes = (4, 6, 6, 3)
    model, params = FactorizedMLP.from_dense(init_params(sizes, g, np.float64), sizes, 0.2)
    params["W2"][:, 0] = 0.0  # a zero column: cosine 0 with everything, never fused, no RaRe gradient
    w = np.array([1.0, -1.0, 2.0, -2.0, 0.5, -0.5])  # sums to 0: the paper's sum(w_d)/sum(w_k) is undefined
    params["W2"][:, 1], params["W2"][:, 4] = w, -1.7 * w
    pairs = ClosestPairs(model, FusionRules(lambda1=5.0, tau_cos=1e-9, tau_euc=1e-6, fuse_ratio="sum"))
    pairs.refresh(params)
    from numpy_dlra.dlra.rare import rare_term

    grads = {k: np.zeros_like(v) for k, v in params.items()}
    assert np.isfinite(rare_term(pairs, params, grads)) and all(np.isfinite(v).all() for v in grads.values())
    opt = {"m": {k: np.zeros_like(v) for k, v in params.items()}, "v": {k: np.zeros_like(v) for k, v in params.items()}}
    recs = merge_step(pairs, params, opt, 1)
    assert [(r["layer"], r["axis"], r["r"]) for r in recs if r["layer"] == 2] == [(2, "cols", pytest.approx(-1.7))]
    assert all(np.isfinite(v).all() for v in params.values())
    assert model.shape(2) == (6, 5) and not params["W2"][:, 0].any()


def test_a_run_that_cannot_fit_in_memory_is_refused_up_front(tmp_path, monkeypatch):
    from numpy_dlra.experiments import resources

    cfg = TrainConfig(method="dlra", data="embedded", epochs=1)
    need = resources.estimate_bytes(cfg, 6000, 784)
    assert 0.3 * 2**30 < need < 1.0 * 2**30  # the paper's network on the embedded subset
    big = TrainConfig(method="dlra", data="embedded", sizes=(784, 30000, 30000, 10), batch_size=4000)
    assert resources.estimate_bytes(big, 6000, 784) > 10 * 2**30  # two 30000^2 Grams alone are 7 GiB
    monkeypatch.setattr(resources, "available_bytes", lambda: 2**30)
    with pytest.raises(UserError, match=r"needs about .* GiB of memory and 1.0 GiB are available: lower --batch-size"):
        train(big, tmp_path / "big", progress=False, log=lambda m: None)
    assert not (tmp_path / "big").exists()


def test_the_runner_resumes_a_run_left_between_its_two_checkpoints(tmp_path):
    """Killed between moving the old checkpoint aside and putting the new one in place: only
    checkpoint.prev.npz is there. The runner still resumes the run (from it) instead of refusing the folder."""
    from numpy_dlra.experiments.runner import train_argv

    cfg = TrainConfig(sizes=(784, 8, 10), data="embedded", batch_size=500, epochs=1)
    train(cfg, tmp_path / "run", progress=False, log=lambda m: None)
    os.replace(tmp_path / "run" / "checkpoint.npz", tmp_path / "run" / "checkpoint.prev.npz")
    assert train_argv(cfg, tmp_path / "run")[-1] == "--resume"
    logs = []
    train(TrainConfig(**{**cfg.to_dict(), "epochs": 2}), tmp_path / "run", resume=True, progress=False, log=logs.append)
    assert any("using the previous checkpoint (epoch 1)" in m for m in logs)
