"""The sliders in a real browser: Voila serves an explorer, Chromium (driven by Playwright) moves
a slider, and what is drawn must change. A control page whose slider is disconnected from its
callback must NOT change, which proves the check can fail.

Needs Debian's Chromium (sudo apt-get install chromium); skipped, with that hint, without it.

Where the time goes: Voila starts in a few seconds and each page takes 5-15 s (a kernel that
imports torch and matplotlib, then the page's JavaScript). Now and then Voila's server-side
execution never sees the kernel's reply to a cell that did finish (nbclient waits forever on the
shell channel; the page stays "loading" with heartbeats only). Each page therefore writes a
marker file when its set-up cell has finished; a page with no drawing well after that marker is
such a stall and is opened again with a fresh kernel, instead of waiting out a long timeout. A
page whose cell raises fails at once, with Voila's log.
"""

import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="the browser test needs Chromium: sudo apt-get install chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]

SETUP = """\
import matplotlib
matplotlib.use("module://matplotlib_inline.backend_inline")
import matplotlib.pyplot as plt
plt.figure().canvas.draw()      # a fresh machine builds matplotlib's font cache here, not later
plt.close("all")
from course_utils.widgets import exponential
explorer = exponential.exponential_explorer(gamma=0.9, epochs=30)   # and the default lr, 0.05
"""
# Appended to each page's set-up cell: the kernel has run it (see the module docstring).
MARK_DONE = """
import pathlib
pathlib.Path({marker!r}).touch()
"""
# After its set-up cell has finished, a page shows its drawing within seconds; with no drawing
# this long after the marker, the page is stalled and is opened again.
STALL_AFTER_S = 40
PAGE_TIMEOUT_S = 150      # the most one attempt may take: a cold start on a loaded machine
DISCONNECT = """\
# The control: the sliders no longer reach the drawing function.
for control in explorer.children[:-1]:
    control.unobserve_all("value")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    """Voila serving two pages: the explorer, and the explorer with its callback disconnected."""
    folder = tmp_path_factory.mktemp("pages")
    for name, extra in (("explorer", ""), ("disconnected", DISCONNECT)):
        done = MARK_DONE.format(marker=str(folder / f"{name}.done"))
        cells = [nbformat.v4.new_code_cell(SETUP + extra + done),
                 nbformat.v4.new_code_cell("explorer")]
        nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
            "name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(nb, folder / f"{name}.ipynb")
    port = free_port()
    log = open(folder / "voila.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
         "--show_tracebacks=True", str(folder)],
        stdout=log, stderr=subprocess.STDOUT, cwd=folder,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})       # its log is read while it runs
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(base, timeout=1)
            break
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("Voila did not start:\n" + (folder / "voila.log").read_text())
    yield base, folder
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


def drawn(page) -> str:
    """The text and the plot image of the explorer's output area."""
    output = page.locator(".widget-output").last
    images = output.locator("img")
    image = images.first.get_attribute("src") if images.count() else ""
    return output.inner_text() + image


def wait_for(condition, timeout: float = 60.0) -> bool:
    """Poll `condition` until it holds or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except (AttributeError, ValueError):    # the output is being redrawn
            pass
        time.sleep(0.25)
    return False


def half_life_shown(page) -> float:
    """The half-life the explorer prints under its table."""
    text = page.locator(".widget-output").last.inner_text()
    return float(re.search(r"half-life.*?=\s*([0-9.]+)", text).group(1))


def move_gamma(page, value: str) -> None:
    """Type a value into the gamma slider's readout, as a person can, and press Enter."""
    readout = page.locator(".widget-slider", has_text="gamma").locator(".widget-readout")
    readout.click()
    readout.press("Control+A")
    readout.type(value)
    readout.press("Enter")


def open_page(browser, voila, name, attempts: int = 3):
    """Open a page and wait until the explorer has drawn. A page that stalls after its kernel
    has run the set-up cell is opened again, with a fresh kernel (see the module docstring)."""
    base, folder = voila
    marker, log = folder / f"{name}.done", folder / "voila.log"
    for attempt in range(1, attempts + 1):
        marker.unlink(missing_ok=True)
        errors_before = log.read_text().count("Error at server while executing cell")
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        # Voila runs the notebook before the page completes: wait for the drawing.
        page.goto(f"{base}/voila/render/{name}.ipynb", wait_until="commit", timeout=60_000)
        deadline = time.monotonic() + PAGE_TIMEOUT_S
        while time.monotonic() < deadline:
            if page.locator(".widget-output img").count():
                page.locator(".widget-output img").first.wait_for(timeout=10_000)   # visible
                return page
            if log.read_text().count("Error at server while executing cell") > errors_before:
                page.close()
                pytest.fail(f"the page {name} raised in its kernel:\n{log.read_text()[-4000:]}")
            if marker.exists() and time.time() - marker.stat().st_mtime > STALL_AFTER_S:
                break                                   # the known stall: open it again
            page.wait_for_timeout(250)
        page.close()
    pytest.fail(f"the page {name} never drew its explorer in {attempts} attempts:\n"
                f"{log.read_text()[-4000:]}")


def test_moving_a_slider_redraws_the_explorer(browser, voila, tmp_path):
    page = open_page(browser, voila, "explorer")
    before = drawn(page)
    assert half_life_shown(page) == pytest.approx(math.log(0.5) / math.log(0.9), abs=0.01)
    move_gamma(page, "0.5")
    assert wait_for(lambda: half_life_shown(page) == pytest.approx(1.0, abs=0.01)), (
        "the explorer did not redraw for gamma 0.5")           # gamma 0.5 halves every epoch
    assert drawn(page) != before                                  # the plot changed too
    assert "0.500" in page.locator(".widget-slider", has_text="gamma").inner_text()
    page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
    assert (tmp_path / "explorer.png").stat().st_size > 10_000
    page.close()


def test_a_disconnected_slider_is_caught(browser, voila):
    page = open_page(browser, voila, "disconnected")
    before = drawn(page)
    move_gamma(page, "0.5")
    assert "0.500" in page.locator(".widget-slider", has_text="gamma").inner_text()
    # Ample time for a redraw that must not come.
    assert not wait_for(lambda: drawn(page) != before, timeout=5)
    page.close()
