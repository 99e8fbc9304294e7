"""Fashion-MNIST (full or the embedded subset), MNIST, CIFAR-100, and the stratified validation split.

Where the full Fashion-MNIST is looked for, in order:
1. the cache folder ``$NUMPY_DLRA_DATA/fashion-mnist`` (default ``~/.cache/numpy_dlra/...``),
   filled by ``python data_scripts/fashion_mnist.py``;
2. Debian's package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``).
Every file is checked against the sha256 of its DECOMPRESSED content. Loading never downloads.

The embedded subset (``numpy_dlra/data/fashion_mnist_subset.npz``: 500 training images per class
and 100 test images per class, drawn by ``data_scripts/make_embedded_subset.py``) ships inside
the package so that tests, tutorials and the fallback of the main job run anywhere.
"""
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .fetch import cache_root
from .idx import read_idx

FASHION_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_UPSTREAM = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
EMBEDDED_PATH = Path(__file__).parent / "fashion_mnist_subset.npz"

# MNIST's upstream publishes the md5 of its .gz files; every mirror serves those same bytes.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")

# CIFAR-100 (Krizhevsky 2009), the python version; upstream publishes the md5 of the archive.
CIFAR100_FILE = "cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_SIZES = {"train": 50000, "test": 10000}
DATASETS = {"fashion-mnist": ((28, 28, 1), 10), "mnist": ((28, 28, 1), 10), "cifar100": ((32, 32, 3), 100)}


def _shapes(n_train=60000, n_test=10000):
    return {
        "train-images-idx3-ubyte.gz": (n_train, 28, 28),
        "train-labels-idx1-ubyte.gz": (n_train,),
        "t10k-images-idx3-ubyte.gz": (n_test, 28, 28),
        "t10k-labels-idx1-ubyte.gz": (n_test,),
    }


def fashion_dirs():
    """The folders searched for the full Fashion-MNIST, in order (cache, then Debian's package)."""
    return [cache_root() / "fashion-mnist", DEBIAN_FASHION_DIR]


def find_fashion_mnist():
    """Return the first folder holding all four Fashion-MNIST files, or None."""
    for d in fashion_dirs():
        if all((d / name).is_file() for name in FASHION_SHA256):
            return d
    return None


def _read_four(directory, checksums, shapes):
    d = Path(directory)
    arrays = {name: read_idx(d / name, shapes[name], checksums.get(name)) for name in shapes}
    return (
        arrays["train-images-idx3-ubyte.gz"],
        arrays["train-labels-idx1-ubyte.gz"],
        arrays["t10k-images-idx3-ubyte.gz"],
        arrays["t10k-labels-idx1-ubyte.gz"],
    )


def load_fashion_mnist(directory=None):
    """Load and verify the full Fashion-MNIST.

    Returns
    -------
    (x_train, y_train, x_test, y_test) : uint8 (60000, 28, 28), uint8 (60000,),
        uint8 (10000, 28, 28), uint8 (10000,)
    """
    if directory is None:
        directory = find_fashion_mnist()
        if directory is None:
            where = " or ".join(str(d) for d in fashion_dirs())
            raise DataError(
                f"Fashion-MNIST not found in {where}; run `python data_scripts/fashion_mnist.py` "
                "(or `apt-get install dataset-fashion-mnist`), or use --data embedded"
            )
    return _read_four(directory, FASHION_SHA256, _shapes())


def load_mnist(directory=None):
    """Load MNIST from ``<cache>/mnist`` (filled by ``python data_scripts/mnist.py``).

    The .gz files' md5 was checked when they were downloaded; here the IDX structure is checked.
    Returns the same four arrays as :func:`load_fashion_mnist`.
    """
    d = Path(directory) if directory is not None else cache_root() / "mnist"
    if not all((d / name).is_file() for name in MNIST_MD5):
        raise DataError(f"MNIST not found in {d}; run `python data_scripts/mnist.py` (needs the network)")
    return _read_four(d, {}, _shapes())


def load_cifar100(directory=None):
    """Load CIFAR-100 (fine labels) from ``<cache>/cifar100/cifar-100-python.tar.gz``.

    The archive's md5 is checked against upstream's, then its ``train`` and ``test`` members (Python
    pickles of a dict with ``data`` (N, 3072) uint8, channel-major, and ``fine_labels``) are read.
    Returns (x_train uint8 (50000, 32, 32, 3), y_train (50000,), x_test uint8 (10000, 32, 32, 3), y_test (10000,)),
    images channels-last (HWC).
    """
    import io
    import pickle
    import tarfile

    from .fetch import md5

    path = (Path(directory) if directory is not None else cache_root() / "cifar100") / CIFAR100_FILE
    if not path.is_file():
        raise DataError(f"CIFAR-100 not found at {path}; run `python data_scripts/cifar100.py` "
                        "(downloads 161 MB from upstream, checked against its md5)")
    data = path.read_bytes()
    if md5(data) != CIFAR100_MD5:
        raise DataError(f"{path}: checksum mismatch (md5 {md5(data)}, expected {CIFAR100_MD5}); delete it and "
                        "run `python data_scripts/cifar100.py` again")
    out = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for part, n in CIFAR100_SIZES.items():
                member = f"cifar-100-python/{part}"
                d = pickle.load(tar.extractfile(member), encoding="bytes")  # noqa: S301 - checksum verified above
                x = np.asarray(d[b"data"], dtype=np.uint8)
                y = np.asarray(d[b"fine_labels"], dtype=np.int64)
                if x.shape != (n, 3072) or y.shape != (n,) or y.min() < 0 or y.max() > 99:
                    raise DataError(f"{path}: {member} has data {x.shape}, labels {y.shape}; expected ({n}, 3072), ({n},)")
                out += [x.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1), y]
    except (tarfile.TarError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        raise DataError(f"{path}: unreadable archive ({exc}); delete it and run `python data_scripts/cifar100.py`") from None
    return tuple(out)


def load_embedded():
    """Load the embedded stratified subset (500 train and 100 test images per class).

    Returns
    -------
    (x_train, y_train, x_test, y_test) : uint8 (5000, 28, 28), uint8 (5000,), uint8 (1000, 28, 28),
        uint8 (1000,)
    """
    try:
        with np.load(EMBEDDED_PATH, allow_pickle=False) as z:
            arrays = z["x_train"], z["y_train"], z["x_test"], z["y_test"]
    except Exception as exc:  # noqa: BLE001 - any malformed file (zip, npy header, truncation) is the same fault
        raise DataError(f"{EMBEDDED_PATH}: cannot read the embedded subset ({type(exc).__name__}: {exc}); "
                        "reinstall numpy_dlra") from None
    for x, y in (arrays[:2], arrays[2:]):
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28) or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{EMBEDDED_PATH}: not the embedded subset ({len(x)} images and {len(y)} labels of "
                            f"shapes {x.shape}, {y.shape}); reinstall numpy_dlra")
    return arrays


def stratified_indices(labels, fraction=None, per_class=None, rng=None):
    """Draw a stratified sample of indices: `per_class` of each class, or `fraction` of each class.

    Parameters
    ----------
    labels : int array (N,)
    fraction : float, optional
        Fraction of every class to draw (rounded to the nearest integer per class).
    per_class : int, optional
        Number to draw from every class.
    rng : numpy.random.Generator

    Returns
    -------
    (chosen, rest) : sorted int64 index arrays that partition ``range(N)``.
    """
    labels = np.asarray(labels)
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = per_class if per_class is not None else int(round(fraction * len(idx)))
        if k > len(idx):
            raise DataError(f"class {c} has {len(idx)} samples, cannot draw {k}")
        chosen.append(rng.permutation(idx)[:k])
    chosen = np.sort(np.concatenate(chosen))
    rest = np.setdiff1d(np.arange(len(labels)), chosen)
    return chosen, rest


SCALING_RULE = ("uint8 inputs are divided by 255 (pixels to [0, 1]); inputs of any other numeric type are used "
                "as given, as floats")


def scaling_of(dtype):
    """The input scaling :data:`SCALING_RULE` applies to inputs of `dtype`: "uint8/255" or "as given"."""
    return "uint8/255" if np.dtype(dtype) == np.uint8 else "as given"


def scale_inputs(x):
    """Inputs (N, ...) of any numeric type -> flat floats (N, prod(...)) by :data:`SCALING_RULE`.

    uint8 -> float32 x / 255; float64 stays float64; any other type -> float32, values unchanged.
    """
    flat = x.reshape(len(x), int(np.prod(x.shape[1:])))  # (N, d), also for N = 0
    if flat.dtype == np.uint8:
        return (flat / np.float32(255.0)).astype(np.float32)
    return flat.astype(np.float64 if flat.dtype == np.float64 else np.float32)


@dataclass
class Dataset:
    """Train/validation/test arrays: inputs as floats, flat (N, H W C) in row-major HWC order ((N, 784)
    for the MNISTs, (N, 3072) for CIFAR-100), scaled by :data:`SCALING_RULE`; labels int64 (N,).

    input_shape : one example's shape, (d,) for vectors or (H, W, C) for images
    n_classes   : C; labels are 0 .. C-1
    scaling     : the rule the inputs went through ("uint8/255" or "as given")
    source      : where the arrays came from (a built-in data set, an .npz path, or "arrays")
    sha256      : for your own data, the sha256 of the .npz file (or of the arrays); None for built-in data
    split       : (val_fraction, split_seed) of the held-out validation split, or None when x_val was given
    """

    name: str
    x_train: object
    y_train: object
    x_val: object
    y_val: object
    x_test: object
    y_test: object
    input_shape: tuple = (28, 28, 1)
    n_classes: int = 10
    scaling: str = "uint8/255"
    source: str = ""
    sha256: str = None
    split: tuple = None

    ARRAYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")

    def to(self, xp, dtype):
        """Return a copy on array module `xp` with images cast to `dtype`."""
        conv = {k: getattr(self, k) for k in self.ARRAYS}
        for k, v in conv.items():
            conv[k] = xp.asarray(v, dtype=dtype if k.startswith("x") else None)
        return dataclasses.replace(self, **conv)

    def describe(self):
        """What the run records of its data (summary.json's "data")."""
        return {"name": self.name, "source": self.source or self.name, "sha256": self.sha256,
                "input_shape": list(self.input_shape), "n_classes": int(self.n_classes), "scaling": self.scaling,
                "scaling_rule": SCALING_RULE}


def make_dataset(name, x_train, y_train, x_test, y_test, val_fraction=0.1, split_seed=0, x_val=None, y_val=None,
                 **info):
    """Hold out a stratified, seeded `val_fraction` of the training set for validation (paper Sec. 5), unless
    `x_val`, `y_val` are given; scale the inputs by :data:`SCALING_RULE`. `info`: Dataset's other fields."""
    if x_val is None:
        val, train = stratified_indices(y_train, fraction=val_fraction, rng=np.random.default_rng(split_seed))
        x_val, y_val, x_train, y_train = x_train[val], y_train[val], x_train[train], y_train[train]
        info["split"] = (val_fraction, split_seed)
    info.setdefault("input_shape", tuple(x_train.shape[1:]) + ((1,) if x_train.ndim == 3 else ()))
    info.setdefault("n_classes", int(max(y_train.max(), y_test.max())) + 1)
    info.setdefault("scaling", scaling_of(x_train.dtype))
    return Dataset(
        name,
        scale_inputs(x_train), y_train.astype(np.int64),
        scale_inputs(x_val), y_val.astype(np.int64),
        scale_inputs(x_test), y_test.astype(np.int64),
        **info,
    )


def load_dataset(which="auto", val_fraction=0.1, split_seed=0, log=None, dataset="fashion-mnist"):
    """Load `dataset` ("fashion-mnist", "mnist" or "cifar100") with a validation split, or your own arrays.

    For Fashion-MNIST, `which` is "full", "embedded" or "auto" (full if available, else embedded).
    MNIST and CIFAR-100 come from the cache only (their data scripts download them); with "auto", a
    missing MNIST falls back to Fashion-MNIST, as the fixed-rank report's experiments allow, and says so.
    A `which` ending in ``.npz`` is a file of your own arrays (:func:`numpy_dlra.data.own.load_npz`).
    Reports go through `log` (default: stderr); the returned Dataset's ``name`` says what was loaded.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if str(which).endswith(".npz"):
        from .own import load_npz

        return load_npz(which, val_fraction, split_seed, log=log)
    if which == "arrays":
        raise DataError("--data arrays: your arrays come as a Dataset passed to train(..., dataset=...) "
                        "(numpy_dlra.data.own.from_arrays); from the command line give --data FILE.npz")
    if which not in ("auto", "full", "embedded"):
        raise DataError(f"--data {which!r}: choose auto, full or embedded, or give a FILE.npz of your own arrays")
    if dataset not in DATASETS:
        raise DataError(f"--dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    if dataset != "fashion-mnist" and which == "embedded":
        raise DataError(f"--data embedded: only Fashion-MNIST has an embedded subset, not {dataset}")

    def made(name, arrays, kind):
        shape, classes = DATASETS[kind]
        return make_dataset(name, *arrays, val_fraction=val_fraction, split_seed=split_seed, input_shape=shape,
                            n_classes=classes, source=name)

    if dataset == "cifar100":
        return made("cifar100", load_cifar100(), "cifar100")
    if dataset == "mnist":
        try:
            return made("mnist", load_mnist(), "mnist")
        except DataError as exc:
            if which != "auto":
                raise
            log(f"numpy_dlra: {exc}; using Fashion-MNIST instead (same shapes and class count)")
    if which == "auto" and find_fashion_mnist() is None:
        log(
            "numpy_dlra: full Fashion-MNIST not found (run `python data_scripts/fashion_mnist.py`); "
            "falling back to the embedded subset (5000 train / 1000 test images)"
        )
        which = "embedded"
    if which == "embedded":
        return made("fashion-mnist-embedded", load_embedded(), "fashion-mnist")
    return made("fashion-mnist", load_fashion_mnist(), "fashion-mnist")
