# nano-org: the two Quick-start commands are `make run` and `make test`.
# Everything installs into a project-local virtual environment (.venv, ignored by git), never into
# the system Python (Debian and Ubuntu refuse that: "externally managed").
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser services run dev test bench

$(PYTHON):
	python3 -m venv $(VENV)

$(STAMP): $(PYTHON) requirements.txt pyproject.toml
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -r requirements.txt
	$(PYTHON) -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Debian chromium + chromedriver for the dash_duo browser tests (needs root, as on CI)
browser:
	@command -v chromedriver >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

# Debian PostgreSQL + Redis for the scale-out suite (tests/scaleout starts private instances of them)
services:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server)

# Production WSGI server (gunicorn, threads); the bank is prepared/seeded once before serving.
run: install
	$(VENV)/bin/gunicorn -c gunicorn.conf.py app:server

# Flask's debug server, for development only.
dev: install
	$(PYTHON) app.py

test: install browser services
	$(PYTHON) -m pytest --headless -q -p no:cacheprovider

bench: install
	for script in bench/bench_*.py; do echo "== $$script"; $(PYTHON) $$script; done
