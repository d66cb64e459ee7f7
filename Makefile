# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Ingest the sample initiative (24 months of partner files) into a fresh demo database.
demo: $(STAMP)
	CI_PIPELINE_HOME=$(CURDIR)/.demo $(BIN)/ci-pipeline demo --reset

## Lint, type-check and run every test.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
