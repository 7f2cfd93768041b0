# CIRIS Billing: `make run` starts the service, `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# localstripe (the fake Stripe the tests pay through) lives in its own virtualenv.
LOCALSTRIPE_VENV ?= .venv-localstripe
LOCALSTRIPE_PORT ?= 8420
export DATABASE_URL_TEST ?= postgres://postgres@127.0.0.1:5432/billing

.PHONY: help venv chromium deploy-tools localstripe-venv localstripe run serve test test-pgbouncer test-deploy lint docs format migrate bench bench-instructions clean

help:
	@echo "make run    - install, migrate and serve on http://127.0.0.1:8000 (SQLite, no other service needed)"
	@echo "make test   - run the whole suite against PostgreSQL (DATABASE_URL, default $(DATABASE_URL_TEST))"
	@echo "make serve  - production server: gunicorn (gunicorn.conf.py) against DATABASE_URL; needs DJANGO_SECRET_KEY"
	@echo "make bench  - the production configuration (gunicorn, Redis DB 9, JSON logs) under wrk against a bare DRF app (writes bench/RESULTS.md)"
	@echo "make bench-instructions - the same two configurations in callgrind: instructions per request (load-proof)"
	@echo "make lint   - ruff check, ruff format --check, mypy and the import-cycle check"
	@echo "make docs   - build the manual (docs/, mkdocs.yml) into site/; any warning or broken link fails it"
	@echo "make test-pgbouncer - the suite with every connection through PgBouncer (transaction pooling, DB_PGBOUNCER=1)"
	@echo "make test-deploy    - build the Docker image, run docker-compose.yml and docker-compose.scale.yml and test them"
	@echo "make localstripe - a fake Stripe API on http://127.0.0.1:$(LOCALSTRIPE_PORT) (see docs/purchases.md)"

$(BIN)/.installed: requirements.txt requirements-dev.txt requirements-docs.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(BIN)/.installed

# The admin's browser test drives Debian's Chromium through Playwright, which downloads no
# browser here. Installed once (as root, as on CI) when missing.
chromium:
	@command -v chromium >/dev/null || { \
	  echo "Installing chromium and chromium-driver for the browser test..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

# The scale-out test (tests/test_scale_out.py) runs Debian's pgbouncer, haproxy and (unless one
# answers on 6379) redis-server on loopback ports. Installed once (as root, as on CI) when missing.
deploy-tools:
	@command -v pgbouncer >/dev/null && command -v haproxy >/dev/null && command -v redis-server >/dev/null || { \
	  echo "Installing pgbouncer, haproxy and redis-server for the scale-out test..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer haproxy redis-server >/dev/null; }

$(LOCALSTRIPE_VENV)/.installed: requirements-localstripe.txt
	@test -x $(LOCALSTRIPE_VENV)/bin/python || $(PYTHON) -m venv $(LOCALSTRIPE_VENV)
	$(LOCALSTRIPE_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-localstripe.txt
	@touch $@

localstripe-venv: $(LOCALSTRIPE_VENV)/.installed

# For trying purchases locally: run this, then `make run` with the STRIPE_* variables of docs/purchases.md.
localstripe: localstripe-venv
	$(LOCALSTRIPE_VENV)/bin/python scripts/localstripe_server.py --port $(LOCALSTRIPE_PORT)

# The embedded default: SQLite in ./db.sqlite3, DEBUG on, console logs, loopback only.
# .env (read by settings, git-ignored) makes the same setup apply to manage.py commands.
.env:
	printf 'DJANGO_DEBUG=1\nLOG_FORMAT=console\n' > .env

run: venv .env
	@echo "Applying migrations (the first run builds dj-stripe's tables and takes about a minute)..."
	$(BIN)/python manage.py migrate --no-input
	@echo
	@echo "Create an API key for your agent (printed once, on the last line):"
	@echo "  $(BIN)/python manage.py create_api_key --name my-agent --permissions read,write"
	@echo "Then: curl -H 'X-API-Key: <key>' -H 'Content-Type: application/json' \\"
	@echo "        -d '{\"oauth_provider\":\"oauth:google\",\"external_id\":\"me@example.com\"}' \\"
	@echo "        http://127.0.0.1:8000/v1/billing/credits/check"
	@echo "API docs: http://127.0.0.1:8000/docs"
	@echo "Back office: $(BIN)/python manage.py createsuperuser, then http://127.0.0.1:8000/admin/"
	@echo
	$(BIN)/python manage.py runserver 127.0.0.1:8000

# Production-style: DEBUG off, JSON logs, gunicorn with gunicorn.conf.py (workers from the
# CPU count, graceful shutdown). Set DATABASE_URL, DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS.
serve: venv
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/gunicorn -c gunicorn.conf.py

# Not part of `make test`: a throughput benchmark of the production configuration (about 4
# minutes; Redis on 127.0.0.1:6379 DB 9, BENCH_REDIS_URL to change). See bench/run.py.
bench: venv
	$(BIN)/python bench/run.py

# The same two configurations, counted in instructions per request (valgrind's callgrind):
# the same figure on a busy machine as on a quiet one. About 5 minutes.
bench-instructions: venv
	$(BIN)/python bench/instructions.py

# pytest-django creates (and drops) the test database itself on the PostgreSQL server.
test: export DATABASE_URL ?= $(DATABASE_URL_TEST)
# The Stripe tests start one localstripe (from $(LOCALSTRIPE_VENV)) on a free loopback port.
test: venv chromium deploy-tools localstripe-venv
	$(BIN)/pytest $(PYTEST_ARGS)

# The same suite through a host PgBouncer (scripts/test_pgbouncer.py says what it skips).
test-pgbouncer: export DATABASE_URL ?= $(DATABASE_URL_TEST)
test-pgbouncer: venv chromium deploy-tools localstripe-venv
	$(BIN)/python scripts/test_pgbouncer.py $(PYTEST_ARGS)

# The Docker image and both compose files under a Docker Engine (scripts/test_deploy.sh:
# installs and starts one if needed; fails on CI=true where none can start). A few minutes.
test-deploy: venv
	PYTHON=$(BIN)/python scripts/test_deploy.sh

# ruff, mypy (django-stubs; services, selectors and views: mypy.ini; --strict on the request
# path: billing_site, ledger, charges, accounts/auth.py) and the import check
# (no cycles, billing_site imports no app: scripts/check_imports.py).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --strict billing_site/ ledger/ charges/ accounts/auth.py
	$(BIN)/python scripts/check_imports.py

# The manual as a site (MkDocs, strict: a broken link, a missing anchor or a page left out of
# the nav fails the build). tests/test_docs_links.py checks README.md's links too.
docs: venv
	$(BIN)/mkdocs build --strict --quiet -d site

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(LOCALSTRIPE_VENV) db.sqlite3 staticfiles
