"""The course site: its parts on small inputs, then the whole site built from the fast run of the
series and opened in a real browser.

Under `make test` the site is built from the notebooks exactly as nbval executed them (the root
conftest.py keeps each executed copy and runs this module after the notebooks), so the series is
executed once per session. Run on its own (`pytest tests/test_site.py`), this module executes in
fast mode the notebooks that the session did not, as `make run FAST=1` would.
"""

import datetime
import os
import functools
import http.server
import json
import threading
import time
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("myst_nb", reason="the site needs the `site` extra: pip install -e .[site]")

from scripts import build_site                      # noqa: E402
from scripts import run_series                      # noqa: E402
from tests.test_browser import ARGS, CHROMIUM       # noqa: E402


# --- the parts ---

README_TABLE = """\
| notebook | what it teaches | open | full run, 2 CPU cores | full run, GPU |
| --- | --- | --- | --- | --- |
| [01 · One](notebooks/01_one.ipynb) | decay | badge | 10.6 min; 88.3 % | 2.1 min; 87.9 % |
| [02 · Two](notebooks/02_two.ipynb) | gamma | badge | 2.6 min (4.0 min busy) | not measured yet |
"""


def test_readme_table_gives_each_notebook_its_measured_minutes():
    table = build_site.readme_table("# Title\n\ntext\n\n" + README_TABLE + "\nafter | not a row\n")
    assert table == {"01_one": {"teaches": "decay", "cpu_min": 10.6, "gpu_min": 2.1},
                     "02_two": {"teaches": "gamma", "cpu_min": 2.6, "gpu_min": None}}


def test_the_readme_is_the_home_of_the_measured_times():
    table = build_site.measured_times()
    names = {source.stem for source in build_site.series()}
    assert table and set(table) <= names, f"README rows without a notebook: {set(table) - names}"
    assert all(row["cpu_min"] is None or row["cpu_min"] > 0 for row in table.values())
    assert any(row["cpu_min"] for row in table.values()), "no CPU time read from the README"


def test_records_become_readable_tables_not_json():
    records = {"best_val_acc": {"constant": 0.733, "StepLR": 0.7534},
               "final_val_acc": {"constant": 0.7, "StepLR": 0.75},
               "gammas": {"slow": 0.707107},
               "summary": {"constant lr": {"best_val_loss": 0.78, "at_epoch": 3}},
               "reductions": 4, "ratios": [1.0, 0.5], "flag": True}
    tables = build_site.records_tables(records)
    text = json.dumps(tables)
    by_headers = {tuple(t["headers"]): t for t in tables}
    # The two accuracy records share their keys: one table, a column each, in %.
    accuracy = by_headers[("", "best validation accuracy", "final validation accuracy")]
    assert accuracy["rows"] == [["constant", "73.3 %", "70.0 %"], ["StepLR", "75.3 %", "75.0 %"]]
    assert by_headers[("", "gammas")]["rows"] == [["slow", "0.7071"]]
    nested = by_headers[("", "best validation loss", "at epoch")]
    assert nested["title"] == "summary" and nested["rows"] == [["constant lr", "0.78", "3"]]
    assert by_headers[("result", "value")]["rows"] == [
        ["reductions", "4"], ["ratios", "1, 0.5"], ["flag", "yes"]]
    assert "{" not in "".join(cell for t in tables for row in t["rows"] for cell in row)
    assert "0.7534" not in text                           # shown as a percentage, not raw


def test_accuracy_figure_only_for_accuracies(tmp_path):
    assert build_site.accuracy_figure({"best_val_acc": {"a": 0.5, "b": 0.75}}, tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 5_000
    assert not build_site.accuracy_figure({"gammas": {"a": 0.5}, "test_acc": 0.9},
                                          tmp_path / "b.png")
    assert not (tmp_path / "b.png").exists()


def test_a_page_keeps_its_plots_and_explains_its_explorers():
    explorer = nbformat.v4.new_output("display_data", data={
        build_site.WIDGET_VIEW: {"model_id": "x"}, "text/plain": "interactive(children=...)"})
    bar = nbformat.v4.new_output("display_data", data={
        build_site.WIDGET_VIEW: {"model_id": "y"}, "text/plain": "100%|##########| 3/3 [00:01]"})
    plot = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=",
                                                         "text/plain": "<Figure>"})
    cell = nbformat.v4.new_code_cell("explorer", outputs=[bar, plot, explorer])
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(f"# 01 · One\n\n[![Open In Colab]({build_site.COLAB_BADGE})]"
                                      "(https://colab.research.google.com/github/o/r)"), cell],
        metadata={"widgets": {"state": {}}})
    page = build_site.site_notebook(notebook, "*run note*")
    outputs = page.cells[2].outputs
    assert [list(o.data) for o in outputs] == [["image/png", "text/plain"],
                                               ["text/html", "text/plain"]]
    assert "open this notebook in Colab" in outputs[1].data["text/html"]
    assert page.cells[1].source == "*run note*" and "widgets" not in page.metadata
    assert "](colab-badge.svg)" in page.cells[0].source
    assert notebook.cells[1].outputs[0] is bar                        # the input is left alone


def test_make_run_expects_the_last_run_else_the_readme():
    names = [source.stem for source in build_site.series()]
    measured = build_site.measured_times()
    last = {names[0]: {"seconds": 12.0, "fast": True, "gpu": False}}
    fast = run_series.expected_seconds(names, True, False, last)
    assert fast[names[0]] == 12.0 and all(fast[n] is None for n in names[1:])
    full = run_series.expected_seconds(names, False, False, last)     # another mode: the README
    for name in names:
        cpu = measured.get(name, {}).get("cpu_min")
        assert full[name] == (cpu * 60 if cpu else None), name


def test_make_run_estimates_the_time_left():
    cells = [nbformat.v4.new_markdown_cell("## One"), nbformat.v4.new_code_cell("a"),
             nbformat.v4.new_markdown_cell("text\n\n## Two"), nbformat.v4.new_code_cell("b")]
    progress = run_series.Progress({"a": 600.0, "b": 300.0, "c": None})
    progress.start("a", nbformat.v4.new_notebook(cells=cells))
    assert [heading for _, heading in progress.sections] == ["One", "Two"]
    assert progress.left() == "about 15 min left in the series (+ 1 notebook(s) never timed)"
    progress = run_series.Progress({"c": None})
    progress.start("c", nbformat.v4.new_notebook(cells=cells))
    assert progress.left() == "time left: not known yet"       # nothing timed, no cell done
    progress.started -= 60                                     # one of two code cells in 60 s
    progress.cell_started(3)
    assert progress.left() == "about 60 s left in the series"


# --- the site, built from the fast run ---

@pytest.fixture(scope="session")
def site(executed_notebooks, tmp_path_factory):
    """build/site/ as `make run FAST=1` makes it, from this session's execution of the series."""
    import torch

    build = tmp_path_factory.mktemp("build")
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    summary, executed_here = {}, []
    for source in build_site.series():
        name = source.stem
        if name in executed_notebooks:
            nbformat.write(executed_notebooks[name]["notebook"], build / f"{name}.ipynb")
            seconds = executed_notebooks[name]["seconds"]
        else:
            seconds = run_series.run(source, build)["seconds"]     # COURSE_FAST=1: conftest.py
            executed_here.append(name)
        summary[name] = {"name": name, "seconds": seconds, "fast": True,
                         "gpu": torch.cuda.is_available(), "date": date}
    (build / "summary.json").write_text(json.dumps(summary))
    start = time.perf_counter()
    build_site.build_site(build, build / "site")
    seconds = time.perf_counter() - start
    print(f"\nsite built in {seconds:.1f} s; executed here (not by nbval): {executed_here}")
    return build


def pages():
    return ["index"] + [source.stem for source in build_site.series()]


def test_the_site_has_a_front_page_and_a_page_per_notebook(site):
    out = site / "site"
    front = (out / "index.html").read_text()
    for source in build_site.series():
        page = out / f"{source.stem}.html"
        assert page.exists(), f"no page for {source.name}"
        assert f'href="{source.stem}.html"' in front
        assert f"notebooks/{source.stem}.ipynb" in front                  # its Colab link
        executed = nbformat.read(site / f"{source.stem}.ipynb", as_version=4)
        plots = sum("image/png" in o.get("data", {}) for c in executed.cells
                    for o in c.get("outputs", []))
        shown = page.read_text().count("<img")
        assert shown >= plots + 1, f"{source.stem}: {plots} plots + the badge, {shown} images"
    assert "Fast mode" in front and "How these numbers were made" in front
    assert "device" in front and "cpu" in front.lower() and "Fashion-MNIST" in front
    assert "_accuracy.png" in front, "no accuracy chart on the front page"
    results = front.split("Headline results")[1]
    assert '{"' not in results and "{'" not in results, "raw JSON on the front page"
    assert (out / "search.html").exists() and (out / "_static" / "mathjax" / "MathJax.js").exists()


@pytest.fixture(scope="module")
def served(site):
    """The site over HTTP on this machine, as `make serve` serves it."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(site / "site")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.skipif(not os.path.exists(CHROMIUM),
                    reason="the browser test needs Chromium: sudo apt-get install chromium")
def test_every_page_in_a_browser(served, tmp_path):
    from playwright.sync_api import sync_playwright

    names = pages()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for i, name in enumerate(names):
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}")
                    if r.url.startswith("http") else None)
            page.goto(f"{served}/{name}.html", wait_until="load")
            page.wait_for_load_state("networkidle")
            images = page.eval_on_selector_all(
                "article img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth,"
                " e.getBoundingClientRect().width, e.getBoundingClientRect().height])")
            empty = [src for src, natural, width, height in images
                     if not (natural and width and height)]
            assert images and not empty, f"{name}: images of no size: {empty}"
            following = page.eval_on_selector_all("a.right-next",
                                                  "els => els.map(e => e.getAttribute('href'))")
            if i + 1 < len(names):
                assert following == [f"{names[i + 1]}.html"], f"{name} links next to {following}"
            else:
                assert following == [], f"the last page links on to {following}"
            page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
            assert (tmp_path / f"{name}.png").stat().st_size > 20_000
            assert not errors, f"{name}: {errors}"
            page.close()
        browser.close()


def test_run_facts_read_the_device_and_data_lines_without_the_home_folder():
    home = Path.home()
    cell = nbformat.v4.new_code_cell("report")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=(
        "PyTorch 2.14.1, course_utils 0.1.0, device: cpu\n"
        f"Fashion-MNIST: 60,000 train / 10,000 test images from the cache {home}/.cache/x.\n"))]
    facts = build_site.run_facts(nbformat.v4.new_notebook(cells=[cell]))
    assert facts == {"torch": "2.14.1", "device": "cpu",
                     "data": "Fashion-MNIST: 60,000 train / 10,000 test images from the cache "
                             "~/.cache/x"}
