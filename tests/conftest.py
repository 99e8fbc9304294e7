from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from numpy_dlra import paper_map

settings.register_profile("default", deadline=None, max_examples=40, derandomize=True)
settings.load_profile("default")

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """One marker per section and equation of the paper, from numpy_dlra.paper_map (the only list of them):
    ``pytest -m eq13`` runs the tests the map names for Eq. (13); ``pytest --markers`` lists them all."""
    for name, description in paper_map.marker_descriptions().items():
        config.addinivalue_line("markers", f"{name}: {description}")


def _map_id(item):
    """The item's node id from the repository root ("tests/test_x.py::test_y[p]"), wherever pytest runs."""
    try:
        file = Path(item.path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return item.nodeid
    return file + "::" + item.nodeid.split("::", 1)[1] if "::" in item.nodeid else item.nodeid


def pytest_collection_modifyitems(config, items):
    """Each test the map names gets the markers of every entry naming it; a name without "[...]" stands for all
    of a parametrized test's cases, one with it for that case only."""
    marked = paper_map.marked_tests()
    for item in items:
        node = _map_id(item)
        for name in dict.fromkeys(marked.get(node, []) + marked.get(node.split("[", 1)[0], [])):
            item.add_marker(getattr(pytest.mark, name))


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
