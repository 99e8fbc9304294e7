"""Download MNIST (for the fixed-rank baseline's experiments, Sainath et al. 2013) into the cache, checking upstream's md5.

Usage: python data_scripts/mnist.py [--cache DIR]   (needs the network)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from numpy_dlra.data.prepare import prepare_mnist, script_main  # noqa: E402


def main(argv=None):
    return script_main(prepare_mnist, "mnist", "md5", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
