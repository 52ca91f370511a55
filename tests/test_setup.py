"""The repository's promises: two commands, one dependency list, a quiet package."""

import re
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:    # Python 3.10: the same parser as tomli, which pytest needs there
    import tomli as tomllib

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def environment_pip_requirements():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:") + 1
    return {line.strip()[2:] for line in lines[start:] if line.startswith("      - ")} - {"-e ."}


def test_environment_yml_lists_the_same_requirements_as_pyproject():
    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    expected = set(project["dependencies"]) | set(extras["test"]) | set(extras["site"])
    assert environment_pip_requirements() == expected


def test_requirements_have_lower_bounds_only():
    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    for requirement in project["dependencies"] + extras["test"] + extras["site"]:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+>=[0-9.]+", requirement), requirement


def test_minimum_constraints_pin_each_declared_lower_bound():
    # `make test-min` installs constraints/minimum.txt: exactly the versions promised here (the
    # `site` extra, which only builds the course site, is not installed there).
    project = pyproject()["project"]
    declared = {}
    for requirement in project["dependencies"] + project["optional-dependencies"]["test"]:
        name, bound = requirement.split(">=")
        declared[name] = ".".join((bound.split(".") + ["0", "0"])[:3])      # 2.3 -> 2.3.0
    lines = (ROOT / "constraints" / "minimum.txt").read_text().splitlines()
    pinned = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert pinned == declared


def test_readme_first_screen_gives_the_two_commands():
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:25])
    assert "make run" in first_screen and "make test" in first_screen


def test_makefile_targets_and_ci_script():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("setup", "test", "test-min", "run", "site", "serve", "lab"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get update" in ci and "dataset-fashion-mnist" in ci
    commands = ci.splitlines()
    assert commands.index("make test") < commands.index("make test-min")   # newest, then oldest


@pytest.mark.parametrize("module", ["course_utils", "course_utils.data", "course_utils.models",
                                    "course_utils.training", "course_utils.checkpoint",
                                    "course_utils.schedulers"])
def test_import_has_no_side_effects(module, tmp_path):
    code = (f"import os, sys; before = set(os.listdir('.')); import {module}; "
            "assert set(os.listdir('.')) == before; "
            "print('torch' in sys.modules, end='')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    # Nothing printed, no file written; the bare package does not even import torch.
    assert result.stdout == ("False" if module == "course_utils" else "True")
    assert result.stderr == ""
    assert not (tmp_path / ".cache").exists()
