"""A NumPy-backed stand-in for CuPy, so that CuPy code paths can be tested without a GPU.

`cupy.ndarray` wraps a numpy.ndarray (its "device buffer") and, like real CuPy, refuses every
implicit conversion to NumPy: `numpy.asarray(a)`, numpy.ndarray operands, arguments, indices,
assigned values and `out=` all raise TypeError. Data crosses only explicitly: host -> device
through `asarray` / `array`, device -> host through `.get()`, `asnumpy`, `.item()`, `.tolist()`
and `float / int / bool / operator.index`; the latter are counted in `_transfers` so that a test
can assert that code kept its arrays on the device.

Everything else NumPy offers (functions, ufuncs, array methods) is delegated: fake arguments are
unwrapped, numpy.ndarray arguments refused, and results wrapped (NumPy scalars become 0-d arrays,
as CuPy's reductions return). Dtypes and constants are NumPy's own objects.
The stand-in models neither performance nor CUDA numerics (TF32, cuBLAS summation order, cuRAND).
"""
import operator as _operator
import sys as _sys
import types as _types
from numbers import Number as _Number

import numpy as _np

__version__ = "0.0-fake"
__fake__ = True

_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
             "Please use `.get()` to construct a NumPy array explicitly.")
_transfers = {"arrays": 0, "scalars": 0}  # device -> host transfers since the last reset


def _reset_transfers():
    """Zero the device -> host transfer counters."""
    _transfers.update(arrays=0, scalars=0)


def _refuse(x):
    raise TypeError(f"Unsupported type {type(x)}")


class _DeviceObject:
    """Base of everything on the fake device (arrays, sparse matrices): `_a` is its host-side buffer."""
    __slots__ = ("_a",)
    __array_ufunc__ = None  # NumPy operators return NotImplemented, NumPy ufuncs raise TypeError

    @classmethod
    def _from(cls, buffer):
        obj = object.__new__(cls)
        obj._a = buffer
        return obj

    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(_IMPLICIT)


def _unwrap(x, seen):
    """Replace device objects by their buffers (remembered in `seen`), also inside lists and tuples;
    refuse numpy.ndarray."""
    if isinstance(x, _DeviceObject):
        seen[id(x._a)] = x
        return x._a
    if isinstance(x, _np.ndarray):
        _refuse(x)
    if type(x) in (list, tuple):
        return type(x)(_unwrap(v, seen) for v in x)
    return x


def _wrap(r, seen=None):
    """numpy.ndarray -> fake array (the argument itself when `r` is an argument's buffer, as for out=),
    NumPy scalar -> 0-d fake array; tuples and lists element-wise."""
    if isinstance(r, _np.ndarray):
        if seen and id(r) in seen:
            return seen[id(r)]
        return ndarray._from(r)
    if isinstance(r, _np.generic):
        return ndarray._from(_np.asarray(r))
    if isinstance(r, (list, tuple)):
        items = [_wrap(v, seen) for v in r]
        return type(r)(*items) if hasattr(r, "_fields") else type(r)(items)  # named tuples (svd, qr)
    return r


def _call(fn, args, kwargs, wrap=_wrap, owner=None):
    seen = {id(owner._a): owner} if owner is not None else {}
    args = _unwrap(args, seen)
    kwargs = {k: _unwrap(v, seen) for k, v in kwargs.items()}
    return wrap(fn(*args, **kwargs), seen)


class _Delegate:
    """A NumPy callable (function, ufunc, bound method) behind the unwrap / refuse / wrap rules."""

    def __init__(self, fn, wrap=_wrap, owner=None):
        self._fn, self._wrap, self._owner = fn, wrap, owner  # owner: the array whose bound method fn is
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.__doc__ = getattr(fn, "__doc__", None)

    def __call__(self, *args, **kwargs):
        return _call(self._fn, args, kwargs, self._wrap, self._owner)

    def __getattr__(self, name):  # ufunc.at, ufunc.reduce, ufunc.nin, ...
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._fn, name)
        return _Delegate(attr, self._wrap) if callable(attr) else attr

    def __repr__(self):
        return f"<fake cupy: {self._fn!r}>"


def _delegating_getattr(np_module, modname):
    """A module-level __getattr__ serving `np_module`'s names: callables delegated, dtypes, classes
    and constants as they are, submodules refused (only those written here exist)."""
    def __getattr__(name):
        obj = getattr(np_module, name, None) if not name.startswith("__") else None
        if obj is None or isinstance(obj, _types.ModuleType):
            raise AttributeError(f"module {modname!r} (fake) has no attribute {name!r}")
        if isinstance(obj, type) or not callable(obj):
            return obj
        return _Delegate(obj)
    return __getattr__


__getattr__ = _delegating_getattr(_np, "cupy")
newaxis = None


# --- the array --------------------------------------------------------------------------------

_HOST_ONLY = frozenset({"data", "ctypes", "flat", "tobytes", "tofile", "dump", "dumps", "to_device"})


def _operand(other):
    """An operator's other operand: a buffer, a scalar, or NotImplemented (sparse matrices, ...)."""
    if isinstance(other, ndarray):
        return other._a
    if isinstance(other, (_Number, _np.generic)):
        return other
    if isinstance(other, (_np.ndarray, list, tuple)):
        _refuse(other)
    return NotImplemented


class ndarray(_DeviceObject):
    """Array on the fake device: a NumPy buffer that NumPy itself may not touch."""
    __slots__ = ()
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._a = _np.empty(shape, dtype, order=order)

    # explicit device -> host transfers (counted)
    def get(self, stream=None, order="C", out=None):
        _transfers["arrays"] += 1
        if out is not None:
            out[...] = self._a
            return out
        return _np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        """Host -> device copy into this array."""
        if not isinstance(arr, _np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray; got {type(arr)}")
        self._a[...] = arr

    def item(self, *args):
        _transfers["scalars"] += 1
        return self._a.item(*args)

    def tolist(self):
        _transfers["scalars" if self._a.size == 1 else "arrays"] += 1
        return self._a.tolist()

    def __format__(self, spec):
        if spec:
            _transfers["scalars" if self._a.size == 1 else "arrays"] += 1
        return format(self._a, spec)

    # attributes
    @property
    def shape(self):
        return self._a.shape

    @shape.setter
    def shape(self, value):
        self._a.shape = value

    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    ndim = property(lambda self: self._a.ndim)
    device = property(lambda self: cuda.Device(0))

    def __getattr__(self, name):  # every other attribute and method of numpy.ndarray, delegated
        if name.startswith("_") or name in _HOST_ONLY:
            raise AttributeError(f"'cupy.ndarray' (fake) has no attribute {name!r}")
        attr = getattr(self._a, name)
        return _Delegate(attr, owner=self) if callable(attr) else _wrap(attr)

    # indexing: a[i] with integers only gives a 0-d view, as in CuPy, not a NumPy scalar
    def __getitem__(self, key):
        key = _unwrap(key, {})
        r = self._a[key]
        if isinstance(r, _np.generic):
            r = self._a[(key if isinstance(key, tuple) else (key,)) + (Ellipsis,)]
        return _wrap(r)

    def __setitem__(self, key, value):
        self._a[_unwrap(key, {})] = _unwrap(value, {})

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __copy__(self):
        return ndarray._from(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray._from(self._a.copy())


def _binary(name):
    def op(self, other):
        o = _operand(other)
        return NotImplemented if o is NotImplemented else _wrap(getattr(self._a, name)(o))
    return op


def _inplace(name):
    def op(self, other):  # writes into the buffer, returns the same fake array
        o = _operand(other)
        if o is NotImplemented or getattr(self._a, name)(o) is NotImplemented:
            return NotImplemented
        return self
    return op


def _unary(name):
    return lambda self: _wrap(getattr(self._a, name)())


def _to_host_scalar(conv):
    def method(self):
        value = conv(self._a)
        _transfers["scalars"] += 1
        return value
    return method


for _n in "add sub mul truediv floordiv mod pow matmul and or xor lshift rshift divmod".split():
    setattr(ndarray, f"__{_n}__", _binary(f"__{_n}__"))
    setattr(ndarray, f"__r{_n}__", _binary(f"__r{_n}__"))
    if _n != "divmod":
        setattr(ndarray, f"__i{_n}__", _inplace(f"__i{_n}__"))
for _n in "lt le eq ne gt ge".split():
    setattr(ndarray, f"__{_n}__", _binary(f"__{_n}__"))
for _n in "neg pos abs invert".split():
    setattr(ndarray, f"__{_n}__", _unary(f"__{_n}__"))
for _n, _conv in [("float", float), ("int", int), ("bool", bool), ("complex", complex),
                  ("index", _operator.index)]:
    setattr(ndarray, f"__{_n}__", _to_host_scalar(_conv))
del _n, _conv


# --- explicit host <-> device and module helpers -----------------------------------------------

def _host(x):
    """Host data handed over explicitly: fake arrays inside (nested) lists are unwrapped, NumPy allowed."""
    if isinstance(x, _DeviceObject):
        return x._a
    if type(x) in (list, tuple):
        return type(x)(_host(v) for v in x)
    return x


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0):
    """Host or device data -> a new fake array (host data is always copied: the device has its own memory)."""
    if isinstance(obj, ndarray) and not copy and ndmin <= obj.ndim:
        return asarray(obj, dtype, order)
    return ndarray._from(_np.array(_host(obj), dtype=dtype, copy=True, order=order or "K", ndmin=ndmin))


def asarray(a, dtype=None, order=None):
    """Like CuPy: a fake array that needs no conversion is returned as it is."""
    if isinstance(a, ndarray) and (dtype is None or _np.dtype(dtype) == a.dtype) and order in (None, "K", "A"):
        return a
    return array(a, dtype=dtype, copy=True, order=order or "K")


asanyarray = asarray


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """Device -> host (counted); anything else goes through numpy.asarray."""
    if isinstance(a, ndarray):
        return a.get(stream, order, out)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    return _sys.modules[__name__] if any(isinstance(a, _DeviceObject) for a in args) else _np


def get_default_memory_pool():
    return cuda._memory_pool


def get_default_pinned_memory_pool():
    return cuda._pinned_memory_pool


from . import cuda, linalg, random  # noqa: E402  (they use the helpers above)
