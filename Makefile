# The two commands of the README: `make demo` and `make test` (and `make docs`). Each does its own set-up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck wheel-check docs pytest venv clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[hiredis,test,dev,docs]'
	touch $@

venv: $(BIN)/.installed

demo: venv
	@scripts/ensure-redis.sh --optional
	$(BIN)/python examples/demo.py

test: venv
	@scripts/ensure-redis.sh
	$(MAKE) --no-print-directory lint typecheck wheel-check docs pytest

LINTED := rediscache tests examples $(wildcard bench)

lint: venv
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: venv
	$(BIN)/mypy --strict rediscache

wheel-check: venv
	scripts/check-wheel.sh $(BIN)/python

# The documentation site (mkdocs.yml, docs/), API reference from the docstrings; --strict: a broken
# link or a missing reference fails the build. Output in site/.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Parallel workers: most of the suite's time is waiting (servers, timeouts, factories that sleep), so
# three workers on two cores take half the time of one. Each worker starts its own servers; a test
# file runs whole on one worker. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 3

pytest: venv
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

clean:
	rm -rf $(VENV) build dist site .pytest_cache .mypy_cache .ruff_cache

# `make bench`: the benchmark of bench/README.md, with its own set-up (bench/.venv with the peer
# libraries, throwaway Redis servers). `make bench-quick`: the CI-sized run.
BENCH_VENV ?= bench/.venv
BENCH_BIN  := $(BENCH_VENV)/bin

.PHONY: bench bench-quick bench-venv

$(BENCH_BIN)/.installed: pyproject.toml bench/requirements.txt
	test -x $(BENCH_BIN)/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/python -m pip install --quiet --upgrade pip
	$(BENCH_BIN)/python -m pip install --quiet -e '.[hiredis]' -r bench/requirements.txt
	touch $@

bench-venv: $(BENCH_BIN)/.installed

bench: bench-venv
	@scripts/ensure-redis.sh
	$(BENCH_BIN)/python -m bench.run

bench-quick: bench-venv
	@scripts/ensure-redis.sh
	$(BENCH_BIN)/python -m bench.run --quick
