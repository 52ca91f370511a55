"""Notebooks as tested artifacts: pairs in sync, the shared skeleton, and two executions that
test different things, so that each notebook is executed in full only once per `make test`:

- nbval (pyproject.toml: `testpaths`, `--nbval-lax`) runs every cell of each committed `.ipynb`
  as a learner would in Jupyter or Colab, in fast mode (COURSE_FAST=1, set by the root
  conftest.py), and compares the cells tagged nbval-check-output. The root conftest.py adds one
  item per notebook, `<notebook>.ipynb::records`, that reads the headline numbers
  (`notebook.record(...)`) from the outputs of that same execution.
- papermill runs the `make run` path: the `.py` source, papermill's parameter injection and the
  full-mode parameters (COURSE_FAST unset in the kernel), but only as far as the cell that builds
  the data loaders, which proves the full-mode sizes fit the data.
"""

import ast
import re
from pathlib import Path

import jupytext
import nbclient
import nbformat
import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9]*.py"))
# papermill injects these (the notebooks' own defaults) after the parameters cell, as `make run`
# would inject any parameter a user passes; each notebook receives those it declares.
INJECTED = {"SEED": 0}
# The full-mode run stops after the first code cell that contains this: the data loaders.
LOADERS_CELL = "TensorLoader("
# Appended to the truncated notebook: full mode really was on, and the loaders exist.
FULL_MODE_PROBE = """\
import os as _os
from course_utils import data as _data
assert _os.environ.get("COURSE_FAST") != "1", "the full-mode run must not see COURSE_FAST=1"
assert globals().get("FAST", False) is False, "FAST should be False in full mode"
_loaders = {_k: len(_v) for _k, _v in globals().items() if isinstance(_v, _data.TensorLoader)}
assert _loaders and all(_loaders.values()), f"empty or missing data loaders: {_loaders}"
print("full-mode loaders (batches):", _loaders)
"""
# Prepended for the variant that sees only the subset bundled with course_utils.
BUNDLED_ONLY = """\
from course_utils import data as _data
_load_fashion_mnist = _data.load_fashion_mnist
_data.load_fashion_mnist = lambda *a, **k: _load_fashion_mnist(*a, **{**k, "source": "bundled"})
"""
# A lesson fits one class period: its .py source stays within this many lines (DESIGN.md).
LESSON_LINES = 800
# Notebooks not yet cut down to a lesson, each with the issue that does it: a strict xfail, so
# the change that makes one fit must remove it from here.
NOT_YET_LESSONS: dict[str, str] = {}
# Cell markers that would make nbval skip a cell, or expect it to fail: every cell must run.
NOT_RUN_MARKERS = ("nbval-skip", "skip-execution", "nbval-raises-exception", "raises-exception")


def cells(notebook):
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ())))
            for c in notebook.cells]


def code_cells(notebook):
    return [c for c in notebook.cells if c.cell_type == "code"]


# Lessons of the plan (DESIGN.md) not written yet, each with the work that writes it: their
# numbers may be missing from the series, and no others (remove an entry once it lands).
NOT_YET_WRITTEN: dict[str, str] = {}


def test_series_exists():
    assert SOURCES, "no notebooks found"
    numbers = [p.stem[:2] for p in SOURCES]
    assert len(set(numbers)) == len(numbers), f"two notebooks share a number: {numbers}"
    expected = [f"{i:02d}" for i in range(1, int(max(numbers)) + 1)]
    missing = [n for n in expected if n not in numbers]
    assert set(missing) <= set(NOT_YET_WRITTEN), (
        f"notebooks {missing} are missing from the series {numbers}, and only "
        f"{sorted(NOT_YET_WRITTEN)} are planned but not yet written")


def test_every_notebook_is_paired():
    assert {p.stem for p in NOTEBOOKS.glob("*.ipynb")} == {p.stem for p in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_holds_the_same_cells(source):
    assert cells(jupytext.read(source)) == cells(jupytext.read(source.with_suffix(".ipynb"))), (
        f"{source.name} and its .ipynb differ: edit the .py, then run `make sync`")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_keeps_only_tagged_outputs(source):
    notebook = jupytext.read(source.with_suffix(".ipynb"))
    for cell in code_cells(notebook):
        if "nbval-check-output" not in cell.metadata.get("tags", []):
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
    code = "\n".join(c.source for c in code_cells(notebook))
    assert "%pip" not in code, "install with subprocess so the .py stays valid Python"


def lesson_case(source):
    marks = ()
    if source.stem in NOT_YET_LESSONS:
        marks = pytest.mark.xfail(strict=True, reason=NOT_YET_LESSONS[source.stem])
    return pytest.param(source, id=source.stem, marks=marks)


@pytest.mark.parametrize("source", [lesson_case(s) for s in SOURCES])
def test_a_lesson_fits_one_class_period(source):
    lines = len(source.read_text().splitlines())
    assert lines <= LESSON_LINES, f"{source.name} has {lines} lines, a lesson at most {LESSON_LINES}"
    markdown = "\n".join(c.source for c in jupytext.read(source).cells if c.cell_type == "markdown")
    assert "What you will learn" in markdown


def recorded_names(notebook) -> set:
    """The names passed as literals to `notebook.record(...)` in the code cells."""
    names = set()
    for cell in code_cells(notebook):
        source = "\n".join(line for line in cell.source.splitlines()
                           if not line.lstrip().startswith(("%", "!")))   # magics aren't Python
        for node in ast.walk(ast.parse(source)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "record" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                names.add(node.args[0].value)
    return names


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_cell_runs_under_nbval(source):
    """nbval is the one full execution: no cell may be skipped or allowed to fail, and the
    headline numbers it reads back (conftest.py) must be there to read."""
    notebook = jupytext.read(source.with_suffix(".ipynb"))
    for cell in code_cells(notebook):
        tags = set(cell.metadata.get("tags", ()))
        comments = {m.lower().replace("_", "-")
                    for m in re.findall(r"#\s*(NBVAL_\w+)", cell.source)}
        assert not (tags | comments) & set(NOT_RUN_MARKERS), (
            f"{source.stem}: a cell is not run (or may fail) under nbval: {cell.source[:60]!r}")
    assert recorded_names(notebook), (
        f"{source.stem} calls notebook.record(\"name\", value) nowhere: record its headline "
        "numbers, `make run` shows them and the records check reads them")


def full_mode_notebook(source: Path, *, bundled_only: bool = False):
    """The `.py` source up to and including the cell that builds the data loaders, then a probe."""
    notebook = jupytext.read(source)
    cut = next((i for i, c in enumerate(notebook.cells)
                if c.cell_type == "code" and LOADERS_CELL in c.source), None)
    assert cut is not None, f"{source.name} has no cell that calls {LOADERS_CELL}...)"
    parameters = [i for i, c in enumerate(notebook.cells)
                  if "parameters" in c.metadata.get("tags", [])]
    assert parameters and parameters[0] < cut, "the parameters cell must come before the loaders"
    notebook.cells = notebook.cells[:cut + 1] + [nbformat.v4.new_code_cell(FULL_MODE_PROBE)]
    if bundled_only:
        notebook.cells.insert(0, nbformat.v4.new_code_cell(BUNDLED_ONLY))
    return notebook


def run_full_mode(source: Path, tmp_path: Path, monkeypatch, *, bundled_only: bool = False):
    notebook = full_mode_notebook(source, bundled_only=bundled_only)
    declared = set(papermill.inspect_notebook(notebook))
    parameters = {k: v for k, v in INJECTED.items() if k in declared}
    assert parameters, f"{source.name} declares none of {sorted(INJECTED)}"
    # The kernel inherits this process's environment: full mode, as `make run` has it.
    monkeypatch.delenv("COURSE_FAST", raising=False)
    # nbclient mimics a frontend for Output widgets (an explorer's drawing area) by sending
    # comm messages on the shell channel while it awaits the cell's execute_reply there; with
    # pyzmq's edge-triggered asyncio polling that reply is then often missed until the cell's
    # timeout expires (a whole `execution_timeout` per explorer cell). Without the mimic every
    # cell still runs; only the Output widgets' state is not copied into the executed notebook.
    monkeypatch.setattr(nbclient.NotebookClient, "on_comm_open_jupyter_widget",
                        lambda self, msg: None)
    executed = papermill.execute_notebook(
        notebook, str(tmp_path / source.with_suffix(".ipynb").name), parameters=parameters,
        kernel_name="python3", language="python", cwd=str(NOTEBOOKS), progress_bar=False,
        execution_timeout=300)
    tags = [c.metadata.get("tags", []) for c in executed.cells]
    injected = [i for i, t in enumerate(tags) if "injected-parameters" in t]
    assert len(injected) == 1 and "parameters" in tags[injected[0] - 1], (
        "papermill did not inject the parameters right after the parameters cell")
    output = "".join(o.get("text", "") for o in executed.cells[-1].get("outputs", []))
    assert "full-mode loaders" in output
    return executed


@pytest.mark.timeout(600)
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_full_mode_parameters_fit_the_data(source, tmp_path, monkeypatch):
    """`make run`: full-mode parameters on whatever data `source="auto"` finds (CI installs
    Debian's full Fashion-MNIST)."""
    run_full_mode(source, tmp_path, monkeypatch)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_full_mode_parameters_fit_the_bundled_subset(source, tmp_path, monkeypatch):
    """`make run` offline, where only the 5,000 bundled training images are found."""
    run_full_mode(source, tmp_path, monkeypatch, bundled_only=True)
