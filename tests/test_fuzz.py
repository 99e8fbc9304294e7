"""Bad input, fuzzed: readers and the configuration get truncated, oversized, wrong-magic and random bytes
or values, and answer with a UserError (exit status 2 at the command line) that names the file or flag,
never another exception, and leave no partial file."""
import gzip
import io
import json
import struct
import tarfile

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from numpy_dlra.cli import main
from numpy_dlra.data import datasets
from numpy_dlra.data.idx import parse_idx, read_idx
from numpy_dlra.errors import ConfigError, UserError
from numpy_dlra.experiments.config import TrainConfig
from numpy_dlra.experiments.run_folder import load_checkpoint, save_checkpoint

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
IDX = struct.pack(">BBBBIII", 0, 0, 0x08, 3, 2, 3, 3) + bytes(range(18))  # a valid 2 x 3 x 3 uint8 IDX file
SUBSET_HEAD = datasets.EMBEDDED_PATH.read_bytes()[:4096]  # the embedded subset's zip structure, then truncated


def mutations(valid):
    """Truncations, extensions, single-byte flips of `valid`, wrong magic, and random bytes."""
    n = len(valid)
    return st.one_of(
        st.integers(0, n - 1).map(lambda k: valid[:k]),
        st.binary(min_size=1, max_size=64).map(lambda b: valid + b),
        st.tuples(st.integers(0, n - 1), st.integers(1, 255)).map(
            lambda t: valid[:t[0]] + bytes([valid[t[0]] ^ t[1]]) + valid[t[0] + 1:]),
        st.binary(max_size=4).map(lambda b: b + valid[4:]),
        st.binary(max_size=256),
    )


@FUZZ
@given(mutations(IDX))
def test_idx_parser(data):
    try:
        a = parse_idx(data, "fuzz.idx", expect_shape=(2, 3, 3))
    except UserError as exc:
        assert "fuzz.idx" in str(exc)
    else:
        assert a.shape == (2, 3, 3)


@FUZZ
@given(st.one_of(mutations(gzip.compress(IDX, mtime=0)), st.binary(max_size=200)))
def test_idx_gzip_files(tmp_path, data):
    p = tmp_path / "f.gz"
    p.write_bytes(data)
    try:
        read_idx(p, expect_shape=(2, 3, 3))
    except UserError as exc:
        assert str(p) in str(exc)


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    p = tmp_path_factory.mktemp("ck") / "checkpoint.npz"
    save_checkpoint(p, {"param/W1": np.arange(12, dtype=np.float32).reshape(3, 4)}, {"epoch": 1, "config": {}})
    return p.read_bytes()


@FUZZ
@given(data=st.data())
def test_checkpoints(tmp_path, checkpoint_bytes, data):
    raw = data.draw(mutations(checkpoint_bytes))
    p = tmp_path / "checkpoint.npz"
    p.write_bytes(raw)
    try:
        arrays, meta = load_checkpoint(p)
    except UserError as exc:
        assert str(p) in str(exc) and "unreadable checkpoint" in str(exc)
    else:  # whatever got through is the checkpoint itself (a change in zip padding, say)
        np.testing.assert_array_equal(arrays["param/W1"], np.arange(12, dtype=np.float32).reshape(3, 4))


@FUZZ
@given(data=st.data())
def test_embedded_subset_file(tmp_path, monkeypatch, data):
    raw = data.draw(st.one_of(mutations(SUBSET_HEAD), st.binary(max_size=128)))
    p = tmp_path / "subset.npz"
    p.write_bytes(raw)
    monkeypatch.setattr(datasets, "EMBEDDED_PATH", p)
    with pytest.raises(UserError, match="subset.npz"):
        datasets.load_embedded()


def test_embedded_subset_with_wrong_arrays(tmp_path, monkeypatch):
    p = tmp_path / "subset.npz"
    np.savez(p, x_train=np.zeros((5, 28, 28), np.uint8), y_train=np.zeros(4, np.uint8),
             x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.zeros(2, np.uint8))
    monkeypatch.setattr(datasets, "EMBEDDED_PATH", p)
    with pytest.raises(UserError, match="subset.npz.*5 images and 4 labels"):
        datasets.load_embedded()


@FUZZ
@given(st.binary(max_size=2048))
def test_cifar_archive(tmp_path, monkeypatch, data):
    d = tmp_path / "cifar100"
    d.mkdir(exist_ok=True)
    (d / "cifar-100-python.tar.gz").write_bytes(data)
    with pytest.raises(UserError, match="cifar-100-python.tar.gz"):
        datasets.load_cifar100(d)


json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
                           | st.text(max_size=5), lambda c: st.lists(c, max_size=3), max_leaves=4)


@FUZZ
@given(st.dictionaries(st.sampled_from([f.name for f in TrainConfig.__dataclass_fields__.values()]), json_values,
                       max_size=4))
@example({"dataset": []})  # found by hypothesis on another machine: an unhashable dataset crashed the lookup
@example({"dataset": {"a": 1}, "method": "dlra"})
def test_config_json(d):
    try:
        TrainConfig.from_dict(d)
    except ConfigError as exc:
        # a flag, or one of the keys filled in from the data (not flags)
        assert str(exc).startswith(("--", "config key ")) or "unknown configuration keys" in str(exc)


@FUZZ
@given(st.sampled_from(["--lr", "--epochs", "--batch-size", "--tau-cos", "--tau-euc", "--dropout", "--lambda1",
                        "--seed", "--grad-noise-eta", "--search-every", "--beta1", "--val-fraction"]),
       st.one_of(st.integers(-10**9, 0).map(str), st.sampled_from(["0", "-1", "nan", "inf", "-inf", "1e400", "2", "x"])))
def test_command_line_values(tmp_path, capsys, flag, value):
    """Exit status 2 and a message naming the flag (argparse's, for values it cannot parse), no traceback,
    and no run folder; or, for a value that is valid after all, a finished run."""
    out = tmp_path / "run"
    try:
        rc = main(["train", "--method", "dlra", "--data", "embedded", "--epochs", "1", "--sizes", "784,4,10",
                   f"{flag}={value}", "--out", str(out), "--no-progress"])
    except SystemExit as exc:  # argparse: not a number at all
        rc = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if rc != 0:
        assert rc == 2 and flag in err and not out.exists(), (rc, err)
    else:
        assert (out / "summary.json").is_file()
    import shutil

    shutil.rmtree(out, ignore_errors=True)


def test_a_batch_larger_than_the_data_is_refused(tmp_path, capsys):
    assert main(["train", "--data", "embedded", "--batch-size", "100000", "--out", str(tmp_path / "b")]) == 2
    assert "--batch-size 100000: larger than the 4500 training images" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def _own_arrays():
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 256, (30, 3, 3), dtype=np.uint8), "y_train": np.arange(30) % 3,
            "x_test": rng.integers(0, 256, (6, 3, 3), dtype=np.uint8), "y_test": np.arange(6) % 3}


BAD_OWN = {  # case: (change to the valid arrays, the key the message must name)
    "a missing key": (lambda a: {k: v for k, v in a.items() if k != "y_test"}, "y_test"),
    "a non-numeric dtype": (lambda a: a | {"x_test": np.array(["a"] * 6)}, "x_test"),
    "boolean inputs": (lambda a: a | {"x_train": a["x_train"] > 9}, "x_train"),
    "lengths that do not match": (lambda a: a | {"y_train": a["y_train"][:-1]}, "y_train"),
    "float labels": (lambda a: a | {"y_train": a["y_train"] + 0.5}, "y_train"),
    "a negative label": (lambda a: a | {"y_test": a["y_test"] - 1}, "y_test"),
    "a class with no training example": (lambda a: a | {"y_test": a["y_test"] + 2}, "y_train"),
    "NaN": (lambda a: a | {"x_test": np.where(np.eye(3, dtype=bool), np.nan, 1.0)[None].repeat(6, 0)}, "x_test"),
    "Inf": (lambda a: a | {"x_train": np.full((30, 3, 3), np.inf)}, "x_train"),
    "an empty split": (lambda a: a | {"x_test": a["x_test"][:0], "y_test": a["y_test"][:0]}, "x_test"),
    "images of different shapes": (lambda a: a | {"x_test": np.zeros((6, 3, 4), np.uint8)}, "x_test"),
    "a label array of images": (lambda a: a | {"y_train": a["y_train"][:, None]}, "y_train"),
}


@pytest.mark.parametrize("case", sorted(BAD_OWN))
def test_own_data_files_that_are_refused(tmp_path, capsys, case):
    """Exit status 2, one line naming the file and the key, no traceback, and no run folder."""
    change, key = BAD_OWN[case]
    f = tmp_path / "mine.npz"
    np.savez(f, **change(_own_arrays()))
    out = tmp_path / "run"
    assert main(["train", "--data", str(f), "--epochs", "1", "--batch-size", "4", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(f) in err and key in err and "Traceback" not in err, err
    assert not out.exists()


def test_a_file_that_is_not_an_npz_is_refused(tmp_path, capsys):
    for name, body in (("text.npz", b"x_train,y_train\n1,2\n"), ("array.npz", None)):
        f = tmp_path / name
        if body is None:
            np.save(tmp_path / "array.npy", np.zeros(3))
            (tmp_path / "array.npy").rename(f)
        else:
            f.write_bytes(body)
        assert main(["train", "--data", str(f), "--out", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert f"{f}: not an .npz file" in err and not (tmp_path / "run").exists()


def _npz_bytes():
    buf = io.BytesIO()
    np.savez(buf, **_own_arrays())
    return buf.getvalue()


@FUZZ
@given(mutations(_npz_bytes()))
def test_own_data_file_bytes(tmp_path, data):
    from numpy_dlra.data.own import load_npz

    f = tmp_path / "fuzz.npz"
    f.write_bytes(data)
    try:
        ds = load_npz(f)
    except UserError as exc:
        assert str(f) in str(exc)
    else:
        assert ds.x_train.shape[1] == 9
