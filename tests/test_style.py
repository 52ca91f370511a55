"""The library stays small enough to read in one sitting (see the design's size budget)."""

import importlib
import pkgutil
import re
from pathlib import Path

import course_utils
import course_utils.widgets

PACKAGE = Path(course_utils.__file__).parent
MODULE_BUDGET = 250      # code lines per module, widgets included
LIBRARY_BUDGET = 1500     # code lines in the whole library, as the design asks
MODULES = sorted(PACKAGE.rglob("*.py"))


def code_lines(path: Path) -> int:
    """Lines that are neither blank nor comment-only (docstrings count: a student reads them)."""
    return sum(1 for line in path.read_text().splitlines()
               if not re.fullmatch(r"\s*(#.*)?", line))


def test_code_lines_counts_only_code(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""Doc."""\n\n# a comment\n    # indented comment\nx = 1  # trailing\n')
    assert code_lines(sample) == 2


def test_every_module_fits_its_budget():
    too_long = {path.relative_to(PACKAGE).as_posix(): code_lines(path) for path in MODULES
                if code_lines(path) > MODULE_BUDGET}
    assert not too_long, f"modules over {MODULE_BUDGET} code lines: {too_long}"


def test_the_library_fits_its_budget():
    sizes = {path.relative_to(PACKAGE).as_posix(): code_lines(path) for path in MODULES}
    assert sum(sizes.values()) <= LIBRARY_BUDGET, (
        f"{sum(sizes.values())} code lines > {LIBRARY_BUDGET}; the largest: "
        f"{sorted(sizes.items(), key=lambda item: -item[1])[:5]}")


def test_all_lists_every_public_module():
    for package in (course_utils, course_utils.widgets):
        modules = {info.name for info in pkgutil.iter_modules(package.__path__)
                   if not info.name.startswith("_")}
        assert set(package.__all__) == modules, package.__name__
        for name in modules:            # and each imports on its own, with no side effects
            importlib.import_module(f"{package.__name__}.{name}")
