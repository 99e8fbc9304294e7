"""The command line: exit status 2 with a clear message for bad input, and nothing left behind."""
import gzip
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from numpy_dlra.data import datasets
from numpy_dlra.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_train_embedded_end_to_end(tmp_path, capsys, no_full_data):
    rc = main(["train", "--data", "auto", "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0 and "falling back to the embedded subset" in out + err
    assert "done: fashion-mnist-embedded, 1 epochs, test accuracy" in out
    assert (tmp_path / "run" / "summary.json").is_file()


def test_train_dlra_end_to_end(tmp_path, capsys, no_full_data):
    rc = main(["train", "--method", "dlra", "--data", "embedded", "--epochs", "1", "--out", str(tmp_path / "d"),
               "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "% compression)" in out and "shapes 500x784 " in out
    assert (tmp_path / "d" / "merges.jsonl").is_file()


@pytest.mark.parametrize("argv, needle", [
    (["train", "--epochs", "0"], "--epochs 0: must be an integer >= 1"),
    (["train", "--batch-size", "0"], "--batch-size 0"),
    (["train", "--lr", "-1"], "--lr -1.0: must be > 0"),
    (["train", "--dropout", "1.5"], "--dropout 1.5"),
    (["train", "--method", "dlra", "--tau-cos", "0"], "--tau-cos 0.0: must be in (0, 1]"),
    (["train", "--method", "fn", "--lambda1", "20"], "--lambda1 20.0: the RaRe term belongs to --method dlra"),
])
def test_impossible_flags_exit_2(tmp_path, capsys, argv, needle):
    out = tmp_path / "never"
    assert main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not out.exists()


def test_unknown_choice_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--dtype", "float16"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def _fill_cache(tmp_path, monkeypatch):
    """A cache folder holding the four file names (real copies where Debian's package has them)."""
    cache = tmp_path / "cache" / "fashion-mnist"
    cache.mkdir(parents=True)
    for name in datasets.FASHION_SHA256:
        src = datasets.DEBIAN_FASHION_DIR / name
        (cache / name).write_bytes(src.read_bytes() if src.exists() else b"")
    monkeypatch.setenv("NUMPY_DLRA_DATA", str(tmp_path / "cache"))
    return cache


IMAGES = gzip.compress(b"\x00\x00\x08\x03" + struct.pack(">3I", 60000, 28, 28) + bytes(16))


@pytest.mark.parametrize("damage, needle", [
    (lambda b: b[: len(b) // 2], "corrupt or truncated gzip"),
    (lambda b: b"PK\x03\x04" + b[4:], "not a gzip file"),
    (lambda b: b, "checksum mismatch"),  # well-formed gzip, wrong content (structure errors: test_idx.py)
    (lambda b: b"\x1f\x8bnot really", "corrupt or truncated gzip"),
])
def test_corrupt_data_exits_2_naming_the_file(tmp_path, capsys, monkeypatch, damage, needle):
    cache = _fill_cache(tmp_path, monkeypatch)
    (cache / "train-images-idx3-ubyte.gz").write_bytes(damage(IMAGES))  # the first file read
    out = tmp_path / "run"
    assert main(["train", "--data", "full", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz: " + needle in err and "Traceback" not in err, err
    assert not out.exists()


@pytest.mark.skipif(not (datasets.DEBIAN_FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
                    reason="needs a real images file (Debian's dataset-fashion-mnist) so that the labels are reached")
def test_corrupt_labels_file_is_named(tmp_path, capsys, monkeypatch):
    cache = _fill_cache(tmp_path, monkeypatch)
    (cache / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\xea\x60" + bytes(59999)))
    assert main(["train", "--data", "full", "--out", str(tmp_path / "run")]) == 2
    assert "train-labels-idx1-ubyte.gz: checksum mismatch" in capsys.readouterr().err


def test_module_entry_point_exit_status(tmp_path):
    r = subprocess.run([sys.executable, "-m", "numpy_dlra", "train", "--epochs", "-3", "--out", str(tmp_path / "x")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "numpy-dlra: error: --epochs -3" in r.stderr and "Traceback" not in r.stderr


def test_an_output_folder_that_cannot_be_created_exits_2(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "run"
    assert main(["train", "--data", "embedded", "--epochs", "1", "--sizes", "784,8,10", "--out", str(out),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--out {out}: cannot create this folder" in err and "Traceback" not in err
