# The two commands: `make demo` and `make test`. Everything they need is installed from here.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/animedash
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1
export TEST_DATABASE_URL TEST_REDIS_URL

.PHONY: install demo test lint format clean browser tools loadtools

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# Embedded default: SQLite file, local-memory cache, no broker. Seeds 90 simulated days on first
# run (the real ETL against the built-in fake Jikan) and, on a later day, the days missing up to
# today, then serves http://127.0.0.1:8000/.
demo: install
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 LOG_LEVEL=WARNING $(PY) manage.py seed_demo --days 90 --top-up
	DEBUG=1 $(PY) manage.py runserver 127.0.0.1:8000

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	# The django-stubs plugin loads the settings; the embedded defaults are enough for it.
	DEBUG=1 DATABASE_URL= REDIS_URL= CELERY_BROKER_URL= $(VENV)/bin/mypy .
	# Known vulnerabilities in the pinned requirements (asks PyPI's advisory data).
	$(VENV)/bin/pip-audit -r requirements.txt -r requirements-dev.txt --progress-spinner off

# The browser tests drive Debian's chromium (Playwright never downloads a browser here).
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# promtool (Debian's prometheus package) checks and unit-tests deploy/prometheus in the suite.
tools:
	command -v promtool >/dev/null || (apt-get update && apt-get install -y --no-install-recommends prometheus)

# `manage.py loadtest` drives gunicorn with wrk (Debian's package).
loadtools:
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)

# The whole suite against real PostgreSQL and Redis, with the coverage gate from pyproject.toml.
test: install browser tools loadtools
	@$(PY) -m devtools.checkservices
	$(MAKE) --no-print-directory lint
	DEBUG=0 SECRET_KEY=test-only-secret-key-not-for-production-use-0123456789abcdef \
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) CELERY_BROKER_URL= \
	ALLOWED_HOSTS=testserver,127.0.0.1,localhost \
	$(VENV)/bin/pytest -n 2 $(PYTEST_ARGS)
	# The selectors must give the same numbers, the ETL's load the same rows, and alerts fire and send alike
	# on the embedded SQLite: their tests again, in memory (one process: xdist would turn the in-memory
	# database into files named after it).
	DEBUG=0 SECRET_KEY=test-only-secret-key-not-for-production-use-0123456789abcdef \
	DATABASE_URL=sqlite://:memory: REDIS_URL= CELERY_BROKER_URL= \
	$(VENV)/bin/pytest analytics/tests/test_selectors.py analytics/tests/test_selectors_reference.py analytics/tests/test_feed_moves.py \
		snapshots/tests/test_services.py alerts/tests/test_evaluation.py alerts/tests/test_delivery.py --no-cov -q

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .coverage .coverage.* .mypy_cache .ruff_cache .pytest_cache staticfiles
