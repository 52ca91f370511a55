# `make run` executes the series and builds the course site from it, `make test` runs every test.
# Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# `make run FAST=1` executes the series with the small defaults the tests use.
RUN_FLAGS := $(if $(filter 1,$(FAST)),--fast,)

.PHONY: setup test test-min run site serve lab sync urls bench baseline clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[test,site]"
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(PY) -m pytest

# The minimum versions: pyproject.toml's lower bounds (pinned in constraints/minimum.txt) on the
# oldest Python here that requires-python allows, in their own .venv-min: the unit tests and one
# notebook, in fast mode. Not the browser test: Voila 0.5's page never draws an explorer whose
# kernel has ipywidgets 7.7 (Colab draws it with its own frontend), and the browser side it checks
# runs under `make test`. Nor the site's tests: .venv-min does not install the `site` extra, which
# only builds pages. The first build downloads about 2.8 GB (torch 2.3 brings its CUDA
# libraries); pip's cache (PIP_CACHE_DIR, by default ~/.cache/pip) keeps them for the next build
# wherever the package index's responses allow caching. A rebuild happens only when
# pyproject.toml or the constraints change.
MIN_VENV := .venv-min
MIN_PY := $(MIN_VENV)/bin/python
MIN_STAMP := $(MIN_VENV)/.installed
# The notebook with the most version-dependent parts: checkpoints, the plateau rule, a widget.
MIN_NOTEBOOK := notebooks/03_reduce_lr_on_plateau.ipynb

$(MIN_STAMP): pyproject.toml constraints/minimum.txt
	rm -rf $(MIN_VENV)
	oldest=$$($(PYTHON) scripts/oldest_python.py) && $$oldest -m venv $(MIN_VENV)
	$(MIN_PY) -m pip install --quiet -e ".[test]" -c constraints/minimum.txt
	touch $(MIN_STAMP)

test-min: $(MIN_STAMP)
	$(MIN_PY) -m pytest tests $(MIN_NOTEBOOK) --ignore=tests/test_browser.py \
		--ignore=tests/test_site.py

# Executes every notebook into build/, then builds build/site/ from them.
run: setup
	$(PY) scripts/run_series.py $(RUN_FLAGS)

# Rebuilds build/site/ from the notebooks last executed into build/, running none of them.
site: setup
	$(PY) scripts/build_site.py

# Serves the site at http://localhost:8000 (Ctrl+C stops it).
serve:
	$(PY) -m http.server --directory build/site 8000

lab: setup
	$(PY) -m pip install --quiet -e ".[test,lab]"
	$(PY) -m jupyter lab notebooks

# Regenerate each .ipynb from its .py twin (the source of truth), with the tagged outputs.
sync: setup
	$(PY) scripts/sync_notebooks.py

# Point the Colab badges and bootstrap cells at [project.urls] Repository in pyproject.toml.
urls: setup
	$(PY) scripts/set_repo_url.py

bench: setup
	$(PY) benchmarks/bench_epoch.py

baseline: setup
	$(PY) scripts/train_baseline.py

clean:
	rm -rf build
