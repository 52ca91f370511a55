# `make run` executes the series, `make test` runs every test. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# `make run FAST=1` executes the series with the small defaults the tests use.
RUN_FLAGS := $(if $(filter 1,$(FAST)),--fast,)

.PHONY: setup test run lab sync urls bench baseline clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(PY) -m pytest

run: setup
	$(PY) scripts/run_series.py $(RUN_FLAGS)

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
