"""The book builds (executing every notebook in the smoke budget) into a site that needs no network."""
import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections", []))
            walk(e.get("chapters", []))

    for part in toc.get("parts", []):
        walk(part["chapters"])
    return files


def test_every_toc_entry_exists():
    for f in toc_files():
        assert (ROOT / f"{f}.ipynb").exists() or (ROOT / f"{f}.md").exists(), f"_toc.yml lists {f}, which is missing"


def test_notebooks_are_stored_without_outputs():
    for nb in ROOT.glob("book/**/*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        for cell in cells:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, f"{nb} is stored with outputs"


def test_notebooks_never_hard_code_step_counts():
    """Training lengths come from the budget (srlib.get_budget().steps/pick), never a literal."""
    for nb in ROOT.glob("book/**/*.ipynb"):
        source = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
        assert not re.search(r"\bsteps\s*=\s*\d+", source), f"{nb}: a hard-coded 'steps=<number>'"


def test_smoke_build_produces_every_page(smoke_site):
    for f in toc_files():
        assert (smoke_site / f"{f}.html").is_file(), f"no page for {f}"


def test_site_loads_nothing_from_the_network(smoke_site):
    remote = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", re.I)
    for page in smoke_site.rglob("*.html"):
        match = remote.search(page.read_text(errors="replace"))
        assert match is None, f"{page.relative_to(smoke_site)} loads a remote resource: {match.group(0)[:120]}"
    assert (smoke_site / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax is not self-hosted"
    assert (smoke_site / "vendor" / "require.js").is_file(), "widget JavaScript is not self-hosted"
    assert (smoke_site / "vendor" / "html-manager" / "embed-amd.js").is_file()
