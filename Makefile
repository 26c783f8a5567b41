# Two commands for a fresh machine: `make run` (the main job) and `make test` (the suite).
# Each installs what it needs (venv, pip, npm) and is idempotent.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CHROMIUM := /usr/bin/chromium
FAKECLOCK := build/libfakeclock.so
FAR_FUTURE := 2031-02-28 23:59:00
# Two workers, one per core: the main pass keeps both busy (measured 96-100 %), so a third would
# only make timing tests flaky; a module (or one test of tests/conftest.py's SPLIT_MODULES) is one
# unit of work.
WORKERS := -n 2 --dist loadgroup

.PHONY: setup browser run test lint bench compile

setup: $(PY_STAMP) $(NODE_STAMP)

# The browser tests drive Debian's chromium through Playwright; nothing downloads a browser.
# fonts-nanum: without a Korean font chromium draws the page's Korean labels as empty boxes.
BROWSER_PACKAGES := chromium fonts-nanum
NANUM := /usr/share/fonts/truetype/nanum

browser: $(CHROMIUM) $(NANUM)

$(CHROMIUM) $(NANUM):
	apt-get install -y --no-install-recommends $(BROWSER_PACKAGES) || (apt-get update && apt-get install -y --no-install-recommends $(BROWSER_PACKAGES))

$(PY_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: setup
	$(BIN)/provenance serve

# Tests never depend on the date: those that read a clock (marker `clock`) run a second time with
# every process's wall clock in the far future (tools/fakeclock), on the last minute of a month.
$(FAKECLOCK): tools/fakeclock/fakeclock.c
	mkdir -p $(dir $@)
	cc -shared -fPIC -O2 -Wall -o $@ $< -ldl

# Bytecode caches written (__pycache__, ignored by git) even where the environment says not to
# (PYTHONDONTWRITEBYTECODE): the suite starts many Python processes (serve and its children, the
# CLI, benchmarks), and each compiled the project's modules again, ~0.5 s of CPU apiece.
test: export PYTHONDONTWRITEBYTECODE =
test: setup browser $(FAKECLOCK)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(WORKERS)
	tools/fakeclock/run $(FAKECLOCK) '$(FAR_FUTURE)' $(BIN)/python -m pytest $(WORKERS) -m 'clock and not browser' -q -p no:cacheprovider

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

compile: setup
	$(BIN)/provenance compile

bench: setup
	$(BIN)/python bench/gas.py
	$(BIN)/python bench/index.py
	$(BIN)/python bench/api_write.py
	$(BIN)/python bench/query.py
	$(BIN)/python bench/node_kills.py
