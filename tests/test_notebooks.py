"""Notebooks as tested artifacts: pairs in sync, a fast papermill run each, the shared skeleton.

nbval (the comparison of cells tagged nbval-check-output) runs on notebooks/*.ipynb in the same
pytest session: see `addopts` and `testpaths` in pyproject.toml.
"""

from pathlib import Path

import jupytext
import papermill
import pytest

from course_utils.notebook import read_records

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9]*.py"))
# Explicit fast parameters; each notebook receives those its parameters cell declares.
FAST_PARAMETERS = {"EPOCHS": 3, "SEED": 0}


def cells(notebook):
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ())))
            for c in notebook.cells]


def test_series_exists():
    assert [p.stem[:2] for p in SOURCES] == [f"{i:02d}" for i in range(1, len(SOURCES) + 1)]
    assert SOURCES, "no notebooks found"


def test_every_notebook_is_paired():
    assert {p.stem for p in NOTEBOOKS.glob("*.ipynb")} == {p.stem for p in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_holds_the_same_cells(source):
    assert cells(jupytext.read(source)) == cells(jupytext.read(source.with_suffix(".ipynb"))), (
        f"{source.name} and its .ipynb differ: edit the .py, then run `make sync`")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_keeps_only_tagged_outputs(source):
    notebook = jupytext.read(source.with_suffix(".ipynb"))
    for cell in notebook.cells:
        if cell.cell_type == "code" and "nbval-check-output" not in cell.metadata.get("tags", []):
            assert not cell.outputs and cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_skeleton(source):
    notebook = jupytext.read(source)
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    assert notebook.cells[0].source.startswith("# ")
    assert "colab.research.google.com/github/" in notebook.cells[0].source
    assert f"notebooks/{source.stem}.ipynb" in notebook.cells[0].source
    for heading in ("## Setup", "## Summary", "## Exercises", "## References"):
        assert heading in markdown, heading
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "COURSE_FAST" in tagged[0].source
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert "%pip" not in code, "install with subprocess so the .py stays valid Python"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_runs_in_fast_mode(source, tmp_path):
    notebook = jupytext.read(source)
    declared = set(papermill.inspect_notebook(notebook))
    parameters = {k: v for k, v in FAST_PARAMETERS.items() if k in declared}
    executed = papermill.execute_notebook(
        notebook, str(tmp_path / source.with_suffix(".ipynb").name), parameters=parameters,
        kernel_name="python3", language="python", cwd=str(NOTEBOOKS), progress_bar=False,
        execution_timeout=600)
    records = read_records(executed)
    assert records, "the notebook recorded no headline numbers"
    assert all(c.get("outputs") is not None for c in executed.cells if c.cell_type == "code")
