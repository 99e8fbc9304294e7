"""Runs: bitwise determinism, exact resume, refusing to overwrite, nothing written on bad input."""
import dataclasses
import json

import numpy as np
import pytest

from numpy_dlra.experiments import run_folder
from numpy_dlra.experiments.config import TrainConfig
from numpy_dlra.data.datasets import load_dataset
from numpy_dlra.errors import ConfigError, UserError
from numpy_dlra.experiments.run_folder import load_params
from numpy_dlra.experiments.train import train

SMALL = dict(sizes=(784, 32, 16, 10), batch_size=256, data="embedded")


@pytest.fixture(scope="module")
def data():
    return load_dataset("embedded")


def run(tmp_path, name, data, resume=False, **kw):
    cfg = TrainConfig(**{**SMALL, **kw})
    return train(cfg, tmp_path / name, resume=resume, progress=False, log=lambda m: None, dataset=data)


def test_same_seed_same_bits_and_different_seed_differs(tmp_path, data):
    run(tmp_path, "a", data, epochs=2, seed=3)
    run(tmp_path, "b", data, epochs=2, seed=3)
    run(tmp_path, "c", data, epochs=2, seed=4)
    a, b, c = (load_params(tmp_path / n) for n in "abc")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_resume_is_bitwise_identical(tmp_path, data, dtype):
    straight = run(tmp_path, "straight", data, epochs=3, dtype=dtype)
    run(tmp_path, "split", data, epochs=1, dtype=dtype)
    resumed = run(tmp_path, "split", data, epochs=3, dtype=dtype, resume=True)
    a, b = load_params(tmp_path / "straight"), load_params(tmp_path / "split")
    assert a["W1"].dtype == np.dtype(dtype)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "train_seconds")}  # noqa: E731
    assert strip(straight["final"]) == strip(resumed["final"])
    lines = [json.loads(s) for s in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    _, meta = run_folder.load_checkpoint(tmp_path / "split" / "checkpoint.npz")
    assert meta["epoch"] == 3 and meta["step"] == 3 * 18


def test_a_run_resumes_with_the_noise_stream_it_recorded(tmp_path, data):
    """A run begun with --grad-noise-stream uniform (as every run made before the flag) and resumed under today's
    default goes on drawing "uniform": it ends bit for bit as the uninterrupted uniform run, not as a raw one."""
    run(tmp_path, "straight", data, epochs=2, grad_noise_stream="uniform")
    run(tmp_path, "raw", data, epochs=2)
    run(tmp_path, "split", data, epochs=1, grad_noise_stream="uniform")
    run(tmp_path, "split", data, epochs=2, resume=True)  # the flag left at its default, raw
    a, b, c = (load_params(tmp_path / n) for n in ("straight", "split", "raw"))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert json.loads((tmp_path / "split" / "config.json").read_text())["grad_noise_stream"] == "uniform"


def test_resume_drops_metrics_written_after_the_last_checkpoint(tmp_path, data):
    run(tmp_path, "r", data, epochs=1)
    with open(tmp_path / "r" / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "torn": true}\n')  # as if killed between metrics and checkpoint
    run(tmp_path, "r", data, epochs=2, resume=True)
    lines = [json.loads(s) for s in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2] and "torn" not in lines[1]


def test_outputs(tmp_path, data):
    s = run(tmp_path, "o", data, epochs=1)
    files = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert files == [".lock", "checkpoint.npz", "config.json", "metrics.jsonl", "summary.json"]
    rec = json.loads((tmp_path / "o" / "metrics.jsonl").read_text())
    assert set(rec) == {"epoch", "step", "train_loss", "train_task_loss", "train_rare_loss", "val_acc", "test_acc",
                        "params", "flops_per_sample", "flops_paper", "compression", "layers", "merges", "seconds",
                        "train_seconds"}
    assert rec["params"] == 784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    assert s["dataset"] == "fashion-mnist-embedded" and s["n_train"] == 4500 and s["n_val"] == 500
    assert 30.0 < rec["test_acc"] <= 100.0  # learned something in one epoch (chance is 10 %)


def test_learns_on_the_embedded_subset(tmp_path, data):
    s = run(tmp_path, "learn", data, epochs=4, sizes=(784, 128, 10), batch_size=64)
    assert s["final"]["test_acc"] > 75.0


def test_refuses_to_overwrite_and_checks_resume_config(tmp_path, data):
    run(tmp_path, "x", data, epochs=1)
    with pytest.raises(UserError, match="already exists.*--resume"):
        run(tmp_path, "x", data, epochs=1)
    with pytest.raises(UserError, match="different configuration.*seed"):
        run(tmp_path, "x", data, epochs=2, seed=9, resume=True)
    with pytest.raises(UserError, match="no checkpoint"):
        run(tmp_path, "missing", data, epochs=2, resume=True)
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("method", ["baseline", "fn"])
def test_a_run_ignores_the_settings_its_method_never_reads(tmp_path, data, method):
    """A baseline or fn run started under other DLRA-only settings (Eq. 13's reading, the thresholds) is
    the same run: reused when finished, resumed when not, and it keeps its own configuration."""
    from numpy_dlra.experiments.runner import is_finished

    odd = dict(eq13_on="w", tau_cos=1e-3, merge_pairs="any", probe_size=0) | ({"l2_on": "dense"} if method == "baseline" else {})
    run(tmp_path, "r", data, epochs=1, method=method, **odd)
    assert is_finished(tmp_path / "r", TrainConfig(**SMALL, method=method, epochs=1))
    assert not is_finished(tmp_path / "r", TrainConfig(**SMALL, method=method, epochs=1, seed=1))
    run(tmp_path, "r", data, epochs=2, method=method, resume=True)  # today's defaults
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["epochs"] == 2 and all(saved[k] == v for k, v in odd.items())


def test_a_dlra_run_refuses_another_eq13_reading_and_l2_reading(tmp_path, data):
    from numpy_dlra.experiments.runner import is_finished

    run(tmp_path, "d", data, epochs=1, method="dlra", eq13_on="w")
    assert not is_finished(tmp_path / "d", TrainConfig(**SMALL, method="dlra", epochs=1))
    with pytest.raises(UserError, match="different configuration.*eq13_on"):
        run(tmp_path, "d", data, epochs=2, method="dlra", resume=True)
    run(tmp_path, "f", data, epochs=1, method="fn", l2_on="w")
    with pytest.raises(UserError, match="different configuration.*l2_on"):  # fn reads l2_on
        run(tmp_path, "f", data, epochs=2, method="fn", l2_on="effective", resume=True)
    with pytest.raises(UserError, match=r"method: run has 'dlra', flags give 'baseline'.*eq13_on: run has 'w', "
                                        r"flags give '\(unused\)'"):
        run(tmp_path, "d", data, epochs=2, method="baseline", resume=True)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path, data):
    run(tmp_path, "c", data, epochs=1)
    p = tmp_path / "c" / "checkpoint.npz"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(UserError, match="checkpoint.npz: unreadable checkpoint"):
        run(tmp_path, "c", data, epochs=2, resume=True)


@pytest.mark.parametrize("field, value, flag", [
    ("epochs", 0, "--epochs"), ("batch_size", -1, "--batch-size"), ("dtype", "float16", "--dtype"),
    ("lr", 0.0, "--lr"), ("dropout", 1.0, "--dropout"), ("grad_noise_eta", -1.0, "--grad-noise-eta"),
    ("data", "cifar", "--data"), ("method", "magic", "--method"), ("sizes", (784, 5), "--sizes"),
    ("lambda1", 1.0, "--lambda1"),  # RaRe without fusing: not one of the paper's methods
    ("tau_cos", 0.0, "--tau-cos"), ("tau_euc", -1.0, "--tau-euc"), ("fuse_ratio", "mean", "--fuse-ratio"),
    ("rare_axes", "some", "--rare-axes"), ("adam_merge", "keep", "--adam-merge"), ("probe_size", -1, "--probe-size"),
])
def test_impossible_config_names_the_flag(field, value, flag):
    with pytest.raises(ConfigError, match=flag):
        TrainConfig(**{field: value})


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_loss_stops_with_advice(tmp_path, data):
    with pytest.raises(UserError, match="lower --lr"):
        run(tmp_path, "nan", data, epochs=1, lr=1e30)


DLRA = dict(method="dlra", sizes=(784, 24, 24, 10), tau_cos=0.3, tau_euc=10.0)  # loose: merges within an epoch


def test_method_defaults_follow_the_paper():
    d = TrainConfig(method="dlra")
    assert (d.lambda1, d.lambda2, d.tau_cos, d.tau_euc) == (20.0, 0.1, 1e-4, 1e-1)
    assert (TrainConfig(method="fn").lambda1, TrainConfig(method="fn").lambda2) == (0.0, 0.0)


@pytest.mark.parametrize("search_every", [1, 4])
def test_dlra_run_shrinks_records_every_merge_and_resumes_bitwise(tmp_path, data, search_every):
    straight = run(tmp_path, "straight", data, epochs=3, search_every=search_every, **DLRA)
    run(tmp_path, "split", data, epochs=1, search_every=search_every, **DLRA)
    with open(tmp_path / "split" / "merges.jsonl", "a") as f:
        f.write('{"step": 99999, "torn": true}\n')  # as if killed after writing merges, before the checkpoint
    resumed = run(tmp_path, "split", data, epochs=3, resume=True, search_every=search_every, **DLRA)
    a, b = load_params(tmp_path / "straight"), load_params(tmp_path / "split")
    assert a.keys() == b.keys() and "g1" in a
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    merges = (tmp_path / "straight" / "merges.jsonl").read_text()
    assert merges == (tmp_path / "split" / "merges.jsonl").read_text()
    recs = [json.loads(s) for s in merges.splitlines()]
    final = straight["final"]
    assert len(recs) == sum(json.loads(s)["merges"] for s in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines())
    assert len(recs) > 5 and final["compression"] > 0
    assert {r["axis"] for r in recs} == {"cols", "rows"}
    assert all(r["layer"] > 1 or r["axis"] == "rows" for r in recs) and not any(r["layer"] == 3 and r["axis"] == "rows" for r in recs)
    for layer, stats in enumerate(final["layers"], start=1):  # shapes in metrics = shapes of the saved W'
        assert a[f"W{layer}"].shape == (stats["m"], stats["n"])
    assert final["params"] == sum(W.size for k, W in a.items() if k[0] in "Wbg")
    assert final["flops_per_sample"] == sum(2 * a[f"W{l}"].size for l in range(1, 4))
    assert any(stats["feat"] > stats["m"] for stats in final["layers"][:-1])  # feature groups of both signs
    strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "train_seconds")}  # noqa: E731
    assert strip(final) == strip(resumed["final"])


def test_fn_run_keeps_every_shape(tmp_path, data):
    s = run(tmp_path, "fn", data, epochs=1, method="fn")
    assert [(d["m"], d["n"]) for d in s["final"]["layers"]] == [(32, 784), (16, 32), (10, 16)]
    assert s["final"]["compression"] == 0.0 and not (tmp_path / "fn" / "merges.jsonl").exists()


def test_a_run_killed_before_its_first_checkpoint_starts_over(tmp_path, data):
    """What a run leaves when killed in its first epoch: config.json, an empty metrics.jsonl, the lock, maybe
    a temporary file. Starting it again, or resuming it, trains from the beginning."""
    straight = run(tmp_path, "straight", data, epochs=1)
    for how in ("again", "resume"):
        d = tmp_path / how
        d.mkdir()
        (d / "config.json").write_text("{}")
        (d / "metrics.jsonl").write_text("")
        (d / ".lock").write_text("")
        (d / ".checkpoint.npz.x1y2.tmp").write_bytes(b"torn")
        again = run(tmp_path, how, data, epochs=1, resume=how == "resume")
        assert again["final"]["test_acc"] == straight["final"]["test_acc"]
        np.testing.assert_array_equal(load_params(d)["W1"], load_params(tmp_path / "straight")["W1"])


def test_a_second_process_on_the_same_run_folder_refuses(tmp_path, data):
    from numpy_dlra.experiments.run_folder import RunFolder

    with RunFolder(tmp_path / "busy").lock():
        with pytest.raises(UserError, match="another process .pid [0-9]+. is training this run"):
            run(tmp_path, "busy", data, epochs=1)
    run(tmp_path, "busy", data, epochs=1)  # the lock is gone with its holder


def test_an_output_folder_that_cannot_be_created_is_a_clear_error(tmp_path, data):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(UserError, match="--out .*file/run: cannot create this folder"):
        run(tmp_path, "file/run", data, epochs=1)


def test_a_corrupt_checkpoint_falls_back_to_the_previous_one(tmp_path, data):
    straight = run(tmp_path, "straight", data, epochs=3)
    run(tmp_path, "c", data, epochs=2)
    assert (tmp_path / "c" / "checkpoint.prev.npz").is_file()
    p = tmp_path / "c" / "checkpoint.npz"
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside the arrays
    p.write_bytes(bytes(raw))
    logs = []
    resumed = train(TrainConfig(**{**SMALL, "epochs": 3}), tmp_path / "c", resume=True, progress=False,
                    log=logs.append, dataset=data)
    assert any("using the previous checkpoint (epoch 1)" in m for m in logs), logs
    for k, v in load_params(tmp_path / "straight").items():  # epoch 2 retrained from epoch 1: the same bits
        np.testing.assert_array_equal(v, load_params(tmp_path / "c")[k])
    assert straight["final"]["test_acc"] == resumed["final"]["test_acc"]


def test_after_a_fallback_the_bad_checkpoint_is_set_aside_and_the_previous_stays_good(tmp_path, data):
    run(tmp_path, "c", data, epochs=2)
    p = tmp_path / "c" / "checkpoint.npz"
    p.write_bytes(p.read_bytes()[:200])  # torn
    run(tmp_path, "c", data, epochs=3, resume=True)
    assert (tmp_path / "c" / "checkpoint.bad.npz").is_file()
    assert run_folder.load_checkpoint(tmp_path / "c" / "checkpoint.prev.npz")[1]["epoch"] == 2  # good, not the torn one


def test_a_torn_last_line_of_merges_jsonl_does_not_stop_a_resume(tmp_path, data):
    run(tmp_path, "t", data, epochs=1, **DLRA)
    with open(tmp_path / "t" / "merges.jsonl", "a") as f:
        f.write('{"step": 1, "lay')  # a full disk in the middle of an append
    run(tmp_path, "t", data, epochs=2, resume=True, **DLRA)
    assert all(json.loads(s) for s in (tmp_path / "t" / "merges.jsonl").read_text().splitlines())


def test_a_folder_with_results_is_never_taken_for_a_run_that_did_not_start(tmp_path, data):
    d = tmp_path / "r"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "metrics.jsonl").write_text('{"epoch": 1}\n')  # results, but no checkpoint
    with pytest.raises(UserError, match="already exists and is not an empty folder"):
        run(tmp_path, "r", data, epochs=1)


def test_resuming_with_fewer_epochs_than_trained_is_refused(tmp_path, data):
    run(tmp_path, "e", data, epochs=2)
    with pytest.raises(UserError, match="--epochs 1: the run in .* has trained 2 epochs already"):
        run(tmp_path, "e", data, epochs=1, resume=True)


@pytest.mark.parametrize("columns", ["channel", "coord"])
def test_a_dlra_cnn_run_merges_kernels_records_them_and_resumes_bitwise(tmp_path, data, columns):
    """--model cnn --method dlra: the convolutions' filters and columns merge, merges.jsonl and metrics.jsonl
    record them (every layer's shape, the per-axis diagnostics), and a run stopped after an epoch and resumed
    ends with the uninterrupted run's bits."""
    kw = dict(model="cnn", method="dlra", cnn_widths=(6, 4, 16), batch_size=100, lambda1=200.0, tau_cos=0.8,
              tau_euc=10.0, conv_columns=columns, conv_axes="both", grad_noise_eta=0.0, probe_size=16)
    n = slice(0, 600)  # a CNN epoch on 600 images, evaluated on 300
    data = dataclasses.replace(data, x_train=data.x_train[n], y_train=data.y_train[n], x_val=data.x_val[:100],
                               y_val=data.y_val[:100], x_test=data.x_test[:200], y_test=data.y_test[:200])
    straight = run(tmp_path, "straight", data, epochs=2, **kw)
    run(tmp_path, "split", data, epochs=1, **kw)
    resumed = run(tmp_path, "split", data, epochs=2, resume=True, **kw)
    a, b = load_params(tmp_path / "straight"), load_params(tmp_path / "split")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert (tmp_path / "straight" / "merges.jsonl").read_text() == (tmp_path / "split" / "merges.jsonl").read_text()
    recs = [json.loads(s) for s in (tmp_path / "straight" / "merges.jsonl").read_text().splitlines()]
    assert {(r["layer"], r["axis"]) for r in recs} >= {(1, "rows"), (2, "cols")}
    final = straight["final"]
    for l, stats in enumerate(final["layers"][:3], start=1):  # the kernels' shapes in metrics = the saved W'
        assert a[f"W{l}"].shape[0] == stats["m"] and stats["kernel"] == ([3, 3] if l < 3 else [12, 12])
        assert a[f"W{l}"].shape[1] == stats["n"] * (1 if columns == "coord" else 9 if l < 3 else 144)
    assert final["params"] == sum(W.size for k, W in a.items() if k[0] in "Wbg") and final["compression"] > 0
    axes = {(d["layer"], d["axis"]) for d in straight["final"]["axes"] + resumed["final"]["axes"]}
    assert axes and all(1 <= l <= 4 and a in ("cols", "rows") for l, a in axes)  # the per-axis diagnostics
    strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "train_seconds")}  # noqa: E731
    assert strip(final) == strip(resumed["final"])
