"""Make the full Fashion-MNIST available in the cache (cache -> Debian's package -> download).

Usage: python data_scripts/fashion_mnist.py [--cache DIR]
The cache defaults to $NUMPY_DLRA_DATA/fashion-mnist (else ~/.cache/numpy_dlra/fashion-mnist).
Exit status 2 with a message when no source has a good copy.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from numpy_dlra.errors import UserError  # noqa: E402
from numpy_dlra.fetch import cache_root  # noqa: E402
from numpy_dlra.prepare import prepare_fashion_mnist  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=cache_root() / "fashion-mnist")
    args = p.parse_args(argv)
    try:
        got = prepare_fashion_mnist(args.cache)
    except UserError as exc:
        print(f"fashion_mnist.py: error: {exc}", file=sys.stderr)
        return 2
    for name, src in got.items():
        print(f"{args.cache / name}  (verified sha256; from {src})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
