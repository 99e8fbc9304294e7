"""Atomic checkpoints: named arrays plus JSON metadata in one .npz file.

The file is written to a temporary name and renamed over the old one, so a run killed at any
moment leaves either the previous checkpoint or the new one, never a torn file. Arrays are
stored exactly (bitwise), which is what makes `--resume` continue bit-for-bit.
"""
import io
import json
import zipfile

import numpy as np

from .backend import to_numpy
from .errors import UserError
from .fetch import atomic_write_bytes

_META = "__meta__"


def save(path, arrays, meta):
    """Write `arrays` (dict name -> array, NumPy or CuPy) and JSON-able `meta` atomically to `path`."""
    buf = io.BytesIO()
    payload = {k: to_numpy(a) for k, a in arrays.items()}
    payload[_META] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(buf, **payload)
    atomic_write_bytes(path, buf.getvalue())


def load(path):
    """Return (arrays, meta) from a checkpoint written by :func:`save`; UserError if unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != _META}
            meta = json.loads(z[_META].tobytes().decode())
    except FileNotFoundError:
        raise UserError(f"{path}: no checkpoint here (nothing to resume)") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: unreadable checkpoint ({exc}); delete the run folder and start again") from None
    return arrays, meta
