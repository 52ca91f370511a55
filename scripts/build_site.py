"""Build the course site, build/site/, from the notebooks executed into build/, running nothing.

    python scripts/build_site.py            # what `make site` does (and `make run` at its end)
    python scripts/build_site.py --build DIR --out DIR

The generator is Sphinx with MyST-NB and the book theme, with MyST-NB's execution off: it renders
the outputs the executed notebooks already hold. The pages are whatever notebooks/NN_*.py exist,
in their order; a notebook not executed yet gets its page from the committed .ipynb, and the front
page says so. The front page's numbers come from `course_utils.notebook.read_records` of the
executed notebooks; the measured full-run times from the README's notebook table, their one home.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from course_utils.notebook import RECORD_MIME, read_records

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SITE = ROOT / "site"                     # conf.py, the front page's prose, the stylesheet
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
EXPLORER_NOTE = ("<p class='explorer-note'>An interactive explorer is drawn here. Its sliders need "
                 "a running kernel: open this notebook in Colab (the badge at the top of the page) "
                 "or in Jupyter to move them.</p>")
# A tqdm bar's text: "100%|██████████| 3/3 [00:04<00:00, ...]".
PROGRESS_BAR = re.compile(r"^\s*\d+%\|")
# The lines every notebook prints in its set-up: notebook.report_device and data.load_*.
DEVICE_LINE = re.compile(r"PyTorch (\S+), course_utils \S+, device: (\S+)")
DATA_LINE = re.compile(r"^((?:Fashion-)?MNIST: [\d,]+ train / [\d,]+ test images from .+?)\.?$",
                       re.M)
# Headers for record names: "best_val_acc" -> "best validation accuracy".
WORDS = {"val": "validation", "acc": "accuracy", "lr": "lr", "bn": "BatchNorm"}


def series() -> list[Path]:
    """The notebooks of the series, in order: whatever notebooks/NN_*.py exist."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


# --- the README's notebook table: what each notebook teaches and its measured full-run times ---

def minutes(text: str) -> float | None:
    """The minutes a README time cell starts with ("10.6 min; ..." -> 10.6), or None."""
    match = re.match(r"\s*([\d.]+)\s*min\b", text)
    return float(match.group(1)) if match else None


def readme_table(text: str) -> dict[str, dict]:
    """The README's notebook table, by notebook name: what it teaches, the full-run minutes on
    2 CPU cores and on a GPU (None where not measured)."""
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines)
                   if line.startswith("|") and "teaches" in line), None)
    if header is None:
        return {}
    columns = [c.strip() for c in lines[header].strip("|").split("|")]
    teaches = columns.index(next(c for c in columns if "teaches" in c))
    cpu = next((i for i, c in enumerate(columns) if "CPU" in c), None)
    gpu = next((i for i, c in enumerate(columns) if "GPU" in c), None)
    table = {}
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = re.search(r"\(notebooks/(\d\d_\w+)\.ipynb\)", cells[0])
        if name and len(cells) == len(columns):
            table[name.group(1)] = {
                "teaches": cells[teaches],
                "cpu_min": minutes(cells[cpu]) if cpu is not None else None,
                "gpu_min": minutes(cells[gpu]) if gpu is not None else None}
    return table


def measured_times() -> dict[str, dict]:
    return readme_table((ROOT / "README.md").read_text())


# --- headline numbers as tables and a figure ---

def readable(name: str) -> str:
    if "_" not in name:
        return name
    return " ".join(WORDS.get(word, word) for word in name.split("_"))


def is_accuracy(name: str) -> bool:
    return bool(re.search(r"(^|_)acc($|_)|accuracy", name))


def show(value, accuracy: bool = False) -> str:
    """A value as a table cell: accuracies in %, floats to 4 significant digits, no JSON."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "–"
    if isinstance(value, float):
        if accuracy and 0 <= value <= 1:
            return f"{100 * value:.1f} %"
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(show(v, accuracy) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{readable(str(k))}: {show(v, accuracy or is_accuracy(str(k)))}"
                         for k, v in value.items())
    return str(value).replace("|", "\\|").replace("\n", " ")


def records_tables(records: dict) -> list[dict]:
    """The recorded values as tables ({"title", "headers", "rows"}), never JSON: scalars share
    one table; flat dicts with the same keys share one, a column each; a dict of dicts is a table
    of its own with a row per outer key."""
    scalars, flat, tables = [], {}, []
    for name, value in records.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            inner = list(dict.fromkeys(k for v in value.values() for k in v))
            rows = [[readable(str(outer))] + [show(v.get(k), is_accuracy(name) or is_accuracy(k))
                                              for k in inner] for outer, v in value.items()]
            tables.append({"title": readable(name),
                           "headers": [""] + [readable(str(k)) for k in inner], "rows": rows})
        elif isinstance(value, dict) and value:
            flat.setdefault(tuple(value), []).append(name)
        else:
            scalars.append([readable(name), show(value, is_accuracy(name))])
    for keys, names in flat.items():
        rows = [[readable(str(k))] + [show(records[n][k], is_accuracy(n) or is_accuracy(str(k)))
                                      for n in names] for k in keys]
        tables.append({"title": "", "headers": [""] + [readable(n) for n in names], "rows": rows})
    if scalars:
        tables.append({"title": "", "headers": ["result", "value"], "rows": scalars})
    return tables


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(h or " " for h in headers) + " |",
             "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def accuracy_groups(records: dict) -> list[tuple[list[str], list[str]]]:
    """Flat dicts of accuracies (names with "acc"), grouped by their keys: a bar chart's data."""
    groups = {}
    for name, value in records.items():
        if is_accuracy(name) and isinstance(value, dict) and value and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
                for v in value.values()):
            groups.setdefault(tuple(value), []).append(name)
    return [(list(keys), names) for keys, names in groups.items()]


def accuracy_figure(records: dict, path: Path) -> bool:
    """A horizontal bar chart of the notebook's first group of accuracy records; False if none."""
    groups = accuracy_groups(records)
    if not groups:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from course_utils.plotting import PALETTE

    keys, names = groups[0]
    height = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.32 * len(keys) * max(1, len(names) / 1.5)))
    for i, name in enumerate(names):
        values = [100 * records[name][k] for k in keys]
        ax.barh(np.arange(len(keys)) + (i - (len(names) - 1) / 2) * height, values, height,
                color=PALETTE[i % len(PALETTE)], label=readable(name),
                hatch=("", "//", "..", "xx")[i % 4])
    ax.set_yticks(np.arange(len(keys)), [readable(str(k)) for k in keys])
    ax.invert_yaxis()
    low = min(100 * records[n][k] for n in names for k in keys)
    ax.set_xlim(max(0.0, low - 5), 100)
    ax.set_xlabel("accuracy (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# --- the executed notebooks ---

def output_text(output) -> str:
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    else:
        text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text


def run_facts(notebook) -> dict:
    """What produced an executed notebook's numbers, from the lines its set-up printed."""
    facts = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            text = output_text(output)
            if "device" not in facts and (match := DEVICE_LINE.search(text)):
                facts["torch"], facts["device"] = match.groups()
            if "data" not in facts and (match := DATA_LINE.search(text)):
                # "~" for the home folder: a published page need not show whose machine it was.
                facts["data"] = match.group(1).replace(str(Path.home()), "~")
    return facts


def in_order(value, shown):
    """`value` with its dicts' keys in the order of `shown`, where both agree."""
    if isinstance(value, dict) and isinstance(shown, dict) and set(value) == set(shown):
        return {k: in_order(value[k], shown[k]) for k in shown}
    return value


def ordered_records(notebook) -> dict:
    """read_records, with each dict in the order the notebook gave it: a saved notebook's JSON
    sorts the keys, the text `record` shows beside them ("name = {...}") keeps the order."""
    records = read_records(notebook)
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            if RECORD_MIME not in output.get("data", {}):
                continue
            name, _, shown = output_text(output).partition(" = ")
            try:
                records[name] = in_order(records[name], ast.literal_eval(shown))
            except (KeyError, ValueError, SyntaxError):
                pass
    return records


def title_of(notebook) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            return cell.source.splitlines()[0][2:].strip()
    return "untitled"


def site_notebook(notebook, note: str):
    """The notebook as its page shows it: the Colab badge drawn from the site's own copy, a line
    on which run it shows, tqdm bars left out, each explorer replaced by a line that says how to
    move its sliders (its drawing needs a kernel), the record MIME type left to its text."""
    notebook = copy.deepcopy(notebook)
    notebook.metadata.pop("widgets", None)        # no widget state: no widget JavaScript needed
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace(COLAB_BADGE, "colab-badge.svg")
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            data.pop(RECORD_MIME, None)
            if WIDGET_VIEW in data:
                if PROGRESS_BAR.match(output_text(output)):
                    continue
                if any(EXPLORER_NOTE in output_text(o) for o in outputs):
                    continue
                output = nbformat.v4.new_output("display_data", data={
                    "text/html": EXPLORER_NOTE, "text/plain": "(an interactive explorer)"})
            outputs.append(output)
        cell.outputs = outputs
    first = next((i for i, c in enumerate(notebook.cells) if c.cell_type == "markdown"), -1)
    notebook.cells.insert(first + 1, nbformat.v4.new_markdown_cell(note))
    return notebook


# --- the front page ---

def when(entry: dict) -> str:
    return entry.get("date") or "date unknown"


def mode_name(fast: bool | None) -> str:
    return {True: "fast mode (COURSE_FAST=1: small subsets, few epochs)",
            False: "full mode (the notebooks' full parameters)"}.get(fast, "mode unknown")


def front_page(entries: list[dict], title: str) -> str:
    """index.md: who the series is for, how these numbers were made, the notebooks, the results."""
    executed = [e for e in entries if e["executed"]]
    fast_runs = {e["fast"] for e in executed}
    # The front page's tables are wide: no "contents" column beside them.
    parts = ["---", "html_theme.sidebar_secondary.remove: true", "---", "", f"# {title}", ""]
    if True in fast_runs:
        parts += ["```{admonition} Fast mode",
                  ":class: warning",
                  "These pages show a fast-mode run (`make run FAST=1`, what the tests run): small "
                  "subsets and few epochs, so the numbers only show that everything works. "
                  "`make run` gives the course's results.", "```", ""]
    parts += [(SITE / "intro.md").read_text().strip(), ""]

    parts += ["## How these numbers were made", ""]
    facts_rows = []
    for e in entries:
        f = e["facts"]
        facts_rows.append([e["number"], f.get("device", "–"), f.get("torch", "–"),
                           show(f.get("data", "–")),
                           mode_name(e["fast"]) if e["executed"] else "not executed yet",
                           when(e) if e["executed"] else "–"])
    if len({tuple(r[1:]) for r in facts_rows}) == 1:           # one run for all: one line
        _, device, torch, data, mode, date = facts_rows[0]
        parts += [f"- **device:** {device}, PyTorch {torch}", f"- **data:** {data}",
                  f"- **mode:** {mode}", f"- **executed:** {date}", ""]
    else:
        parts += [markdown_table(["notebook", "device", "PyTorch", "data", "mode", "executed"],
                                 facts_rows), ""]

    parts += ["## The notebooks", "",
              "Each notebook is one lesson. *This run* is the wall time of the run these pages "
              "show; the two columns after it are full runs measured on 2 CPU cores and on one "
              "GPU (the README's table, where they are kept).", ""]
    rows = []
    for e in entries:
        measured = e["measured"]
        rows.append([f"[{e['title']}]({e['name']}.ipynb)", measured.get("teaches", ""),
                     f"{e['seconds'] / 60:.1f} min" if e.get("seconds") else "–",
                     f"{measured['cpu_min']:g} min" if measured.get("cpu_min") else "not measured",
                     f"{measured['gpu_min']:g} min" if measured.get("gpu_min") else "not measured",
                     f"[![Open In Colab](colab-badge.svg)]({e['colab']})"])
    parts += [markdown_table(["notebook", "what it teaches", "this run", "full run, 2 CPU cores",
                              "full run, GPU", "open"], rows), ""]

    parts += ["## Headline results", "",
              "The numbers each notebook records with `notebook.record`, read from its executed "
              "copy.", ""]
    for e in entries:
        parts += [f"### {e['title']}", ""]
        if not e["executed"]:
            parts += ["Not executed yet: `make run` runs it.", ""]
            continue
        if not e["records"]:
            parts += ["This notebook recorded no headline numbers.", ""]
        for table in records_tables(e["records"]):
            if table["title"]:
                parts += [f"**{table['title']}**", ""]
            parts += [markdown_table(table["headers"], table["rows"]), ""]
        if e.get("figure"):
            parts += [f"```{{figure}} {e['figure']}", f":alt: {e['title']}: accuracies",
                      ":width: 560px", "",
                      f"The accuracies notebook {e['number']} recorded"
                      + {True: ", in fast mode.", False: ", in full mode."}.get(e["fast"], "."),
                      "```", ""]
    parts += ["```{toctree}", ":hidden:", ":maxdepth: 1", ""]
    parts += [e["name"] for e in entries]
    parts += ["```", ""]
    return "\n".join(parts)


# --- the build ---

def repository_url() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'^Repository\s*=\s*"([^"]+)"', text, re.M).group(1)


def load_runs(build: Path) -> dict:
    path = build / "summary.json"
    if not path.exists():
        return {}
    runs = json.loads(path.read_text())
    return {r["name"]: r for r in runs} if isinstance(runs, list) else runs


def collect(build: Path, source_dir: Path) -> list[dict]:
    runs, measured, repo = load_runs(build), measured_times(), repository_url()
    entries = []
    for source in series():
        name = source.stem
        executed_path = build / f"{name}.ipynb"
        executed = executed_path.exists()
        notebook = nbformat.read(executed_path if executed else source.with_suffix(".ipynb"),
                                 as_version=4)
        run = runs.get(name, {})
        entry = {"name": name, "number": name[:2], "title": title_of(notebook),
                 "executed": executed, "fast": run.get("fast"), "date": run.get("date"),
                 "seconds": run.get("seconds") if executed else None,
                 "facts": run_facts(notebook) if executed else {},
                 "records": ordered_records(notebook) if executed else {},
                 "measured": measured.get(name, {}),
                 "colab": f"https://colab.research.google.com/github/"
                          f"{repo.split('github.com/')[-1]}/blob/main/notebooks/{name}.ipynb"}
        if executed:
            facts = entry["facts"]
            note = (f"*This page shows the notebook executed {when(entry)} in "
                    f"{mode_name(entry['fast'])}, on {facts.get('device', 'an unknown device')}"
                    + (f", with {facts['data']}" if "data" in facts else "") + ".*")
        else:
            note = "*Not executed yet: `make run` executes it, and this page then shows its plots.*"
        nbformat.write(site_notebook(notebook, note), source_dir / f"{name}.ipynb")
        if executed and accuracy_figure(entry["records"],
                                        source_dir / "_figures" / f"{name}_accuracy.png"):
            entry["figure"] = f"_figures/{name}_accuracy.png"
        entries.append(entry)
    return entries


def build_site(build: Path, out: Path, *, quiet: bool = True) -> Path:
    """Write the site's sources into build/site-src/ and run Sphinx on them into `out`."""
    start = time.perf_counter()
    source_dir = build / "site-src"
    shutil.rmtree(source_dir, ignore_errors=True)
    shutil.copytree(SITE, source_dir, ignore=shutil.ignore_patterns("intro.md", "__pycache__"))
    entries = collect(build, source_dir)
    title = (ROOT / "README.md").read_text().splitlines()[0].lstrip("# ").strip()
    (source_dir / "index.md").write_text(front_page(entries, title))
    fast = any(e["fast"] for e in entries if e["executed"])
    (source_dir / "_site.json").write_text(json.dumps({
        "title": title, "repository": repository_url(), "fast": fast}))
    try:
        import jupyter_server_mathjax            # MathJax served from the site: no network needed
        shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static",
                        source_dir / "_static" / "mathjax")
    except ImportError:
        pass
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-E", "-a", "--keep-going",
               str(source_dir), str(out)] + (["-q"] if quiet else [])
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not (out / "index.html").exists():
        raise RuntimeError(f"sphinx-build failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    for line in warnings[:20]:
        print(line)
    print(f"Built {out / 'index.html'}: the front page and {len(entries)} notebook pages in "
          f"{time.perf_counter() - start:.0f} s ({len(warnings)} warnings).", flush=True)
    return out / "index.html"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=ROOT / "build",
                        help="where the executed notebooks are (default: build/)")
    parser.add_argument("--out", type=Path, default=None, help="default: BUILD/site")
    args = parser.parse_args()
    build_site(args.build, args.out or args.build / "site")


if __name__ == "__main__":
    main()
