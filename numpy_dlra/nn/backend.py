"""The array module `xp`: NumPy by default, CuPy when the arrays live on a GPU.

Numeric code never imports NumPy for arithmetic on model arrays; it asks `array_module(*arrays)`
for the module that owns its inputs, so the same functions run on CuPy arrays unchanged.
"""
import numpy


def array_module(*arrays):
    """Return the array module (numpy or cupy) that owns `arrays` (numpy if none is a CuPy array)."""
    for a in arrays:
        if type(a).__module__.split(".")[0] == "cupy":
            import cupy  # imported lazily: CuPy is optional

            return cupy
    return numpy


def to_numpy(a):
    """Return `a` as a NumPy array (copying from the GPU when `a` is a CuPy array)."""
    if type(a).__module__.split(".")[0] == "cupy":
        return a.get()
    return numpy.asarray(a)


def sparse_module(xp):
    """scipy.sparse for NumPy arrays, cupyx.scipy.sparse for CuPy arrays (the sparse P and Q)."""
    if xp is numpy:
        import scipy.sparse

        return scipy.sparse
    import cupyx.scipy.sparse  # pragma: no cover - GPU only

    return cupyx.scipy.sparse
