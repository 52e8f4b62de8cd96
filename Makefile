# aaad — two commands on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
AAAD   := $(VENV)/bin/aaad
STAMP  := $(VENV)/.installed
CONFIG ?= var/aaad.yaml
# Every third-party package of the test and dev environment, pinned: what
# `make test` ran with is what CI runs with. `make lock` refreshes it.
CONSTRAINTS := requirements/constraints.txt
EXTRAS      := postgres,mysql,test,dev

.PHONY: run test test-fast venv bench clean lint lock

$(STAMP): setup.cfg pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[$(EXTRAS)]'
	touch $(STAMP)

venv: $(STAMP)

## make run: set up .venv and var/, then serve on 127.0.0.1:1812/1813 (SQLite).
run: $(STAMP)
	$(AAAD) --config $(CONFIG) init --demo
	$(AAAD) --config $(CONFIG) serve

## make test: the whole suite (SQLite always; PostgreSQL/MariaDB when reachable),
## on TEST_WORKERS processes, a test file per worker at a time (the daemon
## fixtures are per file). About 200 s on 2 cores with two workers (420 s on a machine 2-3x slower).
TEST_WORKERS ?= 2
test: $(STAMP)
	@sh tests/ensure-tools.sh
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## make test-fast: tests/unit only: the pure core and wire code, with no daemon,
## no database server, no subprocess and no socket; on TEST_WORKERS processes
## (12 s on 2 cores; 35 s when they are busy).
test-fast: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) tests/unit $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run.py $(BENCH_ARGS)

## make lint: ruff, and mypy --strict (setup.cfg [mypy]) over the package.
lint: $(STAMP)
	$(PY) -m ruff check aaad tests benchmarks
	$(PY) -m mypy aaad

## make lock: re-resolve every dependency to its newest release in a fresh
## temporary venv and write the pins to requirements/constraints.txt. Run it,
## then `make test`, and commit the constraints file with what it changed.
lock:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --quiet --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install --quiet -e '.[$(EXTRAS)]'; \
	mkdir -p requirements; \
	{ echo "# Pinned versions of every third-party package that"; \
	  echo "# pip install -e '.[$(EXTRAS)]' installs (and pip itself), resolved on"; \
	  echo "# Python $$("$$tmp/venv/bin/python" -c 'import platform; print(platform.python_version())'). Written by 'make lock'; do not edit by hand."; \
	  echo "# Used as: pip install -c requirements/constraints.txt -e '.[$(EXTRAS)]'"; \
	  "$$tmp/venv/bin/python" -m pip freeze --all --exclude-editable \
	    | grep -v -i -E '^(#|aaad([ =@]|$$)|setuptools==|wheel==)' | LC_ALL=C sort -f -t= -k1,1; \
	} > "$$tmp/constraints.txt"; \
	mv "$$tmp/constraints.txt" $(CONSTRAINTS); \
	echo "wrote $(CONSTRAINTS) ($$(grep -c '==' $(CONSTRAINTS)) pins)"

clean:
	rm -rf $(VENV) var build dist *.egg-info
