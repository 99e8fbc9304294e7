"""Getting data files onto disk: the cache folder, atomic writes, Debian's package, downloads.

Only `data_scripts/` and an explicit user command call the download functions; the library's
loaders and the tests never touch the network.
"""
import contextlib
import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from ..errors import DataError

_FILE_MODE = 0o644  # mkstemp creates 0600; data and run files are meant to be readable


def cache_root() -> Path:
    """The data cache: $NUMPY_DLRA_DATA if set, else ~/.cache/numpy_dlra."""
    env = os.environ.get("NUMPY_DLRA_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "numpy_dlra"


@contextlib.contextmanager
def _atomic_file(path):
    """Yield a binary file that, if the block succeeds, atomically becomes `path`.

    The data goes to a temporary file in the same folder, is flushed to disk, then renamed over
    `path` (rename is atomic on POSIX); on any failure the temporary file is removed, so `path` is
    either absent, the old file, or complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    """Write `data` to `path` atomically (see :func:`_atomic_file`)."""
    with _atomic_file(path) as f:
        f.write(data)


def atomic_copy(src, dst) -> None:
    """Copy file `src` to `dst` atomically (see :func:`_atomic_file`)."""
    with _atomic_file(dst) as f, open(src, "rb") as s:
        shutil.copyfileobj(s, f)


def download(url: str, timeout: float = 60.0) -> bytes:
    """Return the bytes at `url`; raise DataError (naming the URL) when it cannot be fetched."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read()
    except Exception as exc:  # network errors come in many types; all mean "could not download"
        raise DataError(f"could not download {url}: {exc}") from None


def md5(data: bytes) -> str:
    """Hex md5 of `data` (used only where upstream publishes md5 checksums)."""
    return hashlib.md5(data).hexdigest()


def arrays_sha256(arrays) -> str:
    """sha256 over the names, dtypes, shapes and bytes of `arrays` (a dict of NumPy arrays), in name order."""
    import numpy as np

    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()
