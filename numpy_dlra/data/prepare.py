"""Filling the data cache (used by data_scripts/; may download, so never called by the library).

`prepare_fashion_mnist` takes each file from the first source that has a good copy: the cache
itself, Debian's package, then the upstream URL. A copy is good when the sha256 of its
decompressed content matches. Files are written atomically, so a failure leaves no partial file.
"""
from pathlib import Path

from . import datasets as ds
from ..errors import DataError, UserError
from .fetch import atomic_copy, atomic_write_bytes, cache_root, download, md5
from .idx import read_idx


def prepare_fashion_mnist(cache_dir=None, debian_dir=None, upstream=None, log=print):
    """Make the four Fashion-MNIST files available, verified, in `cache_dir`.

    Returns a dict {file name: source it came from ("cache", "debian" or the URL)}.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else cache_root() / "fashion-mnist"
    debian_dir = Path(debian_dir) if debian_dir is not None else ds.DEBIAN_FASHION_DIR
    upstream = upstream if upstream is not None else ds.FASHION_UPSTREAM
    shapes = ds._shapes()
    got = {}
    for name, sha in ds.FASHION_SHA256.items():
        target = cache_dir / name
        if target.is_file():
            try:
                read_idx(target, shapes[name], sha)
                got[name] = "cache"
                continue
            except DataError as exc:
                log(f"{exc}; replacing it")
        if (debian_dir / name).is_file():
            read_idx(debian_dir / name, shapes[name], sha)  # verify before copying
            atomic_copy(debian_dir / name, target)
            got[name] = "debian"
            continue
        url = upstream + name
        data = download(url)
        tmp = cache_dir / f".{name}.download"
        atomic_write_bytes(tmp, data)
        try:
            read_idx(tmp, shapes[name], sha)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        got[name] = url
    return got


def prepare_mnist(cache_dir=None, mirrors=None, log=print):
    """Download MNIST into `cache_dir`, checking the md5 of each .gz against upstream's.

    Returns a dict {file name: source}.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else cache_root() / "mnist"
    mirrors = mirrors if mirrors is not None else ds.MNIST_MIRRORS
    got = {}
    for name, digest in ds.MNIST_MD5.items():
        target = cache_dir / name
        if target.is_file() and md5(target.read_bytes()) == digest:
            got[name] = "cache"
            continue
        errors = []
        for base in mirrors:
            try:
                data = download(base + name)
            except DataError as exc:
                errors.append(str(exc))
                continue
            if md5(data) != digest:
                errors.append(f"{base + name}: md5 {md5(data)} != {digest}")
                continue
            atomic_write_bytes(target, data)
            got[name] = base + name
            break
        else:
            raise DataError(f"MNIST {name}: no mirror gave a good copy: " + "; ".join(errors))
    return got


def prepare_cifar100(cache_dir=None, url=None, log=print):
    """Download CIFAR-100 (python version) into `cache_dir`, checking the archive's md5 against upstream's.

    Returns {file name: source}.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else cache_root() / "cifar100"
    url = url if url is not None else ds.CIFAR100_URL
    target = cache_dir / ds.CIFAR100_FILE
    if target.is_file() and md5(target.read_bytes()) == ds.CIFAR100_MD5:
        return {ds.CIFAR100_FILE: "cache"}
    data = download(url)
    if md5(data) != ds.CIFAR100_MD5:
        raise DataError(f"{url}: md5 {md5(data)} != {ds.CIFAR100_MD5}; not saved")
    atomic_write_bytes(target, data)
    return {ds.CIFAR100_FILE: url}


def script_main(prepare, subdir, check, doc, argv=None):
    """The command line shared by data_scripts/*.py: `--cache DIR` (default <cache>/`subdir`), run
    `prepare(cache)`, print each file with its source; exit status 2 with the message on failure."""
    import argparse
    import sys

    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--cache", type=Path, default=cache_root() / subdir)
    args = p.parse_args(argv)
    try:
        got = prepare(args.cache)
    except UserError as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 2
    for name, src in got.items():
        print(f"{args.cache / name}  (verified {check}; from {src})")
    return 0
