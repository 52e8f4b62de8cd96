# aaad — two commands on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
AAAD   := $(VENV)/bin/aaad
STAMP  := $(VENV)/.installed
CONFIG ?= var/aaad.yaml

.PHONY: run test venv bench clean lint

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[postgres,mysql,test]'
	touch $(STAMP)

venv: $(STAMP)

## make run: set up .venv and var/, then serve on 127.0.0.1:1812/1813 (SQLite).
run: $(STAMP)
	$(AAAD) --config $(CONFIG) init --demo
	$(AAAD) --config $(CONFIG) serve

## make test: the whole suite (SQLite always; PostgreSQL/MariaDB when reachable).
test: $(STAMP)
	@sh tests/ensure-tools.sh
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run.py $(BENCH_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check aaad tests

clean:
	rm -rf $(VENV) var build *.egg-info
