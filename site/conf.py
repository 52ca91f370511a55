"""Sphinx configuration of the course site. scripts/build_site.py copies this folder into
build/site-src/, writes the pages and _site.json beside it and runs Sphinx there."""

import json
from pathlib import Path

SITE = json.loads((Path(__file__).parent / "_site.json").read_text())

project = SITE["title"]
html_title = SITE["title"]
author = SITE["repository"].rstrip("/").split("/")[-2]       # the repository's owner
extensions = ["myst_nb", "sphinx.ext.githubpages"]   # githubpages: .nojekyll, for GitHub Pages
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# The notebooks arrive executed (make run, or the test run): render their outputs, run nothing.
nb_execution_mode = "off"
nb_output_stderr = "show"
myst_enable_extensions = ["dollarmath", "amsmath"]
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

# MathJax 2 from the site itself (build_site.py copies it into _static/mathjax), so that a page
# read offline draws its formulas and asks nothing of another server.
if (Path(__file__).parent / "_static" / "mathjax" / "MathJax.js").exists():
    mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
    mathjax2_config = {
        "messageStyle": "none",
        # MyST-NB marks the page tex2jax_ignore and its formulas with the class "math".
        "tex2jax": {"processClass": "tex2jax_process|mathjax_process|math|output_area",
                    "ignoreClass": "tex2jax_ignore|mathjax_ignore"},
        # The package ships the STIX-Web fonts only. MathJax's placeholder font points at
        # about:blank, which Chromium reports as an error: a local name asks for nothing.
        "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": "STIX-Web",
                     "imageFont": None,
                     "styles": {"@font-face": {"font-family": "MathJax_Blank",
                                               "src": "local('MathJax_Blank')"}}}}

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_favicon = "_static/favicon.svg"
html_context = {"default_mode": "light"}      # the figures are drawn on white
html_theme_options = {
    "repository_url": SITE["repository"],
    "repository_branch": "main",
    "path_to_docs": "notebooks",
    "use_repository_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "show_toc_level": 2,
    "home_page_in_toc": True,
}
if SITE["fast"]:
    html_theme_options["announcement"] = (
        "Fast mode: these pages show a run on small subsets with few epochs (make run FAST=1); "
        "make run gives the course's results.")
