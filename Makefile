# Two commands on a fresh machine: `make run` (the main job on the embedded default) and `make test`.
SHELL := /bin/bash
# The first interpreter that runs and is >= 3.11 (pyenv shims may exist without a usable version).
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV ?= .venv
BIN := $(VENV)/bin
PG_VERSION ?= $(shell ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)

.PHONY: run test install install-test bytecode services browser rabbitmq lint sample clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: no Python >= 3.11 found; run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependencies change; the install is editable, so code changes need nothing.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# Bytecode for reprint's own modules, as a regular (non-editable) install compiles it: without it every command
# would compile them again (where PYTHONDONTWRITEBYTECODE is set, on every run), some 0.2 s of CPU. Only what
# changed since the last time is compiled.
bytecode:
	@$(BIN)/python -m compileall -q pipeline workers >/dev/null

install: $(VENV)/.installed bytecode
install-test: $(VENV)/.installed-test bytecode

## run: ingest the sample corpus into reprint.db and print the cluster report
run: install
	$(BIN)/reprint ingest config/sample; status=$$?; $(BIN)/reprint clusters && exit $$status

## services: start Redis and PostgreSQL on 127.0.0.1 if they are not answering
services:
	@if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then \
	  if command -v redis-server >/dev/null; then \
	    echo "starting redis-server"; \
	    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null; \
	  else echo "warning: Redis is not answering on 127.0.0.1:6379 and redis-server is not installed" >&2; fi; \
	fi
	@if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
	  if command -v pg_ctlcluster >/dev/null && [ -n "$(PG_VERSION)" ]; then \
	    echo "starting PostgreSQL $(PG_VERSION)"; \
	    pg_ctlcluster --skip-systemctl-redirect $(PG_VERSION) main start || true; \
	  else echo "warning: PostgreSQL is not answering on 127.0.0.1:5432 and no cluster to start" >&2; fi; \
	fi
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && break; sleep 0.5; done; true

## browser: Debian's Chromium for the web UI's browser tests (Playwright drives /usr/bin/chromium; no browser download)
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium"; \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; \
	  else echo "warning: /usr/bin/chromium is missing (sudo apt-get install chromium): the browser tests will be skipped" >&2; fi; \
	fi

## rabbitmq: Debian's RabbitMQ server for the broker tests (each test starts a private node; none is left running)
rabbitmq:
	@if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing rabbitmq-server"; \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server >/dev/null; \
	  else echo "warning: rabbitmq-server is missing (sudo apt-get install rabbitmq-server): the RabbitMQ tests will be skipped" >&2; fi; \
	fi

lint: install-test
	$(BIN)/ruff check .

## test: install the test dependencies, the browser and RabbitMQ, start the services, lint, run the whole suite
## (in TEST_JOBS processes: most of the slow tests wait on workers, brokers and timeouts, not on a core)
TEST_JOBS ?= 2
test: install-test services browser rabbitmq
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(TEST_JOBS)

## sample: regenerate the committed sample corpus
sample: install
	$(BIN)/python config/sample/make_sample.py

clean:
	rm -rf $(VENV) reprint.db reprint.db-wal reprint.db-shm .pytest_cache .ruff_cache
