"""cupyx.scipy.sparse stand-in: SciPy sparse matrices held on the fake device.

Built from fake arrays (`csr_matrix((data, (row, col)), shape=...)`, `(data, indices, indptr)`, a dense
fake array) or, explicitly from the host, from a SciPy sparse matrix; never from numpy.ndarray.
Products with dense fake arrays give fake arrays; numpy.ndarray operands raise TypeError.
Methods and attributes (`.T`, `.tocsr()`, `.nnz`, `.data`, `.sum()`, ...) are SciPy's behind the same
unwrap / refuse / wrap rules as the rest of the fake.
"""
import numpy as _np
import scipy.sparse as _sp

from cupy import _Delegate, _DeviceObject, _call, _transfers, _unwrap, _wrap


def _wrap_sparse(r, seen=None):
    if seen and id(r) in seen:  # e.g. tocsr() of a csr matrix: the matrix itself, as in CuPy
        return seen[id(r)]
    if _sp.issparse(r):
        if r.format not in _FORMATS:
            raise TypeError(f"the fake cupyx.scipy.sparse has no {r.format} format")
        return _FORMATS[r.format]._from(r)
    if isinstance(r, _np.matrix):  # SciPy's sum(axis=...) gives a matrix; CuPy gives an ndarray
        r = _np.asarray(r)
    return _wrap(r, seen)


class spmatrix(_DeviceObject):
    __slots__ = ()
    format = None
    _scipy = None

    def __init__(self, arg1, shape=None, dtype=None, copy=False):
        if _sp.issparse(arg1):  # host SciPy matrix: an explicit host -> device copy
            arg1 = arg1.copy()
        self._a = self._scipy(_unwrap(arg1, {}), shape=shape, dtype=dtype, copy=copy)

    def get(self, stream=None):
        """Device -> host: a SciPy sparse matrix (counted as an array transfer)."""
        _transfers["arrays"] += 1
        return self._a.copy()

    def toarray(self, order=None, out=None):
        return _call(self._a.toarray, (), dict(order=order, out=out), _wrap_sparse)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(f"{type(self).__name__} (fake) has no attribute {name!r}")
        attr = getattr(self._a, name)
        return _Delegate(attr, _wrap_sparse, self) if callable(attr) else _wrap_sparse(attr)

    def __repr__(self):
        return f"<fake cupyx {self._a!r}>"


def _binary(name):
    return lambda self, other: _call(getattr(self._a, name), (other,), {}, _wrap_sparse)


for _n in "matmul rmatmul mul rmul add radd sub rsub truediv".split():
    setattr(spmatrix, f"__{_n}__", _binary(f"__{_n}__"))
spmatrix.__neg__ = lambda self: _wrap_sparse(-self._a)
del _n


class csr_matrix(spmatrix):
    __slots__ = ()
    format, _scipy = "csr", _sp.csr_matrix


class csc_matrix(spmatrix):
    __slots__ = ()
    format, _scipy = "csc", _sp.csc_matrix


class coo_matrix(spmatrix):
    __slots__ = ()
    format, _scipy = "coo", _sp.coo_matrix


_FORMATS = {"csr": csr_matrix, "csc": csc_matrix, "coo": coo_matrix}


def issparse(x):
    return isinstance(x, spmatrix)


isspmatrix = issparse


def isspmatrix_csr(x):
    return isinstance(x, csr_matrix)


def isspmatrix_csc(x):
    return isinstance(x, csc_matrix)
