"""The README is a map: short, and every link in it and in docs/ leads to a file of this repository."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")
PAGES = [ROOT / "README.md", ROOT / "results" / "README.md", ROOT / "tutorials" / "README.md",
         ROOT / "benchmarks" / "README.md"] + sorted((ROOT / "docs").glob("*.md"))


def test_the_readme_is_a_map_of_at_most_150_lines():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    for heading in ("## Read it in this order", "## Install, and the quick start", "## Tests"):
        assert heading in text
    assert "bash .ci/run" in text and "numpy-dlra reproduce table1" in text


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_names_a_file_here(page):
    """Links to generated site pages (docs/index.md's paper/ and tutorials/ pages) are the site's own."""
    generated = ("paper/", "tutorials/") if page == ROOT / "docs" / "index.md" else ()
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#") or target.startswith(generated):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists() or path.with_suffix(".md").exists(), f"{page.name}: {target}"


def test_the_api_page_documents_every_module_of_the_package():
    """docs/api.md lists each module of numpy_dlra's five parts (a new module must be added there too)."""
    text = (ROOT / "docs" / "api.md").read_text()
    listed = set(re.findall(r"automodule:: (numpy_dlra\.[\w.]+)", text))
    for part in ("dlra", "nn", "models", "data", "experiments"):
        for f in sorted((ROOT / "numpy_dlra" / part).glob("*.py")):
            if f.stem != "__init__":
                assert f"numpy_dlra.{part}.{f.stem}" in listed, f"docs/api.md: no automodule for numpy_dlra.{part}.{f.stem}"
