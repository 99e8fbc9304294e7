import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("default", deadline=None, max_examples=40, derandomize=True)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global NumPy state (the library itself never uses it)."""
    np.random.seed(0)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def no_full_data(tmp_path, monkeypatch):
    """Hide the cache and Debian's package: only the embedded subset can be found."""
    from numpy_dlra.data import datasets

    monkeypatch.setenv("NUMPY_DLRA_DATA", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_DIR", tmp_path / "no-debian")
    return tmp_path
