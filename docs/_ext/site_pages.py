"""Sphinx extension: the tutorials' pages and the site's home page, as a reader should get them.

- A tutorial's docstring ends with its whole expected output (tests/test_tutorials.py compares a run
  with it). The gallery page and the notebook show that output under each cell already, so on both
  the block is replaced by one sentence (the .py download keeps it).
- Each tutorial's page links to the page of the paper's section(s) it runs (numpy_dlra.paper_map's
  TUTORIALS; the section pages link back, docs/_ext/paper_pages.py).
- The home page is index.html at the site's root: a copy of docs/index.html with its relative links
  rewritten for the root (no redirect, which a headless browser's screenshot would wait on forever).
"""
import functools
import posixpath
import re
from pathlib import Path

from paper_pages import slug

EXPECTED = re.compile(r"^Expected output(?: \((?P<when>[^\n]*)\))?::\n(?:[ \t]*\n|[ \t]+\S[^\n]*\n?)*", re.M)
TUTORIAL = re.compile(r"^\d\d_\w+\.py$")


def without_expected_output(docstring):
    """The docstring with its 'Expected output (...)::' block replaced by one sentence."""
    def sentence(m):
        when = f" ({m['when']})" if m["when"] else ""
        return f"What it prints{when} is shown under the cell that prints it.\n"
    return EXPECTED.sub(sentence, docstring, count=1)


def _wrap(split):
    @functools.wraps(split)
    def split_code_and_text_blocks(source_file, return_node=False):
        out = split(source_file, return_node=return_node)
        blocks = out[1]
        if TUTORIAL.match(Path(source_file).name) and blocks and blocks[0].type == "text":
            blocks[0] = blocks[0]._replace(content=without_expected_output(blocks[0].content))
        return out
    split_code_and_text_blocks.numpy_dlra = True
    return split_code_and_text_blocks


def _patch_gallery_parser():
    """sphinx-gallery makes a tutorial's page and its notebook from the blocks this function returns (it
    looks the function up on the module at each call): the first block is the docstring."""
    from sphinx_gallery import py_source_parser

    if not getattr(py_source_parser.split_code_and_text_blocks, "numpy_dlra", False):
        py_source_parser.split_code_and_text_blocks = _wrap(py_source_parser.split_code_and_text_blocks)


def _section_links(app, docname, source):
    """On a tutorial's page, right under its title: the page of each section of the paper it runs."""
    m = re.fullmatch(r"docs/tutorials/(\d\d_\w+)", docname)
    if not m:
        return
    from numpy_dlra import paper_map as pm

    titles = dict(pm.SECTIONS)
    keys = [k for k, names in pm.TUTORIALS.items() if m[1] in names]
    if not keys:
        return
    links = ", ".join(f":doc:`{pm.section_name(k)}: {titles[k]} </docs/paper/{slug(k)}>`" for k in keys)
    text = source[0]
    title = re.search(r"^(?P<t>\S[^\n]*)\n=+\n", text, re.M)  # the gallery page's title and its underline
    if title:
        para = f"\n**The paper, beside the code**: {links}.\n"
        source[0] = text[:title.end()] + para + text[title.end():]


URL_ATTR = re.compile(r'(?P<pre>\b(?:href|src|action|data-content_root)=")(?P<url>[^"]*)"')


def _from_root(url, folder):
    """A URL relative to `folder` (the page's folder) made relative to the site's root: '../_static/x.css' ->
    '_static/x.css', 'paper/sec-4.html#a' -> 'docs/paper/sec-4.html#a', '../' -> './'. Others as they are."""
    if not url or url.startswith(("#", "?", "/")) or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", url):
        return url
    path, rest = re.match(r"([^?#]*)(.*)", url, re.S).groups()
    new = posixpath.normpath(posixpath.join(folder, path))
    if new == ".":
        new = "./"
    elif path.endswith("/"):
        new += "/"
    return new + rest


def root_home_page(app, exception):
    """Write index.html at the site's root: docs/index.html, its relative links made relative to the root."""
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    home = out / (app.config.root_doc + app.builder.out_suffix)
    folder = posixpath.dirname(app.config.root_doc)
    html = home.read_text(encoding="utf-8")
    html = URL_ATTR.sub(lambda m: f'{m["pre"]}{_from_root(m["url"], folder)}"', html)
    (out / "index.html").write_text(html, encoding="utf-8")


def setup(app):
    _patch_gallery_parser()
    app.connect("source-read", _section_links)
    app.connect("build-finished", root_home_page)
    return {"version": "1", "parallel_read_safe": True}
