# The two commands of the README: `make run` and `make test`. Each sets up .venv as needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CHROMIUM := /usr/bin/chromium

.PHONY: run test install graphiql-assets lint clean

$(BIN)/imap2api: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

# GraphiQL's React/GraphiQL files come from the npm registry (pinned, hash-checked), not from git.
# Skipped when present; without them /graphql says how to fetch them, the rest works.
install: $(BIN)/imap2api
	@$(BIN)/python imap2api/graphiql/fetch_assets.py || \
	  echo "warning: GraphiQL assets not fetched (retry: make graphiql-assets)" >&2

graphiql-assets: $(BIN)/imap2api
	$(BIN)/python imap2api/graphiql/fetch_assets.py

## Run the service on the embedded default: SQLite in ./data, in-process worker.
run: install
	$(BIN)/imap2api serve --host $(HOST) --port $(PORT)

## Run the whole test suite (needs dovecot-imapd and chromium; uses PostgreSQL and Redis when they answer).
test: install
	@command -v dovecot >/dev/null || [ -x /usr/sbin/dovecot ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing dovecot-imapd for the IMAP tests"; \
	    (apt-get install -y -qq dovecot-imapd >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y -qq dovecot-imapd >/dev/null)); \
	  else echo "dovecot is not installed: IMAP tests will be skipped (apt-get install dovecot-imapd)"; fi; }
	@# The browser tests (tests/*_browser.py) drive Debian's chromium at $(CHROMIUM) through Playwright
	@# (tests/support/browser.py); without either they skip, which pytest reports only in its summary.
	@[ -x $(CHROMIUM) ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium for the browser tests"; \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || \
	     (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)); \
	  else echo "NOTICE: $(CHROMIUM) is missing: the browser tests will be skipped (apt-get install chromium)" >&2; fi; }
	@$(BIN)/python -c 'import playwright.sync_api' 2>/dev/null || \
	  echo "NOTICE: playwright is not installed in $(VENV): the browser tests will be skipped (make clean install)" >&2
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## ruff (lint and format) and mypy; .ci/run runs this before the tests.
lint: install
	@# Pinned: a newer ruff may format differently, a newer mypy may find new things.
	$(BIN)/pip install --quiet 'ruff==0.17.6' 'mypy==2.4.1'
	$(BIN)/ruff check imap2api tests bench
	$(BIN)/ruff format --check imap2api tests bench
	$(BIN)/mypy imap2api

clean:
	rm -rf $(VENV) .pytest_cache *.egg-info
