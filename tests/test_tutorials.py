"""Every tutorial runs from another folder and prints what its header promises."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("[0-9][0-9]_*.py"))
NUMBER = re.compile(r"-?\d[\d,]*\.?\d*")


def expected_output(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    block = doc.split("Expected output", 1)[1].split("\n", 1)[1]
    return [line.strip() for line in block.strip("\n").splitlines() if line.strip()]


def numbers(line):  # the numbers of a line, in order
    return [float(x.replace(",", "")) for x in NUMBER.findall(line)]


def test_there_are_tutorials():
    assert TUTORIALS, "tutorials/ has no NN_*.py scripts"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_prints_its_expected_output(path, tmp_path):
    # the timeout only guards against a script that hangs, never a speed test: the longest, 07 and 10, take about
    # 20 s on a quiet 2-core machine, and a busy one (oversubscribed BLAS threads) has made them 10x slower
    r = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    got = [line.strip() for line in r.stdout.splitlines() if line.strip()]
    want = expected_output(path)
    assert len(got) == len(want), r.stdout
    for g, w in zip(got, want):
        assert NUMBER.sub("#", g) == NUMBER.sub("#", w), (g, w)  # same text
        for tok, a, b in zip(NUMBER.findall(w), numbers(g), numbers(w)):
            # counts exact; percentages within 3 points and losses within 0.1, for BLAS rounding across machines
            tol = 0.0 if "." not in tok else (3.0 if abs(b) >= 10 else 0.1)
            assert abs(a - b) <= tol, (g, w)
