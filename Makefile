# ecrm: two commands on a fresh machine with Python 3.11, git and make.
#   make demo   install, synthesize a shop, train, score, start the server in the background
#   make test   install, run the test suite (slow tests excluded; `make test-all` includes them)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.ecrm-installed
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export BENTOML_DO_NOT_TRACK := true
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: install install-spark demo test test-all test-servers bench bench-scale loadtest stop clean lock

install: $(STAMP)

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "ecrm needs Python 3.11, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Reinstall only when the lock or the project metadata changed.
$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

# The Spark offline store is an optional extra (pyspark, ~0.5 GB); `make install` syncs without it again
# whenever the lock changes, so re-run this after such an install.
install-spark: install
	$(UV) sync --frozen --compile-bytecode --extra spark --python $(PYTHON)

demo: install
	$(VENV)/bin/ecrm demo

test: install
	$(VENV)/bin/python -m pytest

test-all: install
	$(VENV)/bin/python -m pytest -m ""

# Only the tests against real local servers (Redis, PostgreSQL, Spark; each skipped when its binary is missing).
test-servers: install
	$(VENV)/bin/python -m pytest -m servers

bench: install
	$(VENV)/bin/python -m benchmarks.demo_bench

# synthesize 1M customers (CUSTOMERS=100000,1000000 for a list), build features, train, score; time + peak RSS per stage
CUSTOMERS ?= 1000000
bench-scale: install
	$(VENV)/bin/python -m benchmarks.scale_bench --customers $(CUSTOMERS)

loadtest: install
	$(VENV)/bin/python -m benchmarks.loadtest

stop:
	@$(VENV)/bin/python -c 'from configs.settings import load_settings; from features.storage import Workspace; from serving.process import stop_background; print("stopped" if stop_background(Workspace(load_settings().workspace)) else "no server running")'

lock: | $(UV)
	$(UV) lock

clean: stop
	rm -rf .ecrm
