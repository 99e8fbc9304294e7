"""Your own data: arrays, or an .npz file of them, checked and turned into a :class:`.datasets.Dataset`.

The file format of ``--data FILE.npz`` (``np.savez(FILE, x_train=..., ...)``):

- ``x_train``, ``y_train``, ``x_test``, ``y_test``; optionally ``x_val``, ``y_val`` (else a stratified
  ``--val-fraction`` of the training set is held out, as for Fashion-MNIST);
- inputs: (N, d) vectors or (N, H, W) / (N, H, W, C) images, any numeric type, the same example shape
  in every split; scaled by :data:`.datasets.SCALING_RULE` (uint8 / 255; anything else as given);
- labels: integers 0 .. C-1 (N,), every class with at least one training example.

Every check raises a DataError (exit status 2 at the command line) naming the file and the key.
"""
import hashlib
import zipfile

import numpy as np

from ..errors import DataError
from .datasets import make_dataset, scaling_of
from .fetch import arrays_sha256

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL = ("x_val", "y_val")


def from_arrays(x_train, y_train, x_test, y_test, x_val=None, y_val=None, *, val_fraction=0.1, split_seed=0,
                source="arrays", sha256=None, log=None):
    """The Dataset of your own arrays, checked: pass it to ``train(cfg, out, dataset=...)`` with
    ``TrainConfig(data="arrays")`` (the network's widths then come from these arrays).

    x_* : (N, d) or (N, H, W) or (N, H, W, C), numeric;  y_* : (N,) integers 0 .. C-1.
    `source` names the arrays in errors and in the run's records; `sha256` defaults to the arrays' own
    (so that a resumed run can tell the same data from other data).
    """
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    if (x_val is None) != (y_val is None):
        raise DataError(f"{source}: give x_val and y_val together, or neither")
    if x_val is not None:
        arrays |= {"x_val": x_val, "y_val": y_val}
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    shape = _check(arrays, source)
    x_tr = arrays["x_train"]
    if x_tr.dtype != np.uint8 and x_tr.size and log is not None:
        lo, hi = float(x_tr.min()), float(x_tr.max())
        if lo >= 0 and 1.5 < hi <= 255 and bool(np.all(x_tr == np.round(x_tr))):
            log(f"numpy_dlra: {source}: x_train ({x_tr.dtype}) holds whole numbers in [{lo:g}, {hi:g}]: it looks "
                "like 0-255 pixel data, and is used as given (store it as uint8, or divide by 255, for [0, 1])")
    n_classes = int(max(arrays[k].max() for k in arrays if k.startswith("y"))) + 1
    ds = make_dataset("own", val_fraction=val_fraction, split_seed=split_seed, input_shape=shape, n_classes=n_classes,
                      scaling=scaling_of(x_tr.dtype), source=str(source), sha256=sha256 or arrays_sha256(arrays),
                      **arrays)
    if len(ds.y_val) == 0:
        raise DataError(f"{source}: --val-fraction {val_fraction} holds out no validation example from "
                        f"{len(x_tr)} training examples; give x_val and y_val, or a larger --val-fraction")
    return ds


def file_sha256(path):
    """The sha256 of the file `path`'s bytes (what a run on --data FILE.npz records); DataError if unreadable."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise DataError(f"--data {path}: cannot read it ({exc.strerror or exc}); give an existing .npz file") from None
    return h.hexdigest()


def load_npz(path, val_fraction=0.1, split_seed=0, log=None):
    """The Dataset in the .npz file `path` (the format in this module's doc), checked; its sha256 is the file's."""
    sha = file_sha256(path)
    if not zipfile.is_zipfile(path):  # np.load would try it as a pickle or a bare .npy
        raise DataError(f"{path}: not an .npz file; save your arrays with "
                        "np.savez(FILE, x_train=..., y_train=..., x_test=..., y_test=...)")
    try:
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            missing = [k for k in REQUIRED if k not in names]
            if missing:
                raise DataError(f"{path}: no array {missing[0]!r} (it holds {sorted(names) or 'nothing'}); an .npz "
                                f"for --data needs {', '.join(REQUIRED)} (and optionally x_val, y_val)")
            arrays = {k: z[k] for k in REQUIRED + OPTIONAL if k in names}
    except DataError:
        raise
    except ValueError as exc:  # object arrays refused by allow_pickle=False, or a malformed .npy header
        raise DataError(f"{path}: an array could not be read as numbers ({exc}); save numeric arrays with "
                        "np.savez") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError, NotImplementedError) as exc:
        raise DataError(f"{path}: not an .npz file ({type(exc).__name__}: {exc}); save your arrays with "
                        "np.savez(FILE, x_train=..., y_train=..., x_test=..., y_test=...)") from None
    return from_arrays(**arrays, val_fraction=val_fraction, split_seed=split_seed, source=str(path),
                       sha256=sha, log=log)


def _check(arrays, source):
    """Check the arrays (see the module doc); return one example's shape, (d,) or (H, W, C)."""
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf" or a.dtype.kind == "b":
            raise DataError(f"{source}: {k} has dtype {a.dtype}; give numbers (integers or floats)")
        if len(a.shape) == 0 or a.shape[0] == 0:
            raise DataError(f"{source}: {k} is empty; every split needs at least one example")
    for split in ("train", "val", "test"):
        if f"x_{split}" not in arrays:
            continue
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim not in (2, 3, 4):
            raise DataError(f"{source}: x_{split} has shape {x.shape}; give (N, d) vectors or (N, H, W[, C]) images")
        if y.ndim != 1:
            raise DataError(f"{source}: y_{split} has shape {y.shape}; give one integer label per example, (N,)")
        if len(x) != len(y):
            raise DataError(f"{source}: x_{split} has {len(x)} examples and y_{split} {len(y)}; give one label each")
        if y.dtype.kind not in "iu":
            raise DataError(f"{source}: y_{split} has dtype {y.dtype}; give integer labels 0 .. C-1")
        if y.min() < 0:
            raise DataError(f"{source}: y_{split} holds the label {int(y.min())}; labels are integers 0 .. C-1")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise DataError(f"{source}: x_{split} holds NaN or Inf; give finite inputs")
        if x.shape[1:] != arrays["x_train"].shape[1:]:
            raise DataError(f"{source}: x_{split} examples have shape {x.shape[1:]} and x_train's "
                            f"{arrays['x_train'].shape[1:]}; give every split the same example shape")
    C = int(max(arrays[k].max() for k in arrays if k.startswith("y"))) + 1
    absent = np.setdiff1d(np.arange(C), arrays["y_train"])
    if len(absent):
        raise DataError(f"{source}: y_train has no example of class {int(absent[0])} (labels run 0 .. {C - 1}); "
                        "every class needs training examples: relabel the classes 0 .. C-1")
    s = arrays["x_train"].shape[1:]
    return s if len(s) != 2 else s + (1,)

