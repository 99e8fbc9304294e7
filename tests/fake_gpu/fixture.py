"""The `fake_cupy` pytest fixture: `import cupy`, `import cupyx.scipy.sparse` give the NumPy stand-in
(this folder's `cupy` and `cupyx` packages) for the duration of one test.

Use it from a conftest or a test module: `from fake_gpu.fixture import fake_cupy`.
"""
import sys
from pathlib import Path

import pytest

FAKE_GPU_DIR = str(Path(__file__).resolve().parent)


def _cupy_module_names():
    return [name for name in sys.modules if name.split(".")[0].startswith("cupy")]


@pytest.fixture
def fake_cupy(monkeypatch):
    """Yield the fake `cupy` module; afterwards no cupy* module is left in sys.modules (a real CuPy
    imported before the test, if any, is put back by monkeypatch)."""
    for name in _cupy_module_names():
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(FAKE_GPU_DIR)
    import cupy

    assert getattr(cupy, "__fake__", False), f"`import cupy` found {cupy.__file__}, not the stand-in"
    try:
        yield cupy
    finally:
        for name in _cupy_module_names():
            del sys.modules[name]
