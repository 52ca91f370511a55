"""Colab readiness: every badge and bootstrap cell points at the one repository URL."""

import re
from pathlib import Path

import jupytext
import pytest

from scripts.set_repo_url import BADGE, INSTALL, repository, rewrite

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))


def test_everything_already_points_at_the_repository():
    slug, branch = repository()
    for path in [ROOT / "README.md", *NOTEBOOKS, *(p.with_suffix(".ipynb") for p in NOTEBOOKS)]:
        text = path.read_text()
        assert rewrite(text, slug, branch) == text, f"{path.name}: run `make urls`"


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_badge_opens_this_notebook_and_bootstrap_installs_only_when_missing(source):
    slug, branch = repository()
    notebook = jupytext.read(source)
    badge = (f"https://colab.research.google.com/github/{slug}/blob/{branch}/notebooks/"
             f"{source.stem}.ipynb")
    assert badge in notebook.cells[0].source
    bootstrap = next(c.source for c in notebook.cells if INSTALL.search(c.source))
    assert "except ImportError" in bootstrap and "sys.executable" in bootstrap
    assert "torch" not in bootstrap.split("except ImportError")[1], "never reinstall torch"


def test_readme_has_a_badge_for_every_notebook():
    readme = (ROOT / "README.md").read_text()
    linked = {m.group(1) for m in re.finditer(BADGE.pattern + r"([\w]+)\.ipynb", readme)}
    assert linked == {p.stem for p in NOTEBOOKS}


def test_rewrite_changes_every_url():
    text = ("[b](https://colab.research.google.com/github/old/repo/blob/dev/notebooks/01_x.ipynb)"
            ' "git+https://github.com/old/repo"')
    assert rewrite(text, "new/place", "main") == (
        "[b](https://colab.research.google.com/github/new/place/blob/main/notebooks/01_x.ipynb)"
        ' "git+https://github.com/new/place"')
