"""`numpy-dlra reproduce` at a tiny budget: tables and figures from run folders, skipping finished runs,
resuming unfinished ones, locally and on a real Dask cluster on loopback (a killed worker included)."""
import json
import os
import signal
import time
import warnings

import numpy as np
import pytest

from numpy_dlra.cli import main
from numpy_dlra.experiments import tables
from numpy_dlra.experiments.run_folder import RunFolder, load_params

TINY = ["--data", "embedded", "--sizes", "784,24,24,10", "--batch-size", "500", "--seeds", "2"]


def test_table1_table2_and_the_figures_at_a_tiny_budget(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["reproduce", "table1", "--epochs", "2", "--jobs", "2", "--out", str(out)] + TINY) == 0
    text = capsys.readouterr().out
    assert "0 of 6 runs finished before; 6 to train" in text and "| +DLRA (λ1 = 20) | 2 |" in text
    t = json.loads((out / "table1.json").read_text())["table"]
    assert set(t) == {"baseline", "fn", "dlra"} and t["baseline"]["n"] == 2 and t["baseline"]["p"] is None
    assert 0 <= t["dlra"]["p"] <= 1
    # the same command again trains nothing; table2 and the figures come from the same runs
    for what in ("table1", "table2", "fig1", "fig4"):
        assert main(["reproduce", what, "--epochs", "2", "--out", str(out)] + TINY) == 0
        assert "6 of 6 runs finished before; 0 to train" in capsys.readouterr().out
    assert (out / "table2.md").read_text().count("\n| ") == 3  # layers 2 and 3, and the header
    assert (out / "fig1.png").stat().st_size > 10_000 and (out / "fig4.png").stat().st_size > 10_000
    # more epochs: every run resumes from its checkpoint instead of starting again
    assert main(["reproduce", "table1", "--epochs", "3", "--out", str(out)] + TINY) == 0
    recs = tables.read_metrics(out / "runs" / "dlra-seed1")
    assert [r["epoch"] for r in recs] == [1, 2, 3]
    assert "resuming" in (out / "runs" / "dlra-seed1.log").read_text()


def test_no_train_draws_from_the_finished_runs_only(tmp_path, capsys):
    out = tmp_path / "n"
    assert main(["reproduce", "table1", "--epochs", "1", "--methods", "baseline,fn", "--out", str(out)] + TINY) == 0
    capsys.readouterr()
    # 2 epochs asked: every 1-epoch run is unfinished; fn seed 0 is brought to 2 epochs alone
    assert main(["reproduce", "table1", "--epochs", "2", "--methods", "fn", "--seeds", "1", "--out", str(out)]
                + TINY[:-2]) == 0
    capsys.readouterr()
    before = sorted(p.name for p in (out / "runs").iterdir())
    assert main(["reproduce", "table1", "--epochs", "2", "--no-train", "--out", str(out)] + TINY) == 0
    text = capsys.readouterr().out
    assert "1 of 6 runs finished; --no-train: nothing is trained; left out (missing or unfinished): baseline-seed0, " \
           "baseline-seed1, fn-seed1, dlra-seed0, dlra-seed1" in text
    assert "| +FN | 1 |" in text and "Baseline" not in text.split("|---")[-1]
    assert sorted(p.name for p in (out / "runs").iterdir()) == before, "--no-train trained something"
    assert [r["epoch"] for r in tables.read_metrics(out / "runs" / "baseline-seed0")] == [1]
    assert main(["reproduce", "fig4", "--epochs", "2", "--no-train", "--out", str(out)] + TINY) == 2
    assert "no finished dlra run" in capsys.readouterr().err


def test_fig2_and_fig3_train_their_variants_once(tmp_path, capsys):
    out = tmp_path / "f"
    args = ["--epochs", "1", "--out", str(out)] + TINY[:-2] + ["--seeds", "1"]
    assert main(["reproduce", "fig3", "--lambda1-values", "5,20"] + args) == 0
    text = capsys.readouterr().out
    assert "0 of 4 runs finished before; 4 to train" in text  # baseline, fn, dlra (= lambda1 20), lambda1 5
    assert "lambda1 5: accuracy" in text and "lambda1 20: accuracy" in text and "(1 runs)" in text
    assert main(["reproduce", "fig2", "--tau-grid", "1e-4x0.1,0.2"] + args) == 0
    assert "3 of 4 runs finished before; 1 to train" in capsys.readouterr().out  # (1e-4, 0.1) is the dlra run
    assert (out / "fig2.png").is_file() and (out / "fig3.png").is_file()
    assert sorted(p.name for p in (out / "runs").iterdir() if p.is_dir()) == [
        "baseline-seed0", "dlra-lambda15-seed0", "dlra-seed0", "dlra-taueuc0.2-seed0", "fn-seed0"]
    # --no-train over a grid with a cell never trained: that cell says so, and fig2.json holds null for it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice" from the empty cell
        assert main(["reproduce", "fig2", "--tau-grid", "1e-4,1e-3x0.1", "--no-train"] + args) == 0
    text = capsys.readouterr().out
    assert "tau_cos 0.0001 tau_euc 0.1: accuracy" in text and "± 0.00 %" in text and "(1 runs)" in text
    assert "tau_cos 0.001 tau_euc 0.1: no finished run" in text
    cells = {c["tau_cos"]: c for c in json.loads((out / "fig2.json").read_text())}
    assert cells[0.001] == {"tau_cos": 0.001, "tau_euc": 0.1, "acc": None, "comp": None, "n": 0}
    assert cells[0.0001]["n"] == 1 and len(cells[0.0001]["acc"]) == 2


def test_methods_restricts_the_runs(tmp_path, capsys):
    args = ["--epochs", "1", "--out", str(tmp_path / "m"), "--methods", "dlra"] + TINY[:-2] + ["--seeds", "1"]
    assert main(["reproduce", "table1", "--l2-on", "dense"] + args) == 0
    text = capsys.readouterr().out
    assert "0 of 1 runs finished before; 1 to train" in text and "| Baseline |" not in text
    assert json.loads((tmp_path / "m" / "runs" / "dlra-seed0" / "config.json").read_text())["l2_on"] == "dense"


def test_the_runner_says_each_epoch_as_it_finishes(tmp_path):
    from numpy_dlra.experiments.config import TrainConfig
    from numpy_dlra.experiments.runner import _local

    said = []
    cfg = TrainConfig(data="embedded", epochs=2, sizes=(784, 8, 10), batch_size=500)
    assert _local(cfg, tmp_path / "runs" / "b", 1, said.append, poll=0.05) == 0
    assert [s.split(": ", 1)[1].split(",")[0] for s in said] == ["epoch 1/2", "epoch 2/2", "done"], said


def test_statistics_are_the_papers():
    runs = [[{"test_acc": a, "compression": 0, "params": 1, "flops_per_sample": 2, "epoch": i + 1, "layers": []}
             for i, a in enumerate(accs)] for accs in ([80] * 5 + [90, 91, 92, 93, 94], [80] * 10)]
    assert tables.run_stats(runs[0])["acc"] == 92.0  # the mean of the last 5 epochs
    t = tables.table1({"baseline": runs, "dlra": runs})
    assert t["baseline"]["acc"] == (86.0, pytest.approx(np.std([92, 80], ddof=1)))  # sample std over runs
    assert t["dlra"]["p"] == pytest.approx(1.0)
    ma = tables.moving_average([1, 2, 3, 4], 2)
    np.testing.assert_allclose(ma, [1, 1.5, 2.5, 3.5])
    sp = tables.speedup({"baseline": [[{"test_acc": a} for a in (1, 2, 3, 4)]],
                         "dlra": [[{"test_acc": a} for a in (2, 4, 4, 4)]]}, window=1)
    assert sp["baseline_best"] == (4, 4.0) and sp["dlra"] == (2, 2.0)


def test_bad_seeds_and_grid_exit_2(tmp_path, capsys):
    for argv, needle in ((["--seeds", "x"], "--seeds 'x'"), (["--seeds", "0"], "--seeds '0'"),
                         (["--jobs", "0"], "--jobs 0"), (["--tau-grid", "1e-4"], "--tau-grid"),
                         (["--lr", "-1"], "--lr -1.0"), (["--methods", "svd"], "--methods 'svd'")):
        assert main(["reproduce", "table1", "--out", str(tmp_path / "x")] + argv) == 2
        assert needle in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_dask_cluster_runs_and_a_killed_worker_resumes(tmp_path):
    distributed = pytest.importorskip("distributed")
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    args = ["--epochs", "25", "--data", "embedded", "--sizes", "784,64,10", "--batch-size", "100", "--seeds", "1"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, env=env) as cluster:
        # an uninterrupted reference through the cluster
        assert main(["reproduce", "table1", "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "a")]
                    + args) == 0
        # the same runs, with the dlra run's worker killed once it has written a checkpoint
        import threading

        code = {}
        t = threading.Thread(target=lambda: code.setdefault("rc", main(
            ["reproduce", "table1", "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "b")] + args)))
        t.start()
        ckpt = tmp_path / "b" / "runs" / "dlra-seed0" / "checkpoint.npz"
        deadline = time.time() + 60
        while not ckpt.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert ckpt.exists(), "the dlra run never checkpointed"
        with distributed.Client(cluster.scheduler_address) as c:
            where = [w for w, keys in c.processing().items() if any("dlra-seed0" in str(k) for k in keys)]
            pids = c.run(os.getpid, workers=where)
        assert len(pids) == 1
        killed_at = RunFolder(ckpt.parent).load().epoch
        os.kill(next(iter(pids.values())), signal.SIGKILL)
        t.join(120)
        assert code.get("rc") == 0
    assert killed_at < 25
    for run in ("baseline-seed0", "fn-seed0", "dlra-seed0"):
        a, b = load_params(tmp_path / "a" / "runs" / run), load_params(tmp_path / "b" / "runs" / run)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
        strip = lambda p: [{k: v for k, v in r.items() if k not in ("seconds", "train_seconds")} for r in tables.read_metrics(p)]  # noqa: E731
        assert strip(tmp_path / "a" / "runs" / run) == strip(tmp_path / "b" / "runs" / run)


def test_threads_per_job_share_the_cores_and_respect_the_callers_cap(monkeypatch):
    from numpy_dlra.experiments.runner import threads_per_job

    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    assert [threads_per_job(j) for j in (1, 4, 32)] == [16, 4, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert [threads_per_job(j) for j in (1, 4, 32)] == [2, 2, 1]


def test_seeds_are_a_count_or_a_list_without_repeats():
    from numpy_dlra.errors import UserError
    from numpy_dlra.experiments.reproduce import parse_seeds

    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("3,5,8") == [3, 5, 8]
    for bad in (",", "0,0", "-1,2", "0", "x"):
        with pytest.raises(UserError, match="--seeds"):
            parse_seeds(bad)
