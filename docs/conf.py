"""Sphinx configuration of the numpy_dlra documentation site: `bash .ci/docs` builds it into docs/_build/html.

The source folder is the repository itself (``sphinx-build -c docs . docs/_build/html``), so the README,
docs/, benchmarks/ and results/ pages link to each other on the site exactly as they do in a checkout.

Pages are Markdown (MyST); the tutorials are a sphinx-gallery gallery (run at build time, with their
printed output and figures); the paper's sections are generated from numpy_dlra.paper_map (docs/_ext);
math is rendered by a MathJax 3 copy served from the site itself (no CDN: .ci/docs puts it in
docs/_build/mathjax). The site loads nothing from elsewhere (.ci/check_site.py fails on any remote
script, stylesheet or image), and its home page is index.html at the root (docs/_ext/site_pages.py).
"""
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent / "_ext"))
templates_path = []

project = "numpy_dlra"
author = "the numpy_dlra developers"
copyright = "2026, the numpy_dlra developers (MIT)"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
    "paper_pages",
    "site_pages",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "docs/index"
exclude_patterns = [".venv", ".cache", ".git", ".hypothesis", ".pytest_cache", "build", "runs", "docs/_build",
                    "**/*.egg-info", "tests", "data_scripts", "numpy_dlra", "tutorials/*.py", "tutorials/GALLERY_HEADER.*",
                    "results/*/**", "LICENSE", ".ci", "shared", "tutorial*_run", "tutorial*_figures",
                    "sg_execution_times.rst", "docs/tutorials/sg_execution_times.rst"]  # left by older builds
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
# Quotes and ellipses only: no dashes, so a flag's "--" is never an en dash, even outside code
smartquotes_action = "qe"
# A literal block without a language (printed output, the docstrings' formula blocks) is plain text;
# code says it is Python (```python, .. code-block:: python, and the gallery's code cells)
highlight_language = "none"

# MathJax from the built site, never from a CDN (.ci/docs installs npm's mathjax@3 into _build/mathjax)
MATHJAX = Path(os.environ.get("NUMPY_DLRA_MATHJAX", Path(__file__).parent / "_build" / "mathjax"))
html_static_path = ["_static"] + ([str(MATHJAX)] if MATHJAX.is_dir() else [])
html_css_files = ["numpy_dlra.css"]  # long code lines wrap, wide math scrolls in its own box
mathjax_path = "es5/tex-mml-chtml.js"

autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "none"


def _escape(line):
    """One line of plain text, safe in reST: no substitutions (|x|), emphasis (*), roles (`) or targets (x_)."""
    for ch in "\\|*`":
        line = line.replace(ch, "\\" + ch)
    return re.sub(r"(\w)_(?=\W|$)", r"\1\\_", line)


def _plain_docstring(app, what, name, obj, options, lines):
    """The package's docstrings are plain text (formulas such as |w_k| sqrt(2 (1 - |cos|)), aligned blocks, shape
    lists), written to be read beside the code, not reST: the first paragraph (the equation and what it
    computes) is shown as text, the rest as written, in a literal block."""
    if not lines:
        return
    cut = lines.index("") if "" in lines else len(lines)
    head, rest = [_escape(ln) for ln in lines[:cut]], lines[cut:]
    while rest and not rest[0].strip():
        rest = rest[1:]
    lines[:] = head + (["", "::", ""] + ["    " + ln for ln in rest] + [""] if rest else [])


def setup(app):
    app.connect("autodoc-process-docstring", _plain_docstring)

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "tutorials"),
    "gallery_dirs": "docs/tutorials",
    "filename_pattern": r"/\d\d_",  # run every tutorial, so the page shows its output and figures
    "ignore_pattern": r"README|__init__",
    "download_all_examples": True,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "capture_repr": (),
    "write_computation_times": False,  # its page loads jQuery and DataTables from CDNs; each page has its time
}

html_theme = "alabaster"
html_title = "numpy_dlra"
html_theme_options = {"description": "DLRA (Lee et al. 2021) in NumPy, beside the paper", "fixed_sidebar": True,
                      "page_width": "1240px", "body_max_width": "none"}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}
