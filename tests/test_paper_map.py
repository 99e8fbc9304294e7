"""The paper map (numpy_dlra.paper_map) names only what exists: every path resolves, every test is defined,
every tutorial is there; and every test it names carries its pytest markers (``pytest -m eq13``).

The tests named in the map are found by parsing their files, not run; the markers, by collecting the suite
in a subprocess.
"""
import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from numpy_dlra import paper_map
from numpy_dlra.paper_map import ENTRIES, SECTIONS, TUTORIALS, markdown_table, resolve

ROOT = Path(__file__).resolve().parents[1]


def defined_tests(file):
    """The node ids ("Class::test" or "test") of the test functions defined in `file` (relative to the root)."""
    tree = ast.parse((ROOT / file).read_text())
    ids = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            ids.add(node.name)
        elif isinstance(node, ast.ClassDef):
            ids |= {f"{node.name}::{f.name}" for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return ids


def missing_tests(node_ids):
    """The node ids whose file does not exist or does not define the test (a parametrized id's [...] dropped)."""
    missing = []
    for node_id in node_ids:
        file, _, name = node_id.partition("::")
        name = re.sub(r"\[.*\]$", "", name)
        if not (ROOT / file).is_file() or name not in defined_tests(file):
            missing.append(node_id)
    return missing


def all_paths():
    return sorted({p for e in ENTRIES for p in e.reference + e.engine})


@pytest.mark.parametrize("path", all_paths())
def test_every_reference_and_engine_path_resolves_to_a_function_or_class(path):
    obj = resolve(path)
    assert callable(obj), f"{path} is not a function, method or class"


def test_every_test_named_exists():
    assert missing_tests([t for e in ENTRIES for t in e.tests]) == []


def test_a_wrong_name_is_an_error_that_names_it():
    with pytest.raises(LookupError, match="no_such_function"):
        resolve("numpy_dlra.dlra.equations.no_such_function")
    with pytest.raises(LookupError, match="no_such_method"):
        resolve("numpy_dlra.dlra.network.FactorizedMLP.no_such_method")
    with pytest.raises(LookupError, match="no module"):
        resolve("numpy_dlra.no_such_module.f")
    assert missing_tests(["tests/test_fusion.py::test_no_such_test", "tests/test_no_such_file.py::test_x",
                          "tests/test_fusion.py::test_which_axes_may_fuse[1-shape0-axes0]"]) == [
        "tests/test_fusion.py::test_no_such_test", "tests/test_no_such_file.py::test_x"]


def test_resolve_finds_functions_classes_and_methods():
    from numpy_dlra.dlra.equations import cos_matrix
    from numpy_dlra.dlra.network import FactorizedMLP

    assert resolve("numpy_dlra.dlra.equations.cos_matrix") is cos_matrix
    assert resolve("numpy_dlra.dlra.network.FactorizedMLP") is FactorizedMLP
    assert resolve("numpy_dlra.dlra.network.FactorizedMLP.add_l2") is FactorizedMLP.add_l2
    assert resolve("numpy_dlra.equations.cos_matrix") is cos_matrix  # the documented import, re-exported


def test_sections_are_known_labels_unique_and_entries_in_section_order():
    keys = [k for k, _ in SECTIONS]
    assert len(keys) == len(set(keys))
    assert all(e.section in keys for e in ENTRIES), [e.label for e in ENTRIES if e.section not in keys]
    order = [keys.index(e.section) for e in ENTRIES]
    assert order == sorted(order), "ENTRIES are not in the order of SECTIONS"
    assert set(keys) == {e.section for e in ENTRIES}, "a section without entries"
    labels = [e.label for e in ENTRIES]
    assert len(labels) == len(set(labels)), sorted(l for l in labels if labels.count(l) > 1)
    assert all(e.reference or e.engine or e.tests for e in ENTRIES)


def test_markdown_table_has_one_row_per_entry():
    lines = markdown_table().splitlines()
    assert lines[0] == "| paper | reference | training runs | tests | markers |"
    rows = lines[2:]
    assert len(rows) == len(ENTRIES)
    for row, e in zip(rows, ENTRIES):
        assert row.startswith(f"| {e.label}: ") and row.count(" | ") == 4, row
    cos_row = rows[[e.label for e in ENTRIES].index("Eq. (6)")]
    assert "`dlra/equations.py`: `cos_matrix`" in cos_row
    # full node ids, to paste after pytest
    assert "`tests/test_fusion.py::test_closest_pair_from_the_gram_is_the_equations_pair`" in cos_row
    assert "`tests/test_equations.py::test_cos_matrix_and_rare_definitions`" in cos_row
    assert cos_row.endswith("| `sec4`, `rare`, `eq6` |")
    for e in ENTRIES:
        assert all(f"`{t}`" in rows[ENTRIES.index(e)] for t in e.tests)


def test_the_table_says_the_same_and_marks_what_training_does_not_run():
    same = paper_map.Entry("5", "x", "t", "", ("numpy_dlra.nn.layers.ReLU",), ("numpy_dlra.nn.layers.ReLU",))
    none = paper_map.Entry("5", "y", "t", "", ("numpy_dlra.dlra.equations.rare", "numpy_dlra.dlra.equations.rare_grad"))
    first, second = markdown_table([same, none]).splitlines()[2:]
    assert "| the same |" in first
    assert "`dlra/equations.py`: `rare`, `rare_grad` | — |" in second


def test_markers_follow_the_sections_and_the_labels():
    by_label = {e.label: e for e in ENTRIES}
    assert paper_map.entry_markers(by_label["Eqs. (7), (9)-(12)"]) == ("sec4_1", "fusion", "eq7", "eq9", "eq10", "eq11", "eq12")
    assert paper_map.entry_markers(by_label["Eq. (11), erratum"]) == ("sec4_1", "fusion", "eq11", "erratum")
    assert paper_map.entry_markers(by_label["Eq. (15)"]) == ("sec4_5", "fn", "eq15")
    assert paper_map.entry_markers(by_label["Algorithm 1, merges and Adam"]) == ("alg1",)
    assert paper_map.entry_markers(by_label["Table 1"]) == ("sec5", "table1")
    assert paper_map.label_markers("Export") == ("export",)
    assert paper_map.section_markers("6.2") == ("sec6_2",) and paper_map.section_markers("Appendix B") == ("appendixb",)
    found = paper_map.markers()
    assert set(found["eq11"]) == set(by_label["Eqs. (7), (9)-(12)"].tests + by_label["Eq. (11), erratum"].tests)
    assert set(found["fn"]) == set(by_label["Eq. (15)"].tests)
    assert set(found["rare"]) == set(by_label["Eq. (5)"].tests + by_label["Eq. (6)"].tests)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", m) for m in found), sorted(found)  # usable in -m expressions
    assert set(paper_map.marker_descriptions()) == set(found)
    assert paper_map.pytest_command(by_label["Eq. (8)"]) == "pytest -m eq8"
    assert paper_map.pytest_command(by_label["Sec. 5, Adam"]).startswith("pytest tests/test_optim.py::")
    for key, _ in SECTIONS:  # a new section gets its markers here, not from the fallback
        assert key in paper_map.SECTION_MARKERS, key


def test_every_tutorial_is_named_once_or_more_and_exists():
    keys = [k for k, _ in SECTIONS]
    assert set(TUTORIALS) <= set(keys)
    named = {t for ts in TUTORIALS.values() for t in ts}
    scripts = {p.stem for p in (ROOT / "tutorials").glob("[0-9][0-9]_*.py")}
    assert named == scripts, (named - scripts, scripts - named)


def _collect(tmp_path, *args):
    """{node id: its markers} for the tests pytest collects with `args` (a subprocess; nothing runs)."""
    (tmp_path / "dump_markers.py").write_text(
        "import json, os\n"
        "def pytest_collection_finish(session):\n"
        "    with open(os.environ['DUMP_MARKERS'], 'w') as f:\n"
        "        json.dump({i.nodeid: sorted({m.name for m in i.iter_markers()}) for i in session.items}, f)\n")
    out = tmp_path / "markers.json"
    env = dict(os.environ, PYTHONPATH=str(tmp_path), DUMP_MARKERS=str(out))
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "dump_markers",
                        "-p", "no:cacheprovider", "-o", "addopts=", *args],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(out.read_text())


def _matches(node, map_id):
    return node == map_id or ("[" not in map_id and node.split("[", 1)[0] == map_id)


def test_every_test_the_map_names_carries_its_markers_and_only_those_tests_do(tmp_path):
    """Collects the whole suite: `pytest -m NAME` selects exactly the map's tests for NAME, no more, no fewer."""
    collected = _collect(tmp_path)
    for name, tests in paper_map.markers().items():
        for t in tests:
            items = [n for n in collected if _matches(n, t)]
            assert items, f"{t} (marker {name}) was not collected"
            lacking = [n for n in items if name not in collected[n]]
            assert not lacking, f"{lacking} lack the marker {name}"
        extra = [n for n, ms in collected.items() if name in ms and not any(_matches(n, t) for t in tests)]
        assert not extra, f"marked {name} but not named by the map for it: {extra}"


def test_pytest_m_eq13_selects_the_map_tests_for_eq13(tmp_path):
    selected = _collect(tmp_path, "-m", "eq13")
    want = paper_map.markers()["eq13"]
    assert selected and all(any(_matches(n, t) for t in want) for n in selected), sorted(selected)
    assert all(any(_matches(n, t) for n in selected) for t in want)
