"""Regenerate each notebooks/NN_topic.ipynb from its .py twin (the source of truth).

    python scripts/sync_notebooks.py [NN ...]

The .ipynb gets the .py's cells, executed once in fast mode; only the outputs of cells tagged
nbval-check-output are kept (with their execution counts, which nbval needs), so the committed
notebook opens clean in Colab and still carries the reference outputs nbval compares.
"""

import os
import sys
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KEEP = "nbval-check-output"


# nbclient mimics a frontend for Output widgets (the explorers' drawing areas) and can then miss a
# cell's reply until the cell times out; without the mimic every cell runs the same.
NotebookClient.on_comm_open_jupyter_widget = lambda self, msg: None


def sync(source: Path) -> None:
    notebook = jupytext.read(source)
    os.environ["COURSE_FAST"] = "1"
    os.environ.setdefault("TQDM_DISABLE", "1")
    NotebookClient(notebook, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if KEEP not in cell.metadata.get("tags", []):
            cell.outputs, cell.execution_count = [], None
    notebook.metadata.pop("widgets", None)
    nbformat.validate(notebook)
    jupytext.write(notebook, source.with_suffix(".ipynb"))
    print(f"wrote {source.with_suffix('.ipynb').name}")


if __name__ == "__main__":
    wanted = sys.argv[1:]
    for path in sorted(NOTEBOOKS.glob("[0-9]*.py")):
        if not wanted or any(path.stem.startswith(w) for w in wanted):
            sync(path)
