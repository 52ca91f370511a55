"""Execute the whole series into build/, then build the course site from it (build/site/).

    python scripts/run_series.py            # full parameters (what `make run` does)
    python scripts/run_series.py --fast     # small defaults, as in the tests (`make run FAST=1`)
    python scripts/run_series.py 02 03      # only the notebooks whose names start so

It says which notebook runs, which section of it, and about how long the series has left: from
the last run of each notebook in the same mode on the same kind of device (build/summary.json),
else from the full-run times measured in the README's notebook table, else from the cells done so
far. On a machine without a GPU it says up front what the full series costs there.
"""

import argparse
import datetime
import json
import os
import sys
import threading
import time
from pathlib import Path

import jupytext
import nbclient
import papermill
from papermill.engines import NBClientEngine, papermill_engines

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts.build_site import build_site, measured_times, series, title_of  # noqa: E402

from course_utils import training  # noqa: E402
from course_utils.notebook import read_records  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
QUIET_S = 60          # with no section boundary for this long, a line says the cell still runs


def duration(seconds: float) -> str:
    """An estimate in words: "45 s", "12 min", "1 h 21 min"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """What `make run` prints while a notebook runs: its sections as they start, the cells done,
    the time it has taken and an estimate of what the series has left."""

    def __init__(self, expected: dict[str, float | None]):
        self.expected = expected            # seconds per notebook, None where unknown
        self.lock = threading.Lock()
        self.name, self.cells, self.done = None, [], 0
        self.started = self.last_line = time.monotonic()
        self.sections = []

    def start(self, name: str, notebook) -> None:
        with self.lock:
            self.name, self.cells, self.done = name, notebook.cells, 0
            self.started = self.last_line = time.monotonic()
            self.sections = [(i, line[3:].strip()) for i, c in enumerate(notebook.cells)
                             if c.cell_type == "markdown"
                             for line in c.source.splitlines() if line.startswith("## ")]

    def left(self) -> str:
        """The estimate of the time the series has left, as words."""
        elapsed = time.monotonic() - self.started
        names = list(self.expected)
        later = names[names.index(self.name) + 1:]
        expected = self.expected[self.name]
        code = [c for c in self.cells if c.cell_type == "code"]
        done_code = sum(1 for c in self.cells[:self.done] if c.cell_type == "code")
        if expected is not None:
            current = max(expected - elapsed, 0.0)
        elif done_code:
            current = elapsed * (len(code) - done_code) / done_code
        else:
            return "time left: not known yet"
        unknown = [n for n in later if self.expected[n] is None]
        total = current + sum(self.expected[n] or 0 for n in later)
        text = f"about {duration(total)} left in the series"
        return text + (f" (+ {len(unknown)} notebook(s) never timed)" if unknown else "")

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.last_line = time.monotonic()

    def cell_started(self, index: int) -> None:
        with self.lock:
            self.done = index
            for number, (cell, heading) in enumerate(self.sections, 1):
                if cell != index:
                    continue
                self.say(f"  [{clock(time.monotonic() - self.started)}] section {number}/"
                         f"{len(self.sections)}: {heading} · cell {index + 1}/{len(self.cells)}"
                         f" · {self.left()}")

    def tick(self) -> None:
        with self.lock:
            if self.name and time.monotonic() - self.last_line > QUIET_S:
                self.say(f"  [{clock(time.monotonic() - self.started)}] still on cell "
                         f"{self.done + 1}/{len(self.cells)} · {self.left()}")


PROGRESS: Progress | None = None


class ProgressEngine(NBClientEngine):
    """papermill's nbclient engine, telling PROGRESS when each cell starts."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
        cell_start = nb_man.cell_start

        def started(cell, cell_index=None, **kw):
            if PROGRESS is not None and cell_index is not None:
                PROGRESS.cell_started(cell_index)
            return cell_start(cell, cell_index, **kw)
        nb_man.cell_start = started
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)


papermill_engines.register("course-progress", ProgressEngine)


def expected_seconds(names: list[str], fast: bool, gpu: bool, last: dict) -> dict:
    """Each notebook's expected wall time: its last run in this mode on this kind of device,
    else (full mode) the README's measured time for this kind of device, else None."""
    measured = measured_times()
    expected = {}
    for name in names:
        run = last.get(name, {})
        if run.get("fast") == fast and run.get("gpu") == gpu and run.get("seconds"):
            expected[name] = run["seconds"]
        else:
            minutes = None if fast else measured.get(name, {}).get("gpu_min" if gpu else "cpu_min")
            expected[name] = minutes * 60 if minutes else None
    return expected


def run(source: Path, build: Path) -> dict:
    notebook = jupytext.read(source)
    output = build / f"{source.stem}.ipynb"
    if PROGRESS is not None:
        PROGRESS.start(source.stem, notebook)
    start = time.perf_counter()
    # nbclient mimics a frontend for Output widgets (the explorers' drawing areas) by sending comm
    # messages while it awaits a cell's reply on the same channel, and then sometimes misses the
    # reply until the cell times out. Without the mimic every cell still runs the same.
    nbclient.NotebookClient.on_comm_open_jupyter_widget = lambda self, msg: None
    executed = papermill.execute_notebook(
        notebook, str(output), kernel_name="python3", language="python", cwd=str(NOTEBOOKS),
        progress_bar=False, execution_timeout=3600, engine_name="course-progress")
    seconds = time.perf_counter() - start
    return {"name": source.stem, "title": title_of(notebook), "seconds": round(seconds, 1),
            "records": read_records(executed)}


def main() -> None:
    global PROGRESS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="prefixes of the notebooks to run")
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--build", type=Path, default=ROOT / "build")
    parser.add_argument("--no-site", action="store_true", help="execute only, build no site")
    args = parser.parse_args()
    if args.fast:
        os.environ["COURSE_FAST"] = "1"      # the kernels inherit it
    else:
        os.environ.pop("COURSE_FAST", None)
    args.build.mkdir(parents=True, exist_ok=True)
    sources = [p for p in series()
               if not args.only or any(p.stem.startswith(o) for o in args.only)]
    summary_path = args.build / "summary.json"
    last = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    last = {r["name"]: r for r in last} if isinstance(last, list) else last
    gpu = training.get_device().type != "cpu"
    expected = expected_seconds([s.stem for s in sources], args.fast, gpu, last)
    known = sum(v for v in expected.values() if v)
    unknown = [n for n, v in expected.items() if v is None]
    if not gpu and not args.fast and sources:
        print(f"No GPU here: on 2 CPU cores the full series takes about {duration(known)}"
              " (measured, README)"
              f"{' (' + ', '.join(unknown) + ' never timed)' if unknown else ''}. "
              "`make run FAST=1` runs it with the tests' small defaults in minutes instead "
              "(numbers that only show it works).", flush=True)
    PROGRESS = Progress(expected)
    ticker = threading.Event()

    def tick():
        while not ticker.wait(5):
            PROGRESS.tick()
    threading.Thread(target=tick, daemon=True).start()
    results = []
    for i, source in enumerate(sources, 1):
        guess = f", about {duration(expected[source.stem])}" if expected[source.stem] else ""
        print(f"[{i}/{len(sources)}] {source.name}{guess}", flush=True)
        result = run(source, args.build)
        result.update(fast=args.fast, gpu=gpu,
                      date=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))
        results.append(result)
        last[source.stem] = result
        summary_path.write_text(json.dumps(last, indent=2))
        print(f"  done in {clock(result['seconds'])}", flush=True)
    ticker.set()
    if not args.no_site:
        build_site(args.build, args.build / "site")


if __name__ == "__main__":
    main()
