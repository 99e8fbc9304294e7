"""The array module `xp`: NumPy on the CPU (``--device cpu``), CuPy on a GPU (``--device cuda``).

Numeric code never imports NumPy for arithmetic on model arrays; it asks `array_module(*arrays)`
for the module that owns its inputs, so the same functions run on CuPy arrays unchanged. Only the
small bookkeeping arrays of DLRA (which units were fused into which) stay on the host.

Random numbers, one generator per backend: on the CPU every stream is a NumPy ``Generator``
(PCG64) whose state each checkpoint saves. On a GPU the dropout masks and the gradient noise come
from CuPy generators (cuRAND XORWOW) that are re-seeded at every epoch from (seed, stream, epoch),
since CuPy cannot save a generator's state; the initialization and the shuffling stay NumPy's, so
a GPU run starts from the same weights and sees the same batches as a CPU run. A CUDA run is
reproducible on its own device (and CuPy major version) only.
"""
import numpy

from ..errors import UserError

DEVICES = ("cpu", "cuda")


def array_module(*arrays):
    """Return the array module (numpy or cupy) that owns `arrays` (numpy if none is a CuPy array)."""
    for a in arrays:
        if type(a).__module__.split(".")[0] == "cupy":
            import cupy  # imported lazily: CuPy is optional

            return cupy
    return numpy


def module_for(device):
    """The array module of ``--device``: numpy for cpu, cupy for cuda (UserError when CuPy or a GPU is missing)."""
    if device == "cpu":
        return numpy
    if device != "cuda":
        raise UserError(f"--device {device!r}: choose one of {', '.join(DEVICES)}")
    try:
        import cupy
    except ImportError:
        raise UserError("--device cuda: CuPy is not installed; install the optional extra "
                        "(pip install 'numpy_dlra[gpu]', which brings cupy-cuda12x) or use --device cpu") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - CUDA driver errors have many types
        raise UserError(f"--device cuda: CuPy finds no usable GPU ({type(exc).__name__}: {exc}); use --device cpu") from None
    if count < 1:
        raise UserError("--device cuda: CuPy finds no GPU; use --device cpu")
    return cupy


def device_name(xp):
    """What runs the arithmetic, in words: 'cpu' or the GPU's name."""
    if xp is numpy:
        return "cpu"
    name = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)["name"]
    return f"cuda: {name.decode() if isinstance(name, bytes) else name}"


def synchronize(xp):
    """Wait for the device's queued work (a timer must not stop before the GPU does); no-op on the CPU."""
    if xp is not numpy:
        xp.cuda.get_current_stream().synchronize()


def device_rng(xp, seed, stream, epoch):
    """The generator of random `stream` (an index) for `epoch` on a GPU: CuPy's default (XORWOW),
    seeded from (seed, stream, epoch) so that a run resumed after any epoch draws what it would have."""
    return xp.random.default_rng(numpy.random.SeedSequence([seed, stream, epoch]))


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
    import cupyx.scipy.sparse

    return cupyx.scipy.sparse
