"""Download MNIST (for the second seed's experiments) into the cache, checking upstream's md5.

Usage: python data_scripts/mnist.py [--cache DIR]   (needs the network)
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpy_dlra.errors import UserError  # noqa: E402
from numpy_dlra.fetch import cache_root  # noqa: E402
from numpy_dlra.prepare import prepare_mnist  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=cache_root() / "mnist")
    args = p.parse_args(argv)
    try:
        got = prepare_mnist(args.cache)
    except UserError as exc:
        print(f"mnist.py: error: {exc}", file=sys.stderr)
        return 2
    for name, src in got.items():
        print(f"{args.cache / name}  (verified md5; from {src})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
