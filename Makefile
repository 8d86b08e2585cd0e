# Everything runs from .venv, built from uv.lock by scripts/bootstrap.sh (which finds or installs uv).
SHELL := /bin/bash
PYTHON ?= python3
VENV_PY := .venv/bin/python

.PHONY: venv run reset test lint chaos bench clean distclean

venv:
	@PYTHON=$(PYTHON) bash scripts/bootstrap.sh

run: venv
	$(VENV_PY) -m infra.local.run

# Wipes every user, balance and message `make run` kept in .data/ (or LEDGERFLOW_LOCAL_DATA_DIR);
# refused while a `make run` uses it.
reset: venv
	.venv/bin/ledgerflow local reset --yes

test: venv
	$(VENV_PY) -m pytest -q -p no:cacheprovider

# All three checks run; the target fails if any of them does.
lint: venv
	@status=0; \
	.venv/bin/ruff check . || status=1; \
	.venv/bin/ruff format --check . || status=1; \
	.venv/bin/mypy || status=1; \
	exit $$status

chaos: venv
	$(VENV_PY) -m tests.chaos

# The load benchmark on a system of its own; prints figures, writes bench/results/<timestamp>.json|png.
# Pass flags with BENCH_ARGS, e.g. make bench BENCH_ARGS="--settle-only --commands 20000"
bench: venv
	$(VENV_PY) -m bench $(BENCH_ARGS)

# Tool caches and server logs; `distclean` also drops .venv and the DynamoDB Local download.
clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis .cache/logs
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf .venv .cache
