import functools
import gzip
import struct

import numpy as np
import pytest

from numpy_dlra.data import datasets, prepare
from numpy_dlra.errors import DataError
from numpy_dlra.data.idx import sha256


def test_embedded_subset_is_stratified():
    x_train, y_train, x_test, y_test = datasets.load_embedded()
    assert x_train.shape == (5000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert x_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [500] * 10
    assert np.bincount(y_test).tolist() == [100] * 10


def test_validation_split_is_stratified_seeded_and_disjoint():
    labels = np.repeat(np.arange(10), [100, 50, 70, 30, 100, 100, 100, 100, 100, 90])
    rng = lambda: np.random.default_rng(7)  # noqa: E731
    val, train = datasets.stratified_indices(labels, fraction=0.1, rng=rng())
    val2, _ = datasets.stratified_indices(labels, fraction=0.1, rng=rng())
    np.testing.assert_array_equal(val, val2)
    assert np.bincount(labels[val]).tolist() == [10, 5, 7, 3, 10, 10, 10, 10, 10, 9]
    assert len(np.intersect1d(val, train)) == 0 and len(val) + len(train) == len(labels)


def test_auto_falls_back_to_embedded_and_says_so(no_full_data):
    said = []
    d = datasets.load_dataset("auto", log=said.append)
    assert d.name == "fashion-mnist-embedded" and "falling back to the embedded subset" in said[0]
    assert d.x_train.shape == (4500, 784) and d.x_val.shape == (500, 784) and d.x_test.shape == (1000, 784)
    assert d.x_train.dtype == np.float32 and 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0


def test_full_without_files_is_a_clear_error(no_full_data):
    with pytest.raises(DataError, match="Fashion-MNIST not found.*data_scripts/fashion_mnist.py"):
        datasets.load_dataset("full")


@pytest.mark.skipif(datasets.find_fashion_mnist() is None, reason="the full Fashion-MNIST is not on this machine")
def test_embedded_subset_regenerates_identically():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "mk", Path(__file__).parents[1] / "data_scripts" / "make_embedded_subset.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    built = mk.build()
    x_train, y_train, x_test, y_test = datasets.load_embedded()
    shipped = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    assert mk.digest(built) == mk.digest(shipped)


# --- prepare_fashion_mnist on a miniature data set (real checksums are for the real files) ---

def _idx(arr):
    return bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


@pytest.fixture
def mini(tmp_path, monkeypatch):
    """A 6-image 'Fashion-MNIST' in a fake Debian folder and a fake upstream, with its checksums."""
    rng = np.random.default_rng(0)
    raw = {
        "train-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)),
        "train-labels-idx1-ubyte.gz": _idx(np.arange(6, dtype=np.uint8)),
        "t10k-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte.gz": _idx(np.arange(2, dtype=np.uint8)),
    }
    monkeypatch.setattr(datasets, "FASHION_SHA256", {k: sha256(v) for k, v in raw.items()})
    monkeypatch.setattr(datasets, "_shapes", functools.partial(_ORIG_SHAPES, 6, 2))
    for folder in ("debian", "upstream"):
        (tmp_path / folder).mkdir()
        for k, v in raw.items():
            (tmp_path / folder / k).write_bytes(gzip.compress(v, mtime=0))
    return tmp_path


_ORIG_SHAPES = datasets._shapes


def test_prepare_copies_from_debian_then_uses_cache(mini):
    cache = mini / "cache"
    got = prepare.prepare_fashion_mnist(cache, mini / "debian", "file:///nonexistent/", log=lambda m: None)
    assert set(got.values()) == {"debian"}
    again = prepare.prepare_fashion_mnist(cache, mini / "nowhere", "file:///nonexistent/", log=lambda m: None)
    assert set(again.values()) == {"cache"}
    assert datasets.load_fashion_mnist(cache)[1].tolist() == list(range(6))


def test_prepare_downloads_and_replaces_a_corrupt_cache_file(mini):
    cache = mini / "cache"
    cache.mkdir()
    (cache / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    said = []
    got = prepare.prepare_fashion_mnist(cache, mini / "nowhere", (mini / "upstream").as_uri() + "/", log=said.append)
    assert all(v.startswith("file://") for v in got.values())
    assert "not a gzip file" in said[0]
    assert sorted(p.name for p in cache.iterdir()) == sorted(datasets.FASHION_SHA256)  # no temporary files


def test_prepare_rejects_a_bad_download_and_leaves_nothing(mini):
    cache = mini / "cache"
    bad = mini / "bad-upstream"
    bad.mkdir()
    for k in datasets.FASHION_SHA256:
        (bad / k).write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x05"))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        prepare.prepare_fashion_mnist(cache, mini / "nowhere", bad.as_uri() + "/", log=lambda m: None)
    assert list(cache.iterdir()) == []


def test_prepare_without_any_source_names_the_url(mini):
    with pytest.raises(DataError, match="could not download file:///nonexistent/train-images"):
        prepare.prepare_fashion_mnist(mini / "cache", mini / "nowhere", "file:///nonexistent/", log=lambda m: None)


def test_prepare_mnist_checks_md5(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for k in datasets.MNIST_MD5:
        (mirror / k).write_bytes(b"not mnist")
    with pytest.raises(DataError, match="md5"):
        prepare.prepare_mnist(tmp_path / "cache", [mirror.as_uri() + "/"], log=lambda m: None)
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []
