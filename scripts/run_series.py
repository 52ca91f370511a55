"""Execute the whole series into build/: executed notebooks, HTML pages, an index and a summary.

    python scripts/run_series.py            # full parameters (what `make run` does)
    python scripts/run_series.py --fast     # small defaults, as in the tests (`make run FAST=1`)
    python scripts/run_series.py 02 03      # only the notebooks whose names start so
"""

import argparse
import html
import json
import os
import time
from pathlib import Path

import jupytext
import nbclient
import nbformat
import papermill
from nbconvert import HTMLExporter

from course_utils.notebook import read_records

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def title_of(notebook) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            return cell.source.splitlines()[0][2:].strip()
    return "untitled"


def run(source: Path, build: Path) -> dict:
    notebook = jupytext.read(source)
    output = build / f"{source.stem}.ipynb"
    start = time.perf_counter()
    # nbclient mimics a frontend for Output widgets (the explorers' drawing areas) by sending comm
    # messages while it awaits a cell's reply on the same channel, and then sometimes misses the
    # reply until the cell times out. Without the mimic every cell still runs the same.
    nbclient.NotebookClient.on_comm_open_jupyter_widget = lambda self, msg: None
    executed = papermill.execute_notebook(
        notebook, str(output), kernel_name="python3", language="python", cwd=str(NOTEBOOKS),
        progress_bar=False, execution_timeout=3600)
    seconds = time.perf_counter() - start
    body, _ = HTMLExporter().from_notebook_node(nbformat.from_dict(executed))
    (build / f"{source.stem}.html").write_text(body)
    return {"name": source.stem, "title": title_of(notebook), "seconds": round(seconds, 1),
            "records": read_records(executed)}


def index_page(results: list[dict], fast: bool) -> str:
    rows = "\n".join(
        f"<tr><td><a href='{r['name']}.html'>{html.escape(r['title'])}</a></td>"
        f"<td>{r['seconds']:.0f} s</td><td><pre>{html.escape(json.dumps(r['records'], indent=1))}"
        "</pre></td></tr>" for r in results)
    mode = "fast mode (COURSE_FAST=1)" if fast else "full parameters"
    return (f"<!doctype html><meta charset='utf-8'><title>The series, executed</title>"
            f"<h1>The series, executed</h1><p>{mode}, {time.strftime('%Y-%m-%d %H:%M')}</p>"
            "<table border='1' cellpadding='4'><tr><th>notebook</th><th>wall time</th>"
            f"<th>headline numbers</th></tr>\n{rows}\n</table>")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="prefixes of the notebooks to run")
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--build", type=Path, default=ROOT / "build")
    args = parser.parse_args()
    if args.fast:
        os.environ["COURSE_FAST"] = "1"      # the kernels inherit it
    args.build.mkdir(parents=True, exist_ok=True)
    sources = [p for p in sorted(NOTEBOOKS.glob("[0-9]*.py"))
               if not args.only or any(p.stem.startswith(o) for o in args.only)]
    results = []
    for source in sources:
        print(f"running {source.name} ...", flush=True)
        results.append(run(source, args.build))
        print(f"  {results[-1]['seconds']:.0f} s  {json.dumps(results[-1]['records'])}", flush=True)
    (args.build / "index.html").write_text(index_page(results, args.fast))
    (args.build / "summary.json").write_text(json.dumps(results, indent=2))
    print(f"Wrote {args.build / 'index.html'} and summary.json")


if __name__ == "__main__":
    main()
