"""Build the embedded subset numpy_dlra/data/fashion_mnist_subset.npz from the full Fashion-MNIST.

Stratified and deterministic: 500 training images per class and 100 test images per class,
drawn with numpy.random.default_rng(SEED). Rerunning it gives the same arrays (the printed
content digest must not change).

Usage: python data_scripts/make_embedded_subset.py [--out PATH]
"""
import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpy_dlra.data.datasets import EMBEDDED_PATH, load_fashion_mnist, stratified_indices  # noqa: E402
from numpy_dlra.errors import UserError  # noqa: E402
from numpy_dlra.data.fetch import atomic_write_bytes  # noqa: E402

SEED = 20210113  # the paper's publication date
TRAIN_PER_CLASS, TEST_PER_CLASS = 500, 100


def build():
    """Return the subset as a dict of uint8 arrays (x_train, y_train, x_test, y_test)."""
    x_train, y_train, x_test, y_test = load_fashion_mnist()
    rng = np.random.default_rng(SEED)
    tr, _ = stratified_indices(y_train, per_class=TRAIN_PER_CLASS, rng=rng)
    te, _ = stratified_indices(y_test, per_class=TEST_PER_CLASS, rng=rng)
    return {"x_train": x_train[tr], "y_train": y_train[tr], "x_test": x_test[te], "y_test": y_test[te]}


def digest(arrays):
    """sha256 over the arrays' bytes in a fixed order: the subset's identity, independent of zip metadata."""
    h = hashlib.sha256()
    for k in ("x_train", "y_train", "x_test", "y_test"):
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=EMBEDDED_PATH)
    args = p.parse_args(argv)
    try:
        arrays = build()
    except UserError as exc:
        print(f"make_embedded_subset.py: error: {exc}", file=sys.stderr)
        return 2
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(args.out, buf.getvalue())
    print(f"{args.out}: {len(arrays['y_train'])} train + {len(arrays['y_test'])} test images, "
          f"{len(buf.getvalue())} bytes, content sha256 {digest(arrays)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
