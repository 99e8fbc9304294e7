import gzip
import struct

import numpy as np
import pytest

from numpy_dlra.errors import DataError
from numpy_dlra.data.idx import parse_idx, read_idx, sha256


def idx_bytes(arr, code=0x08):
    return bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(">u1").tobytes()


def write_gz(path, data):
    path.write_bytes(gzip.compress(data))
    return path


def test_roundtrip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = write_gz(tmp_path / "x-idx3-ubyte.gz", idx_bytes(a))
    np.testing.assert_array_equal(read_idx(p, (None, 3, 4), sha256(idx_bytes(a))), a)


def test_big_endian_int32(tmp_path):
    a = np.array([1, -2, 70000], dtype=">i4")
    data = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + a.tobytes()
    out = parse_idx(data, "f")
    assert out.dtype == np.dtype("=i4") and out.tolist() == [1, -2, 70000]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: b"\x08\x03" + d[2:], "wrong magic"),
        (lambda d: d[:2] + b"\x07" + d[3:], "wrong magic"),
        (lambda d: d[:-1], "truncated"),
        (lambda d: d[:6], "truncated header"),
        (lambda d: d[:3], "truncated"),
        (lambda d: d + b"\x00", "trailing bytes"),
        (lambda d: d[:3] + b"\x00" + d[4:], "0 dimensions"),
    ],
)
def test_bad_content_names_file_and_problem(tmp_path, mutate, message):
    a = np.zeros((2, 3), np.uint8)
    p = write_gz(tmp_path / "bad-idx2-ubyte.gz", mutate(idx_bytes(a)))
    with pytest.raises(DataError) as e:
        read_idx(p)
    assert "bad-idx2-ubyte.gz" in str(e.value) and message in str(e.value)


def test_wrong_count(tmp_path):
    p = write_gz(tmp_path / "labels.gz", idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(DataError, match=r"labels.gz: has shape \(5,\), expected \(6,\)"):
        read_idx(p, (6,))


def test_not_gzip(tmp_path):
    p = tmp_path / "plain.gz"
    p.write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(DataError, match="plain.gz: not a gzip file"):
        read_idx(p)


def test_truncated_gzip(tmp_path):
    p = tmp_path / "cut.gz"
    p.write_bytes(gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8) % 7))[:-12])
    with pytest.raises(DataError, match="cut.gz: corrupt or truncated gzip"):
        read_idx(p)


def test_checksum_mismatch(tmp_path):
    p = write_gz(tmp_path / "c.gz", idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(DataError, match="c.gz: checksum mismatch"):
        read_idx(p, expect_sha256="0" * 64)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.gz: file not found"):
        read_idx(tmp_path / "nope.gz")
