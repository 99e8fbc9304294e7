"""Reader for the IDX format of (Fashion-)MNIST, with validation and clear errors.

An IDX file is: two zero bytes, a type code, the number of dimensions d, then d big-endian
uint32 sizes, then the data in C order. Fashion-MNIST ships it gzip-compressed; this reader takes
the gzip file (or, with ``compressed=False``, the raw bytes) and checks everything it can: gzip
integrity, magic number, type code, dimensions, the expected shape and the exact length.
"""
import gzip
import hashlib
import os
import zlib

import numpy as np

from ..errors import DataError

# IDX type code -> big-endian dtype
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_gzip(path) -> bytes:
    """Return the decompressed bytes of the gzip file `path`, or raise DataError naming it."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            if head != b"\x1f\x8b":
                raise DataError(f"{path}: not a gzip file (starts with {head!r}); delete it and prepare the data again")
            f.seek(0)
            return gzip.decompress(f.read())
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (EOFError, OSError, zlib.error) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc}); delete it and prepare the data again") from None


def sha256(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def parse_idx(data: bytes, name: str, expect_shape=None) -> np.ndarray:
    """Parse IDX bytes into an array, validating the header and the length.

    Parameters
    ----------
    data : bytes
        The decompressed IDX content.
    name : str
        The file name used in error messages.
    expect_shape : tuple of (int or None), optional
        Required shape; None entries are free (e.g. ``(None, 28, 28)``).

    Returns
    -------
    numpy.ndarray
        Native-endian array of the file's dtype and shape.
    """
    if len(data) < 4:
        raise DataError(f"{name}: truncated: {len(data)} bytes, too short for an IDX header")
    if data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(f"{name}: wrong magic number {data[:4].hex()} (expected 0000 + type code + ndim); not an IDX file")
    ndim = data[3]
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated header: {len(data)} bytes, need {header}")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", ndim, 4))
    dtype = np.dtype(_DTYPES[data[2]])
    need = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) < need:
        raise DataError(f"{name}: truncated: {len(data)} bytes, the header {shape} needs {need}")
    if len(data) > need:
        raise DataError(f"{name}: {len(data) - need} unexpected trailing bytes after the {shape} data")
    if expect_shape is not None:
        ok = len(shape) == len(expect_shape) and all(e is None or e == s for e, s in zip(expect_shape, shape))
        if not ok:
            want = tuple("*" if e is None else e for e in expect_shape)
            raise DataError(f"{name}: has shape {shape}, expected {want}")
    arr = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path, expect_shape=None, expect_sha256=None) -> np.ndarray:
    """Read a gzip-compressed IDX file, optionally checking the sha256 of its decompressed content.

    Parameters
    ----------
    path : str or os.PathLike
        A ``*-idx?-ubyte.gz`` file.
    expect_shape : tuple, optional
        See :func:`parse_idx`.
    expect_sha256 : str, optional
        Hex sha256 of the DECOMPRESSED bytes (Debian's .gz bytes differ from upstream's).
    """
    data = read_gzip(path)
    if expect_sha256 is not None and sha256(data) != expect_sha256:
        raise DataError(
            f"{os.fspath(path)}: checksum mismatch (sha256 of the decompressed content is {sha256(data)[:16]}..., "
            f"expected {expect_sha256[:16]}...); the file is corrupt or not the expected data set: delete it and "
            "prepare the data again"
        )
    return parse_idx(data, os.fspath(path), expect_shape)
