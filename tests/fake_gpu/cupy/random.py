"""cupy.random stand-in: the Generator API, drawn by numpy.random.default_rng(seed), returning fake arrays.

Like CuPy's, these generators keep their state "on the device": it can be neither read nor pickled.
The numbers are NumPy's, not cuRAND's: the same seed gives different streams on a real GPU.
"""
from numbers import Integral as _Integral

import numpy as _np

from . import _call, ndarray


class BitGenerator:
    def __init__(self, seed=None):
        if isinstance(seed, ndarray):
            seed = seed.get()
        self._seed_seq = seed if isinstance(seed, _np.random.SeedSequence) else _np.random.SeedSequence(seed)

    @property
    def state(self):
        raise NotImplementedError("a CuPy bit generator's state lives on the GPU: it cannot be read or serialized")

    @state.setter
    def state(self, value):
        raise NotImplementedError("a CuPy bit generator's state cannot be set")

    def __reduce__(self):
        raise TypeError(f"cannot pickle a CuPy {type(self).__name__}")


class XORWOW(BitGenerator):
    pass


class MRG32k3a(BitGenerator):
    pass


class Philox4x3210(BitGenerator):
    pass


def _as_array(r, dtype):
    return r if isinstance(r, ndarray) else ndarray._from(_np.asarray(r, dtype=dtype))  # size=None -> 0-d


class Generator:
    def __init__(self, bit_generator):
        self.bit_generator = bit_generator
        self._rng = _np.random.default_rng(bit_generator._seed_seq)

    def __reduce__(self):
        raise TypeError("cannot pickle a CuPy Generator")

    def random(self, size=None, dtype=_np.float64, out=None):
        return _as_array(_call(self._rng.random, (), dict(size=size, dtype=dtype, out=out)), dtype)

    def standard_normal(self, size=None, dtype=_np.float64, out=None):
        return _as_array(_call(self._rng.standard_normal, (), dict(size=size, dtype=dtype, out=out)), dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=_np.float64):
        return _as_array(_call(self._rng.uniform, (low, high), dict(size=size)), None).astype(dtype, copy=False)

    def integers(self, low, high=None, size=None, dtype=_np.int64, endpoint=False):
        return _as_array(_call(self._rng.integers, (low, high), dict(size=size, dtype=dtype, endpoint=endpoint)),
                         dtype)

    def permutation(self, x):
        """A permuted arange(x) for an integer, a shuffled copy along axis 0 for a fake array."""
        return _call(self._rng.permutation, (int(x) if isinstance(x, _Integral) else x,), {})


def default_rng(seed=None):
    if isinstance(seed, Generator):
        return seed
    return Generator(seed if isinstance(seed, BitGenerator) else XORWOW(seed))
