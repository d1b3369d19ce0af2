# Every target works on a fresh clone with Python 3.11 and make: the first one that needs
# the virtualenv creates .venv at the repo root and installs the project into it.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SIZE ?= 1m
# e.g. BENCH_ARGS="--include-100m" or "--repeat 5 --skip funnel"
BENCH_ARGS ?=
TEST_WORKERS ?= auto

# Prefect runs without a server (its temporary API) in demo and tests.
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
export PREFECT_LOGGING_LEVEL ?= WARNING
export RETENTIONEERING_NO_TRACK := 1

.PHONY: demo test lint format bench clean chromium venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Demo: a local, git-ignored PII salt is created once when CJM_PII_SALT is not set.
demo: $(STAMP)
	@test -n "$$CJM_PII_SALT" || test -f data/.pii_salt || $(BIN)/python -c "import secrets; print(secrets.token_hex(32))" > data/.pii_salt
	CJM_PII_SALT="$${CJM_PII_SALT:-$$(cat data/.pii_salt)}" $(BIN)/cjm demo

# Headless Chromium for the report test: installed from Debian's packages when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will be skipped"; \
	    else echo "warning: chromium not found (apt-get install chromium); browser tests will be skipped"; fi; }

# One worker per core; --dist loadscope keeps a module's tests (and its module-scoped
# fixtures, such as the crash test's nights) on one worker. TEST_WORKERS=0 runs serially.
test: $(STAMP) chromium
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadscope

lint: $(STAMP)
	$(BIN)/ruff check cjm_analytics pipelines tests bench
	$(BIN)/ruff format --check cjm_analytics pipelines tests bench
	$(BIN)/mypy cjm_analytics

format: $(STAMP)
	$(BIN)/ruff format cjm_analytics pipelines tests bench
	$(BIN)/ruff check --fix cjm_analytics pipelines tests bench

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py --size $(SIZE) $(BENCH_ARGS)

clean:
	rm -rf data/lake data/warehouse data/reports data/runs data/demo/raw .prefect
