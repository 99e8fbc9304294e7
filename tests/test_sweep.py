"""The fixed-rank baseline's pieces end to end: CIFAR-100 and MNIST loading, a CNN run, a tiny sweep-rank."""
import io
import json
import pickle
import tarfile

import numpy as np
import pytest

from numpy_dlra.data import datasets
from numpy_dlra.cli import main
from numpy_dlra.experiments.config import TrainConfig
from numpy_dlra.data.datasets import load_dataset
from numpy_dlra.errors import ConfigError, DataError
from numpy_dlra.data.fetch import md5
from numpy_dlra.experiments.run_folder import load_params
from numpy_dlra.experiments.train import train


@pytest.fixture(autouse=True)
def _small_cifar(monkeypatch):
    """The loader expects 50000 + 10000 images; the fake archives here hold 600 + 100 (same format)."""
    monkeypatch.setattr(datasets, "CIFAR100_SIZES", {"train": 600, "test": 100})


def fake_cifar100(path, n_train=600, n_test=100):
    """An archive in CIFAR-100's python format (pickled dicts, channel-major rows) with known pixels."""
    g = np.random.default_rng(0)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, n in (("train", n_train), ("test", n_test)):
            d = {b"data": g.integers(0, 256, (n, 3072), dtype=np.uint8), b"fine_labels": list(g.integers(0, 100, n))}
            raw = pickle.dumps(d)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


def test_cifar100_loader_checks_the_archive_and_returns_hwc_images(tmp_path, monkeypatch):
    path = fake_cifar100(tmp_path / "cifar100" / datasets.CIFAR100_FILE)
    with pytest.raises(DataError, match="checksum mismatch"):
        datasets.load_cifar100(tmp_path / "cifar100")
    monkeypatch.setattr(datasets, "CIFAR100_MD5", md5(path.read_bytes()))
    x, y, xt, yt = datasets.load_cifar100(tmp_path / "cifar100")
    assert x.shape == (600, 32, 32, 3) and xt.shape == (100, 32, 32, 3) and y.max() <= 99
    with tarfile.open(path) as tar:
        raw = pickle.load(tar.extractfile("cifar-100-python/train"), encoding="bytes")[b"data"][7]
    assert x[7, 2, 5, 1] == raw[1024 + 2 * 32 + 5]  # green plane, row 2, column 5
    with pytest.raises(DataError, match="data_scripts/cifar100.py"):
        datasets.load_cifar100(tmp_path / "nowhere")
    fake_cifar100(path, n_train=599)  # a wrong image count is named
    monkeypatch.setattr(datasets, "CIFAR100_MD5", md5(path.read_bytes()))
    with pytest.raises(DataError, match=r"train has data \(599, 3072\)"):
        datasets.load_cifar100(tmp_path / "cifar100")


def test_cifar100_dataset_and_mlp_config(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPY_DLRA_DATA", str(tmp_path))
    path = fake_cifar100(tmp_path / "cifar100" / datasets.CIFAR100_FILE)
    monkeypatch.setattr(datasets, "CIFAR100_MD5", md5(path.read_bytes()))
    d = load_dataset(dataset="cifar100")
    assert d.name == "cifar100" and d.x_train.shape[1] == d.x_val.shape[1] == d.x_test.shape[1] == 3072
    assert len(d.x_train) + len(d.x_val) == 600 and abs(len(d.x_val) - 60) <= 50  # 10 % of each class, rounded
    assert TrainConfig(dataset="cifar100").sizes == (3072, 500, 500, 500, 500, 500, 100)


def test_missing_mnist_falls_back_to_fashion_mnist_and_says_so(tmp_path, monkeypatch, no_full_data):
    said = []
    d = load_dataset("auto", dataset="mnist", log=said.append)
    assert d.name == "fashion-mnist-embedded" and "using Fashion-MNIST instead" in said[0]
    with pytest.raises(DataError, match="data_scripts/mnist.py"):
        load_dataset("full", dataset="mnist")


@pytest.mark.parametrize("kw, flag", [
    (dict(method="dlra", rank=2), "--rank"), (dict(rank=11), "--rank"), (dict(rank=-1), "--rank"),
    (dict(cnn_widths=(8, 8, 8)), "--cnn-widths"), (dict(model="vgg"), "--model"), (dict(dataset="svhn"), "--dataset"),
])
def test_second_seed_config_errors_name_the_flag(kw, flag):
    with pytest.raises(ConfigError, match=flag):
        TrainConfig(**kw)


def small(n_per_class=30):
    x, y, xt, yt = datasets.load_embedded()
    keep = np.concatenate([np.flatnonzero(y == c)[:n_per_class] for c in range(10)])
    return datasets.make_dataset("tiny", x[keep], y[keep], xt[:200], yt[:200])


def test_cnn_with_a_fixed_rank_last_layer_trains_and_resumes_bitwise(tmp_path):
    data = small()
    kw = dict(model="cnn", rank=3, batch_size=32, data="embedded")
    train(TrainConfig(epochs=2, **kw), tmp_path / "a", progress=False, log=lambda m: None, dataset=data)
    train(TrainConfig(epochs=1, **kw), tmp_path / "b", progress=False, log=lambda m: None, dataset=data)
    train(TrainConfig(epochs=2, **kw), tmp_path / "b", resume=True, progress=False, log=lambda m: None, dataset=data)
    a, b = load_params(tmp_path / "a"), load_params(tmp_path / "b")
    assert set(a) == {"K1", "b1", "K2", "b2", "W3", "b3", "B4", "C4", "b4"} and a["B4"].shape == (10, 3)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_sweep_rank_smoke(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep-rank", "--model", "mlp", "--dataset", "fashion-mnist", "--data", "embedded", "--ranks", "3,1",
            "--epochs", "1", "--out", str(out)]
    assert main(argv) == 0
    result = json.loads((out / "results.json").read_text())
    assert [r["rank"] for r in result["rows"]] == ["full", 3, 1]
    full, r3, r1 = result["rows"]
    assert r3["params"] == full["params"] - 10 * 500 + (10 * 3 + 3 * 500) and r1["reduction"] > r3["reduction"] > 0
    W = load_params(out / "full-rank")["W6"].astype(np.float64)
    s = np.linalg.svd(W, compute_uv=False)
    assert abs(r3["spectral_distance"] - s[3]) < 1e-9 and result["spectral_distance_by_rank"][-1] == 0.0
    table = (out / "table.md").read_text()
    assert "| 3 | " in table and "(0.3%)" in table and (out / "spectral.png").stat().st_size > 1000
    assert main(argv) == 0 and "done before, reused" in capsys.readouterr().out  # a finished sweep is reused


def test_sweep_rank_bad_ranks_exit_2(tmp_path, capsys):
    assert main(["sweep-rank", "--ranks", "4,x", "--out", str(tmp_path / "s")]) == 2
    assert "--ranks '4,x'" in capsys.readouterr().err
    assert main(["sweep-rank", "--model", "mlp", "--ranks", "11", "--out", str(tmp_path / "s")]) == 2
    assert not (tmp_path / "s").exists()


def test_compare_ranks_one_table(tmp_path, capsys):
    """DLRA vs SVD truncation (with and without fine-tuning) vs fixed-rank factors, at DLRA's ranks."""
    common = dict(sizes=(784, 24, 24, 10), batch_size=256, data="embedded", epochs=3)
    data = load_dataset("embedded")
    train(TrainConfig(method="dlra", tau_cos=0.3, tau_euc=10.0, **common), tmp_path / "dlra", progress=False,
          log=lambda m: None, dataset=data)
    train(TrainConfig(**common), tmp_path / "base", progress=False, log=lambda m: None, dataset=data)
    argv = ["compare-ranks", "--dlra", str(tmp_path / "dlra"), "--baseline", str(tmp_path / "base"),
            "--finetune-epochs", "1", "--out", str(tmp_path / "cmp")]
    assert main(argv) == 0
    res = json.loads((tmp_path / "cmp" / "results.json").read_text())
    layers = json.loads((tmp_path / "dlra" / "summary.json").read_text())["final"]["layers"]
    for l, d in res["ranks"].items():
        stats = layers[int(l) - 1]
        assert (d["m'"], d["n'"]) == (stats["m"], stats["n"]) and d["numerical_rank"] == min(stats["m"], stats["n"])
    sizes = common["sizes"]
    reduced = {int(l): min(d["m'"], d["n'"]) for l, d in res["ranks"].items()
               if min(d["m'"], d["n'"]) < min(sizes[int(l)], sizes[int(l) - 1])}
    assert reduced, "the DLRA run reduced no rank: the comparison would be empty"
    assert len(res["rows"]) == 5
    scratch = load_params(tmp_path / "cmp" / "fixed-rank-scratch")
    for l, r in reduced.items():
        assert scratch[f"B{l}"].shape[1] == r and scratch[f"C{l}"].shape[0] == r
    assert res["rows"][2]["params"] == res["rows"][3]["params"] == res["rows"][4]["params"]  # the same B C shapes
    assert "| DLRA (rank found while training) |" in (tmp_path / "cmp" / "table.md").read_text()
    assert main(argv[:2] + [str(tmp_path / "base")] + argv[3:]) == 2  # a baseline run given as --dlra
    assert "needs dlra" in capsys.readouterr().err
