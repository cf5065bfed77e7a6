# The project's commands. `make run` and `make test` are the front door (README).
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: setup run test lint format

## The job end to end on the local stack, invoked as Cloud Scheduler would.
run: stack
	$(PYTHON) -m tools.demo

setup: $(VENV)/.installed .system-deps

# System packages (PostgreSQL, libfaketime); quick when they are already there.
.system-deps: tools/install-system-deps.sh
	tools/install-system-deps.sh
	@touch $@

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
	@touch $@

## Every test: lint, then unit, integration, database and acceptance tiers.
test: setup lint
	$(PYTHON) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: stack stack-down

## The local Supabase stand-in: PostgreSQL on 54322, the gateway on 54321, keys in .env.local.
stack: setup
	$(PYTHON) -m local_supabase.stack up

stack-down: $(VENV)/.installed
	$(PYTHON) -m local_supabase.stack down

.PHONY: verify-deployment

## A deployment checked end to end: the local one by default, a deployed one with
## FUNCTION_URL, COMPLIANCE_URL, SUPABASE_SECRET_KEY (and SUPABASE_DB_URL) set.
verify-deployment: setup
	$(PYTHON) -m tools.verify_deployment

.PHONY: bench

## The benchmarks: print their figures and write bench/results.json.
bench: setup
	$(PYTHON) -m bench
