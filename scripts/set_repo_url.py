"""Point every Colab badge and bootstrap cell at the repository named in pyproject.toml.

    python scripts/set_repo_url.py            # after changing [project.urls] Repository

The repository URL is defined once, in pyproject.toml. This rewrites the badges in README.md
and in each notebook (both twins, so the pairs stay in sync) and the `pip install git+...`
line of each bootstrap cell. tests/test_colab.py checks that they all agree.
"""

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:    # Python 3.10: the same parser as tomli, which pytest needs there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^/\s)\"]+/[^/\s)\"]+/blob/"
                   r"[^/\s)\"]+/notebooks/")
INSTALL = re.compile(r"git\+https://github\.com/[^/\s\"']+/[^/\s\"'\\]+")


def repository() -> tuple[str, str]:
    """(owner/name, branch) from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    url = project["project"]["urls"]["Repository"].rstrip("/")
    match = re.fullmatch(r"https://github\.com/([^/]+/[^/]+)", url)
    if not match:
        raise SystemExit(f"[project.urls] Repository must be https://github.com/OWNER/NAME, "
                         f"got {url!r}")
    return match.group(1), "main"


def rewrite(text: str, slug: str, branch: str) -> str:
    text = BADGE.sub(f"https://colab.research.google.com/github/{slug}/blob/{branch}/notebooks/",
                     text)
    return INSTALL.sub(f"git+https://github.com/{slug}", text)


def main() -> None:
    slug, branch = repository()
    paths = [ROOT / "README.md", *sorted((ROOT / "notebooks").glob("[0-9]*.py")),
             *sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))]
    for path in paths:
        text = path.read_text()
        new = rewrite(text, slug, branch)
        if new != text:
            path.write_text(new)
            print(f"updated {path.relative_to(ROOT)}")
    print(f"badges and installs point at github.com/{slug} ({branch})")


if __name__ == "__main__":
    main()
