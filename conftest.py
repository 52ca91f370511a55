"""pytest set-up shared by the unit tests and the notebook checks (nbval collects notebooks/).

nbval executes every cell of each notebook once, in fast mode. This file also adds one item after
the last cell of each notebook, `<notebook>.ipynb::records`, which reads the headline numbers
(`course_utils.notebook.record`) from the outputs nbval received in that same execution, so no
second execution is needed to check them. That item also keeps the notebook as executed (the
`executed_notebooks` fixture), and the site's tests run last and build the course site from those
copies: the series is executed once per session, for the cells, the records and the site alike.
"""

import copy
import os
import re
from pathlib import Path

import pytest

# `notebook.record("name", ...)` with a literal name, in a notebook's code.
RECORD_CALL = re.compile(r"""\brecord\(\s*["']([^"']+)["']""")

# Notebooks run in fast mode under test, without progress bars; set before any kernel starts,
# which inherits the environment.
os.environ.setdefault("COURSE_FAST", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


def pytest_collectstart(collector):
    # nbval compares only the cells tagged nbval-check-output; within them, ignore outputs that
    # legitimately vary (warnings on stderr, rich HTML and images).
    if getattr(collector, "path", None) is not None and collector.path.suffix == ".ipynb" \
            and hasattr(collector, "skip_compare"):
        collector.skip_compare += ("stderr", "text/html", "application/javascript",
                                   "image/svg+xml", "application/pdf")


# name -> {"notebook": the notebook with nbval's outputs, "seconds": its cells' wall time}
EXECUTED = pytest.StashKey[dict]()
SECONDS = pytest.StashKey[dict]()
SITE_TESTS = "test_site.py"        # run after every notebook, from their executed copies


def pytest_configure(config):
    config.stash[EXECUTED] = {}
    config.stash[SECONDS] = {}


def pytest_runtest_makereport(item, call):
    if call.when == "call" and Path(str(item.path)).suffix == ".ipynb":
        seconds = item.config.stash[SECONDS]
        seconds[item.path.stem] = seconds.get(item.path.stem, 0.0) + call.duration


@pytest.fixture(scope="session")
def executed_notebooks(request) -> dict:
    """The notebooks that nbval executed whole in this session (fast mode), by name: each as
    {"notebook": with the outputs of that execution, "seconds": the wall time of its cells}."""
    return request.config.stash[EXECUTED]


def _is_nbval_cell(item) -> bool:
    return type(item).__name__ == "IPyNbCell" and item.path.suffix == ".ipynb"


class RecordsItem(pytest.Item):
    """The headline numbers a notebook recorded, read from the outputs of nbval's execution.
    `IPyNbCell.test_outputs` (nbval 0.11) holds what the kernel sent for each cell."""

    def __init__(self, *, cells, **kwargs):
        super().__init__(**kwargs)
        self.cells = cells

    def runtest(self):
        from course_utils.notebook import read_records

        unrun = [c.name for c in self.cells if getattr(c, "test_outputs", None) is None]
        if unrun:
            pytest.skip(f"not every cell ran in this session ({', '.join(unrun[:3])}, ...)")
        self.keep_executed()
        records = read_records({"cells": [{"outputs": c.test_outputs} for c in self.cells]})
        assert records, (f"{self.path.name} recorded no headline numbers: call "
                         "notebook.record(name, value) for the results `make run` shows")
        named = {name for c in self.cells for name in RECORD_CALL.findall(c.cell.source)}
        missing = named - set(records)
        assert not missing, f"{self.path.name}: recorded in the code but not in the run: {missing}"

    def keep_executed(self):
        import nbformat

        notebook = copy.deepcopy(self.parent.nb)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        for cell, item in zip(code, self.cells):
            cell.outputs = [nbformat.from_dict(dict(o)) for o in item.test_outputs]
            cell.execution_count = None
        self.config.stash[EXECUTED][self.path.stem] = {
            "notebook": notebook, "seconds": self.config.stash[SECONDS].get(self.path.stem)}

    def reportinfo(self):
        return self.path, None, f"{self.path.name}::records"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """Put a RecordsItem right after the last nbval cell of each notebook, while its kernel is
    still up: it runs in the same module scope, after every cell has given its outputs."""
    last = {}
    for index, item in enumerate(items):
        if _is_nbval_cell(item):
            last[item.parent] = index
    for notebook, index in sorted(last.items(), key=lambda kv: -kv[1]):
        cells = [i for i in items if _is_nbval_cell(i) and i.parent is notebook]
        code_cells = [c for c in getattr(notebook, "nb", {"cells": []})["cells"]
                      if c["cell_type"] == "code"]
        if len(cells) == len(code_cells):    # only a whole notebook's run is read for records
            items.insert(index + 1, RecordsItem.from_parent(notebook, name="records",
                                                            cells=cells))
    if last:      # the site's tests after the notebooks, to build from their executed copies
        site = [item for item in items if item.path.name == SITE_TESTS]
        items[:] = [item for item in items if item.path.name != SITE_TESTS] + site
