# The two commands of the README: `make demo` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck wheel-check pytest venv clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[hiredis,test,dev]'
	touch $@

venv: $(BIN)/.installed

demo: venv
	@scripts/ensure-redis.sh --optional
	$(BIN)/python examples/demo.py

test: venv
	@scripts/ensure-redis.sh
	$(MAKE) --no-print-directory lint typecheck wheel-check pytest

lint: venv
	$(BIN)/ruff check rediscache tests examples bench
	$(BIN)/ruff format --check rediscache tests examples bench

typecheck: venv
	$(BIN)/mypy --strict rediscache

wheel-check: venv
	scripts/check-wheel.sh $(BIN)/python

pytest: venv
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
