"""pytest set-up shared by the unit tests and the notebook checks (nbval collects notebooks/).

nbval executes every cell of each notebook once, in fast mode. This file also adds one item after
the last cell of each notebook, `<notebook>.ipynb::records`, which reads the headline numbers
(`course_utils.notebook.record`) from the outputs nbval received in that same execution, so no
second execution is needed to check them.
"""

import os
import re

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
        records = read_records({"cells": [{"outputs": c.test_outputs} for c in self.cells]})
        assert records, (f"{self.path.name} recorded no headline numbers: call "
                         "notebook.record(name, value) for the results `make run` shows")
        named = {name for c in self.cells for name in RECORD_CALL.findall(c.cell.source)}
        missing = named - set(records)
        assert not missing, f"{self.path.name}: recorded in the code but not in the run: {missing}"

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
