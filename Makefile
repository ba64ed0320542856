# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv if needed.
# `make demo` installs only what the demo runs (krtlab and its deploy extra); `make test` installs
# the test extra (JupyterLab, Playwright, ...) and the system packages the suite needs
# (.ci/system-packages: Graphviz, Chromium, openssl; with apt as root, else it prints the command).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench mutate install system-packages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.demo-installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[deploy]'
	touch $@

$(VENV)/.test-installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.demo-installed

install: $(VENV)/.test-installed

system-packages:
	.ci/system-packages

demo: $(VENV)/.demo-installed
	$(BIN)/python -m krtlab.demo

# the house rules (pyproject.toml): ruff, mypy (strict for spec, bundle, protos), the stage
# layering (lint-imports) and pytest with every warning an error
test: $(VENV)/.test-installed system-packages
	$(BIN)/ruff check krtlab tests bench templates/*.py
	$(BIN)/ruff format --check krtlab tests bench templates/*.py
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest

lint: $(VENV)/.test-installed
	$(BIN)/ruff check krtlab tests bench templates/*.py
	$(BIN)/ruff format --check krtlab tests bench templates/*.py
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(VENV)/.test-installed
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/validate_build.py
	$(BIN)/python bench/inprocess.py
	$(BIN)/python bench/runtime.py
	$(BIN)/python bench/nats_client.py

# mutation testing of the core (not part of `make test`: tens of minutes); GROUP=spec-core runs one
# group of tests/mutation/groups.toml, ARGS="--fresh" forgets the cached results
mutate: $(VENV)/.test-installed
	$(BIN)/python tests/mutation/mutate.py $(if $(GROUP),--group $(GROUP)) $(ARGS)

clean:
	rm -rf $(VENV) .cache build .pytest_cache .ruff_cache .mypy_cache .import_linter_cache .hypothesis
