"""Sphinx extension: one page per section of the paper, generated from numpy_dlra.paper_map at build time.

Each page opens with the tutorials that run the section (paper_map.TUTORIALS; their pages link back,
docs/_ext/site_pages.py) and the ``pytest -m`` line that runs its tests. For every equation of the section
it shows the equation (rendered by MathJax), the reference function's source, a link to the engine
function that training runs (its API entry, with its source a click away), the tests that hold the two
together (each linked to its source on the tests page, with the command that runs exactly them), and the
deviations (erratum, readings with their flags as code, FLOP counts). The pages are written into
docs/paper/ (not committed) before Sphinx reads the sources, so the registry is the only copy.
"""
import ast
import inspect
import re
import textwrap
from pathlib import Path


def slug(section):
    """'4.1' -> 'sec-4-1'; 'Algorithm 1' -> 'algorithm-1'; 'Sainath et al. 2013' -> 'sainath'."""
    s = str(section).lower()
    if s.startswith("sainath"):
        return "sainath"
    if re.match(r"^\d", s):
        s = "sec-" + s
    return re.sub(r"[^a-z0-9]+", "-", s).strip("-")


def _test_label(nodeid):
    return "test-" + re.sub(r"[^a-z0-9]+", "-", nodeid.split("[")[0].lower()).strip("-")


def _source(path, resolve):
    try:
        return textwrap.dedent(inspect.getsource(resolve(path)))
    except (TypeError, OSError):
        return None


def _short(path):
    parts = path.split(".")
    return ".".join(parts[-2:]) if parts[-2][:1].isupper() else parts[-1]


FLAG = re.compile(r"(?<![\w`-])(--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)")


def flags_as_code(text):
    """'--fuse-ratio lstsq' -> '`--fuse-ratio` lstsq' outside code spans: literal, so that no typographer makes
    the two hyphens an en dash."""
    parts = text.split("`")
    return "`".join(FLAG.sub(r"`\1`", p) if i % 2 == 0 else p for i, p in enumerate(parts))


SEPARATOR = re.compile(r"([,;])\s*\\q{1,2}uad\s*|\s*\\qquad\s*")
WIDTH = 110  # characters of TeX per displayed line, about the text column's width at 1280 px


def display_math(latex):
    """A long display equation broken into lines (``gathered``) at its top-level ``, \\quad`` and ``\\qquad``
    separators, packed up to WIDTH characters of TeX a line; a short one as it is. (What still does not
    fit scrolls inside its own box: docs/_static/numpy_dlra.css.)"""
    latex = latex.strip()
    if len(latex) <= WIDTH:
        return latex
    parts, depth, start, i = [], 0, 0, 0
    while i < len(latex):
        if latex[i] == "\\" and latex[i + 1:i + 2] in ("{", "}"):
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(latex[i], 0)
        m = SEPARATOR.match(latex, i) if depth == 0 else None
        if m:
            parts.append(latex[start:i] + (m.group(1) or ""))
            start = i = m.end()
            continue
        i += 1
    parts.append(latex[start:])
    lines = []
    for part in (p.strip() for p in parts if p.strip()):
        if lines and len(lines[-1]) + len(part) + 7 <= WIDTH:
            lines[-1] += r" \quad " + part
        else:
            lines.append(part)
    if len(lines) == 1:
        return latex
    return "\\begin{gathered}\n" + " \\\\\n".join(lines) + "\n\\end{gathered}"


def _bash(command):
    return ["```bash", command, "```", ""]


def section_page(key, title, entries, resolve, pm=None):
    lines = [f"# {title}", ""]
    if pm is not None:
        tutorials = pm.TUTORIALS.get(key, ())
        if tutorials:
            lines += ["**Tutorials**: " + ", ".join(f"{{doc}}`/docs/tutorials/{t}`" for t in tutorials), ""]
        names = pm.section_markers(key)
        also = " ".join(f"`-m {m}`" for m in names[1:])
        lines += [f"**The tests of this section**, every one named below{f' ({also} is the same)' if also else ''}:", ""]
        lines += _bash(f"pytest -m {names[0]}")
    for e in entries:
        lines += [f"## {e.label}: {e.title}" if e.label else f"## {e.title}", ""]
        if e.latex:
            lines += ["```{math}", display_math(e.latex), "```", ""]
        for path in e.reference:
            src = _source(path, resolve)
            lines += [f"**Reference**: {{py:obj}}`{_short(path)} <{path}>`", ""]
            if src:
                lines += ["```python", src.rstrip(), "```", ""]
        if e.engine:
            lines += ["**Training runs**: " + ", ".join(f"{{py:obj}}`{_short(p)} <{p}>`" for p in e.engine), ""]
        if e.tests:
            lines += ["**Tests**: " + ", ".join(f"{{ref}}`{t.split('::')[-1]} <{_test_label(t)}>`" for t in e.tests), ""]
            command = pm.pytest_command(e) if pm is not None else ""
            if command and command != f"pytest -m {pm.section_markers(key)[0]}":
                lines += _bash(command)
        if e.notes:
            lines += ["```{note}", flags_as_code(e.notes.strip()), "```", ""]
    return "\n".join(lines)


def tests_page(entries, root):
    """Every test the registry names, its source included from tests/, under a label the section pages link to."""
    lines = ["# The tests behind the map", "",
             "Each test below is named on a section page; its source is shown as it stands in `tests/`.", ""]
    seen = set()
    for nodeid in sorted({t for e in entries for t in e.tests}):
        file, _, name = nodeid.partition("::")
        name = name.split("[")[0]
        label = _test_label(nodeid)
        if label in seen:
            continue
        seen.add(label)
        path = root / file
        kind = "pyobject"
        if name not in {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}:
            kind = None
        lines += [f"({label})=", f"## `{file}::{name}`", ""]
        if kind:
            lines += [f"```{{literalinclude}} ../../{file}", f":pyobject: {name}", ":language: python", "```", ""]
    return "\n".join(lines)


def generate(app):
    from numpy_dlra import paper_map as pm

    root = Path(app.srcdir)
    out = root / "docs" / "paper"
    out.mkdir(exist_ok=True)
    sections = [(s if isinstance(s, tuple) else (s.key, s.title)) if not isinstance(s, str) else (s, s)
                for s in pm.SECTIONS]
    pages = []
    for key, title in sections:
        entries = [e for e in pm.ENTRIES if e.section == key]
        if not entries:
            continue
        name = slug(key)
        _write(out / f"{name}.md", section_page(key, title, entries, pm.resolve, pm))
        pages.append(name)
    _write(out / "tests.md", tests_page(pm.ENTRIES, root))
    index = ["# The paper, section by section", "",
             "One page per section of the paper, generated from `numpy_dlra.paper_map`, the one map from an "
             "equation to its reference function, the function training runs, and the tests.", "",
             "The tests carry pytest markers from the same map: each page gives the `pytest -m` line that runs "
             "its section's tests, and each equation's (`pytest -m eq13`, `-m fn`, `-m alg1`, ...); "
             "`pytest --markers` lists them all.", "",
             "```{toctree}", ":maxdepth: 1", ""] + pages + ["tests", "```", ""]
    _write(out / "index.md", "\n".join(index))


def _write(path, text):
    if not path.is_file() or path.read_text() != text:  # unchanged pages keep their mtime: no needless rebuild
        path.write_text(text)


def setup(app):
    app.connect("builder-inited", generate)
    return {"version": "1", "parallel_read_safe": True}
