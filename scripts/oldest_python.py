"""Print the oldest Python on this machine that pyproject.toml's requires-python allows.

    python3 scripts/oldest_python.py        # e.g. /root/.pyenv/versions/3.10.13/bin/python

`make test-min` builds .venv-min with it. Looks for `python3.N` on PATH and for pyenv's
versions, for N from the declared minimum up; a newer one than the minimum is used with a warning
(the minimum itself then stays untested), none at all is an error that says what to install.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A usable interpreter can make a venv with pip in it, and says where it really lives (a pyenv
# shim is a script that picks whichever version is active).
PROBE = "import ensurepip, sys, venv; print(sys.executable)"


def candidates(minor: int) -> list[str]:
    found = [shutil.which(f"python3.{minor}")]
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found += sorted(glob.glob(f"{pyenv_root}/versions/3.{minor}.*/bin/python"), reverse=True)
    return [path for path in found if path]


def usable(path: str) -> str | None:
    result = subprocess.run([path, "-c", PROBE], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def main() -> None:
    declared = re.search(r'requires-python = ">=3\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    minimum = int(declared.group(1))
    for minor in range(minimum, 20):
        for path in candidates(minor):
            executable = usable(path)
            if executable:
                if minor != minimum:
                    print(f"WARNING: no Python 3.{minimum} on this machine; using 3.{minor}, so "
                          f"requires-python >=3.{minimum} stays untested.", file=sys.stderr)
                print(executable)
                return
    sys.exit(f"No Python >= 3.{minimum} with venv and ensurepip found (looked for python3.N on "
             f"PATH and in pyenv's versions). Install Python 3.{minimum}, e.g. `pyenv install "
             f"3.{minimum}` or your system's python3.{minimum}-venv, to test the minimum versions.")


if __name__ == "__main__":
    main()
