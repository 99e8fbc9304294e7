"""Your own data (`--data FILE.npz`, `own.from_arrays`): one scaling rule, widths from the data, and runs on
it that reload, resume, and refuse other data. The bad files are in tests/test_fuzz.py."""
import json

import numpy as np
import pytest

from numpy_dlra.cli import main
from numpy_dlra.data import own
from numpy_dlra.data.datasets import SCALING_RULE
from numpy_dlra.errors import ConfigError, DataError
from numpy_dlra.experiments.config import TrainConfig
from numpy_dlra.experiments.run_folder import RunFolder
from numpy_dlra.experiments.train import train


def arrays(n=60, shape=(6, 6), classes=3, dtype=np.uint8, seed=0):
    """Separable toy images: class c is bright in row block c. (x_train, y_train, x_test, y_test)."""
    rng = np.random.default_rng(seed)

    def draw(n):
        y = np.arange(n) % classes
        x = rng.uniform(0, 60, (n,) + shape)
        for c in range(classes):
            x[y == c, 2 * c % shape[0]] += 180
        return x.astype(dtype), y

    return (*draw(n), *draw(n // 2))


def save(path, **kw):
    x, y, xt, yt = arrays(**kw)
    np.savez(path, x_train=x, y_train=y, x_test=xt, y_test=yt)
    return path


def test_uint8_inputs_are_divided_by_255_and_floats_used_as_given():
    x, y, xt, yt = arrays()
    ds = own.from_arrays(x, y, xt, yt)
    assert ds.scaling == "uint8/255" and np.allclose(ds.x_test, xt.reshape(len(xt), -1) / 255.0)
    f = (x / 255.0).astype(np.float32)
    ds = own.from_arrays(f, y, (xt / 255.0).astype(np.float32), yt)
    assert ds.scaling == "as given" and np.array_equal(ds.x_test, (xt / 255.0).astype(np.float32).reshape(len(xt), -1))
    assert "uint8" in SCALING_RULE and "as given" in SCALING_RULE


def test_float_pixels_in_0_255_are_used_as_given_and_said_so_in_one_line():
    x, y, xt, yt = arrays()
    said = []
    ds = own.from_arrays(x.astype(np.float32), y, xt.astype(np.float32), yt, source="px.npz", log=said.append)
    assert len(said) == 1 and "px.npz" in said[0] and "0-255" in said[0]
    assert ds.x_train.max() > 100  # not rescaled
    said.clear()
    own.from_arrays(x / 255.0, y, xt / 255.0, yt, log=said.append)
    assert said == []


@pytest.mark.parametrize("shape,expect", [((12,), (12,)), ((4, 5), (4, 5, 1)), ((4, 5, 3), (4, 5, 3))])
def test_vectors_and_images_of_any_shape(shape, expect):
    x, y, xt, yt = arrays(shape=shape)
    ds = own.from_arrays(x, y, xt, yt)
    assert ds.input_shape == expect and ds.x_train.shape[1] == int(np.prod(shape)) and ds.n_classes == 3


def test_given_validation_arrays_are_used_instead_of_a_split():
    x, y, xt, yt = arrays()
    ds = own.from_arrays(x, y, xt, yt, x_val=xt[:7], y_val=yt[:7])
    assert len(ds.y_val) == 7 and len(ds.y_train) == len(y)
    ds = own.from_arrays(x, y, xt, yt, val_fraction=0.2)
    assert len(ds.y_val) == 12 and len(ds.y_train) == 48  # stratified: 4 of each class's 20


def test_the_config_takes_its_widths_from_the_data():
    x, y, xt, yt = arrays(shape=(4, 5))
    ds = own.from_arrays(x, y, xt, yt)
    cfg = TrainConfig(data="arrays", method="dlra").fit(ds)
    assert cfg.sizes == (20, 500, 500, 500, 500, 500, 3) and cfg.dataset == "own"
    assert (cfg.input_shape, cfg.input_scaling, cfg.data_sha256) == ((4, 5, 1), "uint8/255", ds.sha256)
    assert TrainConfig(data="arrays", sizes=(20, 8, 3)).fit(ds).sizes == (20, 8, 3)
    with pytest.raises(ConfigError, match=r"--sizes 784,8,10: arrays holds inputs of width 20 .* and 3 classes"):
        TrainConfig(data="arrays", sizes=(784, 8, 10)).fit(ds)
    with pytest.raises(ConfigError, match="--dataset"):
        TrainConfig(data="mine.npz", dataset="cifar100")


def test_a_config_whose_split_differs_from_the_arrays_split_is_refused():
    """from_arrays makes the validation split; a TrainConfig asking for another one would record a split the
    run never used, so fitting it to the arrays is an error naming both. Given x_val, there is no split."""
    x, y, xt, yt = arrays()
    ds = own.from_arrays(x, y, xt, yt, val_fraction=0.2, split_seed=3)
    assert ds.split == (0.2, 3)
    with pytest.raises(ConfigError, match=r"val_fraction=0.1, split_seed=0: arrays were split with val_fraction=0.2, "
                                          r"split_seed=3"):
        TrainConfig(data="arrays").fit(ds)
    assert TrainConfig(data="arrays", val_fraction=0.2, split_seed=3).fit(ds).val_fraction == 0.2
    given = own.from_arrays(x[:40], y[:40], xt, yt, x_val=x[40:], y_val=y[40:])
    assert given.split is None and TrainConfig(data="arrays", val_fraction=0.3).fit(given).sizes[-1] == 3


def test_train_from_python_arrays(tmp_path):
    x, y, xt, yt = arrays()
    ds = own.from_arrays(x, y, xt, yt)
    cfg = TrainConfig(data="arrays", method="dlra", sizes=(36, 12, 12, 3), epochs=2, batch_size=16, lambda1=50.0,
                      tau_cos=1e-2)
    s = train(cfg, tmp_path / "run", progress=False, log=lambda m: None, dataset=ds)
    assert s["data"]["source"] == "arrays" and s["data"]["sha256"] == ds.sha256 and s["data"]["n_classes"] == 3
    assert s["final"]["test_acc"] > 60  # the toy classes are separable
    history = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert s["merges_total"] == sum(r["merges"] for r in history) >= s["final"]["merges"]
    with pytest.raises(DataError, match="--data arrays"):
        train(cfg, tmp_path / "run2", progress=False, log=lambda m: None)


def test_a_run_on_a_file_records_it_reloads_resumes_and_refuses_other_data(tmp_path, capsys):
    f = save(tmp_path / "mine.npz")
    run = tmp_path / "run"
    flags = ["train", "--data", str(f), "--method", "dlra", "--sizes", "36,10,10,3", "--batch-size", "16",
             "--out", str(run), "--no-progress"]
    assert main(flags + ["--epochs", "1"]) == 0
    assert "done: own, 1 epochs" in capsys.readouterr().out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"] == str(f) and cfg["dataset"] == "own" and cfg["input_scaling"] == "uint8/255"
    assert cfg["data_sha256"] == own.file_sha256(f) and cfg["input_shape"] == [6, 6, 1]
    state = RunFolder(run).load()  # no file needed to reload the run
    assert state.config.sizes == (36, 10, 10, 3) and state.epoch == 1
    assert main(flags + ["--epochs", "2", "--resume"]) == 0
    assert json.loads((run / "summary.json").read_text())["final"]["epoch"] == 2
    old = own.file_sha256(f)
    save(f, seed=1)  # the same name, other contents
    capsys.readouterr()
    assert main(flags + ["--epochs", "3", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "has changed since the run" in err and old in err and own.file_sha256(f) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_default_sizes_come_from_the_file(tmp_path, capsys):
    f = save(tmp_path / "v.npz", shape=(9,))
    assert main(["train", "--data", str(f), "--epochs", "1", "--batch-size", "16", "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["sizes"] == [9, 500, 500, 500, 500, 500, 3]
    assert main(["train", "--data", str(f), "--sizes", "784,10", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "--sizes 784,10" in err and "width 9" in err and "3 classes" in err and not (tmp_path / "s").exists()


def test_the_cnn_takes_its_image_shape_from_the_file(tmp_path):
    f = save(tmp_path / "img.npz", shape=(10, 10, 2))
    assert main(["train", "--data", str(f), "--model", "cnn", "--epochs", "1", "--batch-size", "16",
                 "--out", str(tmp_path / "c"), "--no-progress"]) == 0
    cfg = TrainConfig.from_dict(json.loads((tmp_path / "c" / "config.json").read_text()))
    assert cfg.input_shape == (10, 10, 2) and cfg.sizes[-1] == 3
    v = save(tmp_path / "vec.npz", shape=(9,))
    assert main(["train", "--data", str(v), "--model", "cnn", "--out", str(tmp_path / "d")]) == 2


def test_the_cnn_refuses_channels_first_or_too_small_images_before_making_a_run(tmp_path, capsys):
    """(N, C, H, W) arrays read as (H=C, W=H, C=W): a CNN on them has no pixel left after its two 3x3
    convolutions and 2x2 pool. Refused by name (exit 2, no folder), as are images under 6 x 6."""
    for shape in ((3, 10, 10), (5, 12, 1)):
        f = save(tmp_path / "img.npz", shape=shape)
        assert main(["train", "--data", str(f), "--model", "cnn", "--out", str(tmp_path / "c")]) == 2
        err = capsys.readouterr().err
        assert "at least 6 x 6" in err and "channels last" in err and "transpose(0, 2, 3, 1)" in err
        assert not (tmp_path / "c").exists()
    f = save(tmp_path / "six.npz", shape=(6, 6, 1))  # the smallest image the CNN takes: one pooled pixel
    assert main(["train", "--data", str(f), "--model", "cnn", "--epochs", "1", "--batch-size", "16",
                 "--cnn-widths", "2,2,4", "--out", str(tmp_path / "s"), "--no-progress"]) == 0


def test_a_validation_split_that_would_be_empty_is_refused():
    x, y, xt, yt = arrays(n=12)  # 4 per class: 10 % of each rounds to none
    with pytest.raises(DataError, match="--val-fraction 0.1 holds out no validation example"):
        own.from_arrays(x, y, xt, yt)


def test_reproduce_and_sweep_rank_take_the_file_too(tmp_path, capsys):
    f = save(tmp_path / "img.npz", shape=(10, 10))
    assert main(["reproduce", "table1", "--data", str(f), "--epochs", "1", "--seeds", "1", "--sizes", "100,8,3",
                 "--batch-size", "16", "--methods", "baseline,dlra", "--out", str(tmp_path / "rep")]) == 0
    assert "own, batch 16" in capsys.readouterr().out
    cfg = json.loads((tmp_path / "rep" / "runs" / "dlra-seed0" / "config.json").read_text())
    assert cfg["data_sha256"] == own.file_sha256(f)
    assert main(["sweep-rank", "--data", str(f), "--epochs", "1", "--ranks", "2", "--out", str(tmp_path / "sw")]) == 0
    assert "of the CNN on own" in (tmp_path / "sw" / "table.md").read_text()


def test_compare_ranks_analyze_and_export_work_on_runs_of_a_file(tmp_path, capsys):
    f = save(tmp_path / "mine.npz", n=120)
    common = ["--data", str(f), "--sizes", "36,12,12,3", "--batch-size", "16", "--epochs", "2", "--no-progress"]
    assert main(["train", "--method", "dlra", "--lambda1", "200", "--tau-cos", "0.5", "--tau-euc", "100", *common,
                 "--out", str(tmp_path / "d")]) == 0
    assert main(["train", "--method", "baseline", *common, "--out", str(tmp_path / "b")]) == 0
    assert main(["compare-ranks", "--dlra", str(tmp_path / "d"), "--baseline", str(tmp_path / "b"),
                 "--finetune-epochs", "1", "--out", str(tmp_path / "c")]) == 0
    assert "own" in (tmp_path / "c" / "table.md").read_text()
    assert main(["analyze", "runs", str(tmp_path / "d"), str(tmp_path / "b")]) == 0
    assert main(["export", str(tmp_path / "d"), "--out", str(tmp_path / "e.npz")]) == 0
    meta = json.loads(str(np.load(tmp_path / "e.npz")["meta"]))
    assert meta["input_scaling"] == "uint8/255" and meta["data_sha256"] == own.file_sha256(f)
    save(f, n=120, seed=3)  # the file changed: compare-ranks must not read other data as the run's
    capsys.readouterr()
    assert main(["compare-ranks", "--dlra", str(tmp_path / "d"), "--baseline", str(tmp_path / "b"),
                 "--finetune-epochs", "1", "--out", str(tmp_path / "c2")]) == 2
    assert "not the data the run read" in capsys.readouterr().err
