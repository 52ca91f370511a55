# `make run` executes the series, `make test` runs every test. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test run lab bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(PY) -m pytest

run: setup
	$(PY) scripts/train_baseline.py

lab: setup
	$(PY) -m jupyter lab notebooks

clean:
	rm -rf build
