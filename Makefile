# DBX Gateway: `make run` serves, `make test` tests; both set everything up
# from nothing (venv, local PostgreSQL stack with PgBouncer, migrations, demo
# data) and are idempotent.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
REPLICAS ?= 2
DEMO_ORG ?= skyline-airways
PYTEST_ARGS ?=

.PHONY: all setup venv stack migrate seed graphiql run test unit lint bench tokens down clean

all: test

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

stack:
	deploy/local/stack up --replicas $(REPLICAS)

migrate: venv stack
	$(BIN)/dbx-gateway migrate

seed: migrate
	$(BIN)/dbx-gateway seed --if-empty
	$(BIN)/dbx-gateway maintain

# GraphiQL's pinned files from the npm registry (the dev IDE page loads no CDN)
graphiql: venv
	$(BIN)/python -m gateway.api.graphiql

setup: seed graphiql

tokens: setup
	@echo "Dev tokens for $(DEMO_ORG) (Authorization: Bearer <token>):"
	@for role in viewer analyst operator admin; do \
	  printf '  %-9s %s\n' $$role "$$($(BIN)/dbx-gateway token --org $(DEMO_ORG) --role $$role)"; \
	done

run: tokens
	@echo "Serving on http://127.0.0.1:8000/graphql"
	$(BIN)/dbx-gateway serve --host 127.0.0.1 --port 8000

test: setup
	$(BIN)/pytest -q $(PYTEST_ARGS)

# The pure cores alone: no database, no stack (promtool comes with `make stack`).
unit: venv
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench.run

down:
	deploy/local/stack down

clean: down
	rm -rf $(VENV) *.egg-info
