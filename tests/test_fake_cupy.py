"""Specification of the NumPy stand-in for CuPy (tests/fake_gpu): what it refuses, what it allows,
what it counts, and that the `fake_cupy` fixture leaves nothing behind."""
import copy
import importlib.util
import operator
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

if str(Path(__file__).parent) not in sys.path:  # tests/ is on sys.path under pytest's default import mode
    sys.path.insert(0, str(Path(__file__).parent))
from fake_gpu.fixture import FAKE_GPU_DIR, fake_cupy  # noqa: E402,F401  (fake_cupy is a fixture)

IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly.")


def _cupy_modules():
    return sorted(n for n in sys.modules if n.split(".")[0].startswith("cupy"))


@pytest.fixture
def cp(fake_cupy):
    return fake_cupy


@pytest.fixture
def sparse(fake_cupy):
    import cupyx.scipy.sparse

    return cupyx.scipy.sparse


# --- the fixture -------------------------------------------------------------------------------

def test_fixture_imports_the_stand_in(cp):
    import cupy
    import cupy.random
    import cupyx.scipy.sparse
    from cupy import linalg

    assert cupy is cp and cp.__fake__ is True and cp.__version__ == "0.0-fake"
    assert Path(cupy.__file__).parent.parent == Path(FAKE_GPU_DIR)
    assert linalg is cp.linalg and cupy.random is cp.random
    assert cupyx.scipy.sparse.__file__.startswith(FAKE_GPU_DIR)
    assert cp._transfers == {"arrays": 0, "scalars": 0}  # a fresh module for every test


def test_fixture_teardown_removes_every_cupy_module():
    monkeypatch = pytest.MonkeyPatch()
    steps = fake_cupy.__wrapped__(monkeypatch)  # the fixture's generator, driven by hand
    cupy = next(steps)
    import cupyx.scipy.sparse  # noqa: F401

    assert cupy.__fake__ and {"cupy", "cupy.random", "cupyx.scipy.sparse"} <= set(_cupy_modules())
    with pytest.raises(StopIteration):
        next(steps)
    monkeypatch.undo()
    assert _cupy_modules() == [] and FAKE_GPU_DIR not in sys.path
    assert _fake_not_importable()


def test_nothing_leaks_into_a_test_without_the_fixture():
    """Runs after the tests above that used the fixture."""
    assert _cupy_modules() == [] and FAKE_GPU_DIR not in sys.path
    assert _fake_not_importable()


def _fake_not_importable():
    """`import cupy` would not find the stand-in: it finds nothing, or (on a GPU machine) the real CuPy.
    Asked of the import system without importing, so that a real CuPy is not loaded into the tests."""
    spec = importlib.util.find_spec("cupy")
    return spec is None or not str(spec.origin).startswith(FAKE_GPU_DIR)


def test_package_detects_the_fake_as_cupy(cp, sparse):
    from numpy_dlra.nn import backend

    a = cp.ones(3)
    assert type(a).__module__.split(".")[0] == "cupy" and not isinstance(a, np.ndarray)
    assert backend.array_module(np.ones(2), a) is cp and backend.array_module(np.ones(2)) is np
    assert backend.sparse_module(cp) is sparse
    host = backend.to_numpy(a)
    assert type(host) is np.ndarray and cp._transfers["arrays"] == 1


# --- implicit conversions are refused ----------------------------------------------------------

REFUSED = {
    "numpy.asarray(fake)": lambda cp, h, d: np.asarray(d),
    "numpy.array([fake])": lambda cp, h, d: np.array([d, d]),
    "host + fake": lambda cp, h, d: h + d,
    "fake + host": lambda cp, h, d: d + h,
    "host * fake": lambda cp, h, d: h * d,
    "host < fake": lambda cp, h, d: h < d,
    "host @ fake": lambda cp, h, d: h @ d,
    "host += fake": lambda cp, h, d: operator.iadd(h, d),
    "fake += host": lambda cp, h, d: operator.iadd(d, h),
    "fake + list": lambda cp, h, d: d + [1.0, 2.0, 3.0],
    "numpy.dot(host, fake)": lambda cp, h, d: np.dot(h, d),
    "numpy.exp(fake)": lambda cp, h, d: np.exp(d),
    "numpy.sum(fake)": lambda cp, h, d: np.sum(d),
    "numpy.concatenate": lambda cp, h, d: np.concatenate([h, d]),
    "fake[host index]": lambda cp, h, d: d[np.array([0, 1])],
    "fake[host mask]": lambda cp, h, d: d[np.array([True, False, True])],
    "fake[[host index]]": lambda cp, h, d: d[[np.array([0])]],
    "fake[0:3] = host": lambda cp, h, d: d.__setitem__(slice(0, 3), h),
    "fake[fake index] = host": lambda cp, h, d: d.__setitem__(cp.asarray([0]), h[:1]),
    "cupy.add(fake, host)": lambda cp, h, d: cp.add(d, h),
    "cupy.add(out=host)": lambda cp, h, d: cp.add(d, d, out=h),
    "cupy.concatenate([fake, host])": lambda cp, h, d: cp.concatenate([d, h]),
    "cupy.zeros_like(host)": lambda cp, h, d: cp.zeros_like(h),
    "cupy.where(fake, host, 0)": lambda cp, h, d: cp.where(d > 0, h, 0),
    "cupy.add.at(fake, ..., host)": lambda cp, h, d: cp.add.at(d, cp.asarray([0]), h[:1]),
    "cupy.linalg.norm(host)": lambda cp, h, d: cp.linalg.norm(h),
    "fake.dot(host)": lambda cp, h, d: d.dot(h),
    "fake.fill(host)": lambda cp, h, d: d.fill(h),
}


@pytest.mark.parametrize("case", REFUSED)
def test_implicit_conversion_is_refused(cp, case):
    host, fake = np.arange(3.0), cp.arange(3.0)
    before = fake.get()
    with pytest.raises(TypeError):
        REFUSED[case](cp, host, fake)
    assert np.array_equal(fake.get(), before) and np.array_equal(host, np.arange(3.0))


def test_refusal_messages_are_cupys(cp):
    with pytest.raises(TypeError) as e:
        np.asarray(cp.ones(2))
    assert str(e.value) == IMPLICIT
    with pytest.raises(TypeError, match=r"^Unsupported type <class 'numpy.ndarray'>$"):
        cp.add(cp.ones(2), np.ones(2))


def test_no_host_view_of_the_buffer(cp):
    a = cp.ones(3)
    for name in ("data", "ctypes", "flat", "tobytes", "__array_interface__", "__array_struct__", "__dlpack__"):
        assert not hasattr(a, name), name
    with pytest.raises(TypeError):
        memoryview(a)
    assert not isinstance(a, np.ndarray) and cp.ndarray is type(a)


# --- explicit transfers --------------------------------------------------------------------------

def test_explicit_round_trip_copies(cp):
    host = np.arange(6.0).reshape(2, 3)
    dev = cp.asarray(host)
    host[0, 0] = 100.0  # the device copy does not alias host memory
    back = dev.get()
    assert type(back) is np.ndarray and np.array_equal(back, np.arange(6.0).reshape(2, 3))
    back[0, 0] = -1.0  # nor does the host copy alias the device
    assert dev.get()[0, 0] == 0.0
    assert type(cp.asnumpy(dev)) is np.ndarray
    assert cp._transfers == {"arrays": 3, "scalars": 0}
    cp._reset_transfers()
    assert cp._transfers == {"arrays": 0, "scalars": 0}


def test_asarray_and_array(cp):
    a = cp.asarray(np.arange(3, dtype=np.float32))
    assert isinstance(a, cp.ndarray) and a.dtype == np.float32
    assert cp.asarray(a) is a and cp.asarray(a, dtype=np.float32) is a
    b = cp.asarray(a, dtype=np.float64)
    assert b is not a and b.dtype == np.float64
    c = cp.array(a)
    c += 1
    assert cp.asarray(np.float32(2.5)).shape == () and cp.asarray(np.float32(2.5)).dtype == np.float32
    assert cp.asarray(3).dtype == np.asarray(3).dtype and cp.asarray(2.0).ndim == 0
    assert cp.asarray([[1, 2], [3, 4]]).shape == (2, 2)
    assert cp.array([1, 2], dtype=np.int32, ndmin=2).shape == (1, 2)
    mixed = cp.asarray([cp.asarray(1.0), 2.0])
    assert cp._transfers == {"arrays": 0, "scalars": 0}  # host -> device moves nothing back
    assert a.get().tolist() == [0.0, 1.0, 2.0]  # array() copies by default
    assert mixed.get().tolist() == [1.0, 2.0]


def test_scalar_transfers_are_counted(cp):
    s = cp.arange(4.0).sum()
    assert isinstance(s, cp.ndarray) and s.shape == ()
    assert float(s) == 6.0 and int(s) == 6 and bool(s) is True and s.item() == 6.0
    assert cp.asarray([7]).tolist() == [7]
    assert [0, 1, 2][cp.asarray(2)] == 2  # __index__
    assert f"{s:.1f}" == "6.0"
    assert cp._transfers == {"arrays": 0, "scalars": 7}
    assert cp.arange(3).tolist() == [0, 1, 2] and cp._transfers["arrays"] == 1
    with pytest.raises(ValueError):
        bool(cp.ones(2))
    with pytest.raises(TypeError):  # as real CuPy on NumPy 2: only 0-d arrays convert to scalars
        float(cp.ones(2))


def test_device_only_computation_transfers_nothing(cp):
    rng = cp.random.default_rng(0)
    W, x = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    y = cp.maximum(W @ x, 0.0)
    loss = (y * y).mean() + cp.log(cp.exp(y).sum(axis=0)).sum()
    W -= 0.1 * (loss * W)
    assert isinstance(loss, cp.ndarray) and loss.shape == ()
    assert cp._transfers == {"arrays": 0, "scalars": 0}


# --- delegation --------------------------------------------------------------------------------

def test_functions_methods_and_constants_are_delegated(cp):
    a = cp.arange(6.0).reshape(2, 3)
    for r in (cp.exp(a), cp.sqrt(a), cp.maximum(a, 1.0), cp.where(a > 2, a, 0.0), cp.concatenate([a, a]),
              cp.dot(a, a.T), cp.matmul(a, a.T), cp.outer(a[0], a[1]), cp.triu(a), cp.zeros((2, 2)),
              cp.empty(3), cp.zeros_like(a), cp.isfinite(a), cp.abs(-a), cp.sign(a),
              a.reshape(3, 2), a.ravel(), a.astype(np.float32), a.copy(), a.transpose(), a.clip(1, 2),
              a.cumsum(axis=1), a.T, a[:, 1]):
        assert type(r) is cp.ndarray
    np.testing.assert_array_equal(cp.dot(a, a.T).get(), np.dot(a.get(), a.get().T))
    assert cp.float32 is np.float32 and cp.float64 is np.float64 and cp.int64 is np.int64
    assert cp.dtype is np.dtype and cp.inf == np.inf and cp.pi == np.pi and cp.newaxis is None
    assert a.shape == (2, 3) and a.dtype == np.float64 and a.size == 6 and a.ndim == 2
    assert a.strides == (24, 8) and a.nbytes == 48 and a.itemsize == 8 and a.flags.c_contiguous


def test_reductions_give_0d_arrays(cp):
    a = cp.arange(6.0).reshape(2, 3)
    for r in (a.sum(), a.mean(), a.max(), a.min(), a.argmax(), a.argmin(), a.any(), a.all(),
              cp.sum(a), cp.linalg.norm(a), a[0, 0], a[1][2], a[0] @ a[1]):
        assert type(r) is cp.ndarray and r.shape == (), r
    assert a.sum(axis=0).shape == (3,)
    assert float(a.max()) == 5.0 and int(a.argmax()) == 5
    assert cp._transfers == {"arrays": 0, "scalars": 2}


def test_tuples_of_results_are_wrapped(cp):
    a = cp.asarray([[0.0, 3.0], [4.0, 0.0]])
    rows, cols = cp.nonzero(a)
    i, j = cp.unravel_index(a.argmax(), a.shape)
    q, r = cp.divmod(a, 2.0)
    assert all(type(t) is cp.ndarray for t in (rows, cols, i, j, q, r))
    assert rows.get().tolist() == [0, 1] and (int(i), int(j)) == (1, 0)


def test_along_axis_functions(cp):
    a = cp.asarray([[3.0, 1.0], [2.0, 5.0]])
    idx = a.argmax(axis=1)[:, None]
    assert cp.take_along_axis(a, idx, axis=1).get().ravel().tolist() == [3.0, 5.0]
    cp.put_along_axis(a, idx, 0.0, axis=1)
    assert a.get().tolist() == [[0.0, 1.0], [2.0, 0.0]]


# --- in place, out= and views ------------------------------------------------------------------

@pytest.mark.parametrize("op", ["iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow"])
def test_inplace_operators_write_the_buffer(cp, op):
    a = cp.arange(1.0, 7.0).reshape(2, 3)
    alias, expected = a.reshape(-1), getattr(operator, op)(np.arange(1.0, 7.0).reshape(2, 3), 2.0)
    r = getattr(operator, op)(a, 2.0)
    assert r is a
    np.testing.assert_array_equal(a.get(), expected)
    np.testing.assert_array_equal(alias.get(), expected.ravel())


def test_inplace_with_array_operands(cp):
    a, b = cp.ones((2, 2)), cp.full((2, 2), 2.0)
    view = a[0]
    a *= b
    a @= b
    assert a.get().tolist() == [[8.0, 8.0], [8.0, 8.0]] and view.get().tolist() == [8.0, 8.0]
    m = cp.asarray([True, False])
    m &= cp.asarray([True, True])
    m |= cp.asarray([False, True])
    m ^= cp.asarray([True, False])
    assert m.get().tolist() == [False, True]


def test_out_writes_into_the_given_array(cp):
    a = cp.arange(6.0).reshape(2, 3)
    out = cp.empty((2, 3))
    r = cp.multiply(a, 2.0, out=out)
    assert r is out and out.get().tolist() == [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]]
    base = cp.zeros((2, 3))
    cp.add(a[0], 1.0, out=base[1])  # out= a view writes through to its base
    assert base.get().tolist() == [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]
    cp.exp(a, out=a)
    np.testing.assert_allclose(a.get(), np.exp(np.arange(6.0).reshape(2, 3)))
    s = cp.empty(())
    assert a.sum(out=s) is s


def test_views_share_memory(cp):
    a = cp.zeros((2, 3))
    b = a.reshape(-1)
    b += 1
    a.T[0] = 5.0
    a[:, 2] *= 3
    e = a[1, 1]  # an element is a 0-d view, as in CuPy
    e += 10
    assert a.get().tolist() == [[5.0, 1.0, 3.0], [5.0, 11.0, 3.0]]
    assert a.astype(a.dtype, copy=False) is a and cp.ascontiguousarray(a) is a


def test_getitem_and_setitem(cp):
    a = cp.arange(12.0).reshape(3, 4)
    assert a[1].shape == (4,) and a[None, ..., 1:3].shape == (1, 3, 2) and a[..., 0].shape == (3,)
    taken, masked = a[cp.asarray([2, 0])], a[a > 9]
    listed, pairs = a[[0, 2], 1], a[(cp.asarray([0, 1]), cp.asarray([3, 0]))]
    a[a > 9] = 0.0
    a[0] = cp.asarray([-1.0, -2.0, -3.0, -4.0])
    a[cp.asarray([1]), 0] = 7
    a[2, 0:2] = [0.5, 0.25]
    assert len(a) == 3 and [r.shape for r in a] == [(4,)] * 3
    assert all(type(x) is cp.ndarray and x.shape == () for x in a[0])
    assert repr(cp.asarray([1.0, 2.0])) == "array([1., 2.])" and str(cp.asarray([1, 2])) == "[1 2]"
    assert cp._transfers == {"arrays": 0, "scalars": 0}  # indexing transfers nothing
    assert taken.get()[:, 0].tolist() == [8.0, 0.0] and masked.get().tolist() == [10.0, 11.0]
    assert listed.get().tolist() == [1.0, 9.0] and pairs.get().tolist() == [3.0, 4.0]
    assert a.get().tolist() == [[-1, -2, -3, -4], [7, 5, 6, 7], [0.5, 0.25, 0, 0]]


BINARY = ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "lt", "le", "eq", "ne", "gt", "ge"]


@pytest.mark.parametrize("op", BINARY + ["matmul", "and_", "or_", "xor", "lshift", "rshift"])
def test_operators_match_numpy(cp, op):
    f = getattr(operator, op)
    if op in ("and_", "or_", "xor", "lshift", "rshift"):
        x, y = np.arange(1, 5).reshape(2, 2), np.array([[2, 1], [3, 1]])
    else:
        x, y = np.arange(1.0, 5.0).reshape(2, 2), np.array([[2.0, 0.5], [3.0, 1.5]])
    r = f(cp.asarray(x), cp.asarray(y))
    assert type(r) is cp.ndarray
    np.testing.assert_array_equal(r.get(), f(x, y))
    if op != "matmul":
        for left, right, expected in [(cp.asarray(x), 2, f(x, 2)), (3, cp.asarray(y), f(3, y)),
                                      (np.int64(3), cp.asarray(y), f(np.int64(3), y))]:
            r = f(left, right)
            assert type(r) is cp.ndarray, (left, right)
            np.testing.assert_array_equal(r.get(), expected)


def test_unary_operators(cp):
    x = np.array([[-1.5, 2.0]])
    for f in (operator.neg, operator.pos, abs):
        np.testing.assert_array_equal(f(cp.asarray(x)).get(), f(x))
    assert (~cp.asarray([True, False])).get().tolist() == [False, True]


def test_copies_and_pickles_are_independent(cp):
    a = cp.arange(3.0)
    for b in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert type(b) is cp.ndarray
        b += 1
    assert a.get().tolist() == [0.0, 1.0, 2.0]


def test_get_array_module(cp, sparse):
    d = cp.ones(2)
    assert cp.get_array_module(d) is cp and cp.get_array_module(1.0, d) is cp
    assert cp.get_array_module(np.ones(2), 3) is np and cp.get_array_module() is np
    assert cp.get_array_module(sparse.csr_matrix(cp.eye(2))) is cp


# --- random --------------------------------------------------------------------------------------

def test_random_generator_shapes_and_dtypes(cp):
    rng = cp.random.default_rng(0)
    for r, shape, dtype in [(rng.random((2, 3)), (2, 3), np.float64),
                            (rng.random(4, dtype=np.float32), (4,), np.float32),
                            (rng.standard_normal((3, 2)), (3, 2), np.float64),
                            (rng.standard_normal(5, dtype=np.float32), (5,), np.float32),
                            (rng.integers(0, 10, size=(7,)), (7,), np.int64),
                            (rng.integers(5, size=3, dtype=np.int32), (3,), np.int32),
                            (rng.uniform(-1.0, 1.0, size=4, dtype=np.float32), (4,), np.float32),
                            (rng.random(), (), np.float64),
                            (rng.standard_normal(dtype=np.float32), (), np.float32),
                            (rng.integers(3), (), np.int64)]:
        assert type(r) is cp.ndarray and r.shape == shape and r.dtype == dtype, (r, shape, dtype)
    u = rng.random(1000).get()
    assert 0.0 <= u.min() and u.max() < 1.0
    k = rng.integers(2, 5, size=1000).get()
    assert set(k.tolist()) == {2, 3, 4}
    assert sorted(rng.permutation(5).get().tolist()) == [0, 1, 2, 3, 4]
    p = rng.permutation(cp.arange(6.0).reshape(3, 2))
    assert type(p) is cp.ndarray and sorted(p.get()[:, 0].tolist()) == [0.0, 2.0, 4.0]
    with pytest.raises(TypeError):
        rng.permutation(np.arange(3))


def test_random_out_writes_into_the_given_array(cp):
    rng = cp.random.default_rng(1)
    out = cp.zeros((2, 2), dtype=np.float32)
    assert rng.standard_normal((2, 2), dtype=np.float32, out=out) is out
    assert bool((out != 0).all())
    out64 = cp.zeros(3)
    assert rng.random(3, out=out64) is out64 and bool((out64 > 0).all())


def test_same_seed_same_numbers(cp):
    a, b, c = (cp.random.default_rng(s) for s in (42, 42, 43))
    x, y, z = (g.standard_normal(8) for g in (a, b, c))
    assert np.array_equal(x.get(), y.get()) and not np.array_equal(x.get(), z.get())
    g = cp.random.Generator(cp.random.XORWOW(42))
    assert np.array_equal(g.standard_normal(8).get(), x.get())
    assert cp.random.default_rng(g) is g


def test_generator_state_is_not_serializable(cp):
    rng = cp.random.default_rng(0)
    with pytest.raises((NotImplementedError, AttributeError)):
        rng.bit_generator.state
    with pytest.raises((NotImplementedError, AttributeError)):
        rng.bit_generator.state = {}
    for obj in (rng, rng.bit_generator):
        with pytest.raises(TypeError):
            pickle.dumps(obj)
        with pytest.raises(TypeError):
            copy.deepcopy(obj)


# --- linalg, cuda ------------------------------------------------------------------------------

def test_linalg(cp):
    A = cp.asarray([[4.0, 1.0], [1.0, 3.0], [0.0, 2.0]])
    U, S, Vt = cp.linalg.svd(A, full_matrices=False)
    assert all(type(t) is cp.ndarray for t in (U, S, Vt))
    np.testing.assert_allclose((U * S @ Vt).get(), A.get(), atol=1e-12)
    Q, R = cp.linalg.qr(A)
    np.testing.assert_allclose((Q @ R).get(), A.get(), atol=1e-12)
    w, V = cp.linalg.eigh(A.T @ A)
    assert type(w) is cp.ndarray and w.shape == (2,)
    x = cp.linalg.solve(A.T @ A, cp.ones(2))
    np.testing.assert_allclose(((A.T @ A) @ x).get(), np.ones(2), atol=1e-12)
    sol, *_ = cp.linalg.lstsq(A, cp.ones(3), rcond=None)
    np.testing.assert_allclose(((A.T @ A) @ sol).get(), (A.T @ cp.ones(3)).get(), atol=1e-12)
    assert cp.linalg.LinAlgError is np.linalg.LinAlgError
    with pytest.raises(TypeError):
        cp.linalg.svd(np.eye(2))


def test_cuda(cp):
    with cp.cuda.Device(0) as dev:
        dev.synchronize()
        assert dev.id == 0
    assert cp.cuda.Device().id == 0 and cp.ones(1).device == cp.cuda.Device(0)
    assert cp.cuda.runtime.getDeviceCount() == 1
    props = cp.cuda.runtime.getDeviceProperties(0)
    assert props["name"] == b"fake GPU (NumPy stand-in)" and props["totalGlobalMem"] > 0
    cp.cuda.get_current_stream().synchronize()
    pool = cp.get_default_memory_pool()
    assert pool.used_bytes() == 0 and pool.total_bytes() == 0 and pool.free_all_blocks() is None
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError):
        with cp.cuda.Device(1):
            pass
    start, end = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    end.record()
    end.synchronize()
    assert cp.cuda.get_elapsed_time(start, end) >= 0.0


def test_only_written_submodules_exist(cp):
    with pytest.raises(AttributeError):
        cp.fft  # numpy.fft must not leak through the delegation
    with pytest.raises(AttributeError):
        cp.no_such_function


# --- cupyx.scipy.sparse ---------------------------------------------------------------------------

def _csr(cp, sparse):
    data, row, col = cp.asarray([1.0, 2.0, 3.0]), cp.asarray([0, 1, 1]), cp.asarray([2, 0, 1])
    return sparse.csr_matrix((data, (row, col)), shape=(2, 3))


def test_sparse_products_give_device_arrays(cp, sparse):
    A = _csr(cp, sparse)
    dense = np.array([[0.0, 0.0, 1.0], [2.0, 3.0, 0.0]])
    assert A.shape == (2, 3) and A.nnz == 3 and sparse.issparse(A) and not sparse.issparse(cp.ones(2))
    assert sparse.isspmatrix_csr(A) and A.tocsr() is A
    AT = A.T.tocsr()
    assert type(AT) is sparse.csr_matrix and AT.shape == (3, 2)
    xh = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    x = cp.asarray(xh)
    for r, expected in [(A @ x, dense @ xh), (A.dot(x), dense @ xh), (AT @ cp.ones(2), dense.T @ np.ones(2)),
                        (cp.ones((1, 2)) @ A, np.ones((1, 2)) @ dense), (A.toarray(), dense),
                        (A.sum(axis=0), dense.sum(axis=0, keepdims=True))]:
        assert type(r) is cp.ndarray
        np.testing.assert_array_equal(r.get(), expected)
    assert type(A.data) is cp.ndarray and type(A * 2.0) is sparse.csr_matrix
    assert A.sum(axis=1).ravel().shape == (2,)  # an ndarray on the device, not SciPy's numpy.matrix
    assert cp._transfers["arrays"] == 6  # only the .get() calls above


def test_sparse_refuses_host_arrays(cp, sparse):
    A = _csr(cp, sparse)
    h = np.ones((3, 2))
    for f in (lambda: A @ h, lambda: A.dot(h), lambda: np.ones((1, 2)) @ A, lambda: np.asarray(A),
              lambda: sparse.csr_matrix((np.ones(1), (np.zeros(1, int), np.zeros(1, int))), shape=(1, 1)),
              lambda: sparse.csr_matrix(np.eye(2))):
        with pytest.raises(TypeError):
            f()


def test_sparse_from_host_scipy_matrix_is_an_explicit_copy(cp, sparse):
    import scipy.sparse

    host = scipy.sparse.csr_matrix(np.eye(2))
    A = sparse.csr_matrix(host)
    host.data[:] = 5.0
    assert A.toarray().get().tolist() == [[1.0, 0.0], [0.0, 1.0]]
    back = A.get()
    assert scipy.sparse.issparse(back) and back.nnz == 2
