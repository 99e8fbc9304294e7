"""Download CIFAR-100 (python version, 161 MB; the fixed-rank baseline's 100-class experiment) into the cache, checking upstream's md5.

Usage: python data_scripts/cifar100.py [--cache DIR]   (needs the network)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from numpy_dlra.data.prepare import prepare_cifar100, script_main  # noqa: E402


def main(argv=None):
    return script_main(prepare_cifar100, "cifar100", "md5", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
