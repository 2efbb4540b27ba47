# Quick start: `make demo` runs the main job end to end; `make test` runs the suite (its long
# variants, marked `slow`, run with `make test-slow`; CI runs both).
# Both create the virtual environment (.venv) when it is missing or pyproject.toml changed.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT := false

.PHONY: venv demo ui test test-slow lint typecheck check bench clean openapi

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,scale]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m deployments.demo

# Reopen the demo's Prefect UI (same PREFECT_HOME, ./var/prefect) on http://127.0.0.1:4200.
ui: $(STAMP)
	$(BIN)/python -m deployments.local

test: $(STAMP) check
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy blocks tasks flows deployments nomi connector sandbox bench tests

check: lint typecheck

bench: $(STAMP)
	$(BIN)/python -m bench

openapi: $(STAMP)
	$(BIN)/python -m sandbox.openapi --write

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
