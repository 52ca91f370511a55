"""Every explorer works with ipywidgets 7.7 (what Colab ships) and with the installed version
(the newest 8.x under `make test`, the declared minimum under `make test-min`).

The test fetches ipywidgets 7.7.1 from the package index into a temporary folder (no dependencies:
the rest of the environment is shared), then, in a fresh interpreter for each version, builds each
explorer and moves every control, as a person would, checking that the callback runs without an
error and that what the explorer shows changes.
"""

import importlib.metadata
import json
import subprocess
import sys
import textwrap

import pytest

EXPLORERS = [       # (module in course_utils.widgets, factory)
    ("exponential", "exponential_explorer"),
    ("plateau_simulator", "plateau_explorer"),
    ("regularization", "dropout_explorer"),
    ("regularization", "batchnorm_momentum_explorer"),
]

DRIVER = textwrap.dedent("""
    import contextlib, importlib, io, json, sys
    import matplotlib
    matplotlib.use("Agg")
    import ipywidgets

    def controls(widget):
        for child in getattr(widget, "children", ()):
            if isinstance(child, ipywidgets.ValueWidget) and not isinstance(
                    child, (ipywidgets.Output, ipywidgets.Label, ipywidgets.HTML)):
                yield child
            yield from controls(child)

    def other_value(control):
        if isinstance(control, ipywidgets.Checkbox):
            return not control.value
        if hasattr(control, "options"):
            values = [o[1] if isinstance(o, tuple) else o for o in control.options]
            return next(v for v in values if v != control.value)
        return control.min if control.value != control.min else control.max

    def shown(widget, captured):
        outputs = [o.outputs for o in ipywidgets.Widget.widgets.values()
                   if isinstance(o, ipywidgets.Output)] if hasattr(ipywidgets.Widget, "widgets") \\
            else []
        return repr(getattr(widget, "result", None)) + captured.getvalue() + repr(outputs)

    report = {"version": ipywidgets.__version__, "explorers": {}}
    for module_name, factory in json.loads(sys.argv[1]):
        module = importlib.import_module("course_utils.widgets." + module_name)
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            widget = getattr(module, factory)()
        moved, changed = 0, 0
        for control in list(controls(widget)):
            if control.disabled:
                control.disabled = False
            before = shown(widget, captured)
            with contextlib.redirect_stdout(captured):
                control.value = other_value(control)
            moved += 1
            changed += shown(widget, captured) != before
        report["explorers"][factory] = {"controls": moved, "changed": changed}
    print(json.dumps(report))
""")


@pytest.fixture(scope="module")
def ipywidgets_7(tmp_path_factory):
    target = tmp_path_factory.mktemp("ipywidgets7")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         "ipywidgets==7.7.1", "ipython_genutils==0.2.0"], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip("could not fetch ipywidgets 7.7.1 from the package index (offline?): "
                    + result.stderr.strip().splitlines()[-1])
    return target


def drive(pythonpath=None) -> dict:
    import os

    env = dict(os.environ, MPLBACKEND="Agg")
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    result = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(EXPLORERS)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def check(report):
    assert set(report["explorers"]) == {factory for _, factory in EXPLORERS}
    for name, counts in report["explorers"].items():
        assert counts["controls"] >= 2, name
        assert counts["changed"] == counts["controls"], f"{name}: a control changed nothing"


def test_explorers_with_installed_ipywidgets():
    report = drive()
    assert report["version"] == importlib.metadata.version("ipywidgets")
    check(report)


def test_explorers_with_ipywidgets_7_7(ipywidgets_7):
    report = drive(ipywidgets_7)
    assert report["version"] == "7.7.1"
    check(report)
