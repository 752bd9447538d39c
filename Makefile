# nano-org: the two Quick-start commands are `make run` and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install browser run test bench

install:
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .

# Debian chromium + chromedriver for the dash_duo browser tests (needs root, as on CI)
browser:
	@command -v chromedriver >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

run: install
	$(PYTHON) app.py

test: install browser
	$(PYTHON) -m pytest --headless -q -p no:cacheprovider

bench: install
	for script in bench/bench_*.py; do echo "== $$script"; $(PYTHON) $$script; done
