"""The paper map (numpy_dlra.paper_map) names only what exists: every path resolves, every test is defined.

The tests named in the map are found by parsing their files, not run.
"""
import ast
import re
from pathlib import Path

import pytest

from numpy_dlra import paper_map
from numpy_dlra.paper_map import ENTRIES, SECTIONS, markdown_table, resolve

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
    assert lines[0] == "| paper | reference | training runs | tests |"
    rows = lines[2:]
    assert len(rows) == len(ENTRIES)
    for row, e in zip(rows, ENTRIES):
        assert row.startswith(f"| {e.label}: ") and row.count(" | ") == 3, row
    cos_row = rows[[e.label for e in ENTRIES].index("Eq. (7)")]
    assert "`dlra/equations.py`: `cos_matrix`" in cos_row
    assert "`test_fusion.py::test_closest_pair_from_the_gram_is_the_equations_pair`" in cos_row


def test_the_table_says_the_same_and_marks_what_training_does_not_run():
    same = paper_map.Entry("5", "x", "t", "", ("numpy_dlra.nn.layers.ReLU",), ("numpy_dlra.nn.layers.ReLU",))
    none = paper_map.Entry("5", "y", "t", "", ("numpy_dlra.dlra.equations.rare", "numpy_dlra.dlra.equations.rare_grad"))
    first, second = markdown_table([same, none]).splitlines()[2:]
    assert "| the same |" in first
    assert "`dlra/equations.py`: `rare`, `rare_grad` | — |" in second
