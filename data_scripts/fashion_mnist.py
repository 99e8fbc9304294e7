"""Make the full Fashion-MNIST available in the cache (cache -> Debian's package -> download).

Usage: python data_scripts/fashion_mnist.py [--cache DIR]
The cache defaults to $NUMPY_DLRA_DATA/fashion-mnist (else ~/.cache/numpy_dlra/fashion-mnist).
Exit status 2 with a message when no source has a good copy.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from numpy_dlra.data.prepare import prepare_fashion_mnist, script_main  # noqa: E402


def main(argv=None):
    return script_main(prepare_fashion_mnist, "fashion-mnist", "sha256", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
