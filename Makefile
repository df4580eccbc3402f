# crm-sync: `make run` serves the embedded default on :8000; `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup run test lint typecheck pytest bench fuzz clean screenshots

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The CLI is not on the PATH (it lives in the .venv): say how to call it before serving.
run: setup
	@echo "crm-sync: serving http://$(HOST):$(PORT) (API docs: http://$(HOST):$(PORT)/docs)"
	@echo "The command line, from another shell in this folder (same .env, same database):"
	@echo "    $(BIN)/crm-sync --help"
	@echo "or once per shell: source $(BIN)/activate   (then: crm-sync --help)"
	$(BIN)/crm-sync serve --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

# The whole suite: lint, types, then every test on SQLite and on PostgreSQL.
test: lint typecheck pytest

# The README's dashboard pictures (docs/ui-*.png), taken by the browser tests.
screenshots: setup
	UI_SCREENSHOTS=docs $(BIN)/pytest -q tests/ui/test_pages.py -k sqlite

# The accept benchmark drives the server with wrk (Debian's package): installed here when missing.
bench: setup
	@command -v wrk >/dev/null || { echo "installing wrk"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq wrk >/dev/null || \
	  { $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq wrk >/dev/null; }; }
	$(BIN)/python -m bench $(BENCH)

# Schemathesis over /openapi.json of a running server, with an ops key and a sync key.
fuzz: setup
	$(BIN)/python -m fuzz

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache crm_sync.db*
