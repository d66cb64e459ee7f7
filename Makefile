# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Ingest the sample initiative (24 months of partner files) into a fresh demo database.
demo: $(STAMP)
	CI_PIPELINE_HOME=$(CURDIR)/.demo $(BIN)/ci-pipeline demo --reset

## Lint and type-check.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The fast tier runs on every core (pytest-xdist), a module per worker so a module's fixtures
# are built once; the slow tier in one process, whose tests share one Prefect test server.
PARALLEL := -n auto --dist loadscope

## Lint, type-check and run every test (what CI runs): the fast tier, then the slow one.
test: lint
	$(BIN)/pytest -m "not slow" $(PARALLEL)
	$(BIN)/pytest -m slow

## Every test but the slow end-to-end ones (Prefect servers, the served chain, `serve`); no lint.
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow" $(PARALLEL)

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
