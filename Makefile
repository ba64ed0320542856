# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m krtlab.demo

test: $(STAMP)
	$(BIN)/ruff check krtlab tests bench templates/*.py
	$(BIN)/ruff format --check krtlab tests bench templates/*.py
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check krtlab tests bench templates/*.py
	$(BIN)/ruff format --check krtlab tests bench templates/*.py

bench: $(STAMP)
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/validate_build.py
	$(BIN)/python bench/inprocess.py
	$(BIN)/python bench/runtime.py

clean:
	rm -rf $(VENV) .cache build .pytest_cache .ruff_cache .hypothesis
