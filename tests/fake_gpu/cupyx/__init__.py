"""cupyx stand-in (see the `cupy` package next to it): only `cupyx.scipy.sparse` and `scatter_add`."""
import numpy as _np

from cupy import _unwrap

__fake__ = True


def scatter_add(a, slices, value):
    """Unbuffered a[slices] += value (numpy.add.at), in place on the fake array `a`."""
    seen = {}
    _np.add.at(_unwrap(a, seen), _unwrap(slices, seen), _unwrap(value, seen))
