# Quick start: `make demo` then `make test`. Everything installs into .venv and .cache (ignored).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
JARS_STAMP := .cache/spark-jars/.verified
DEMO_DS ?= $(shell date -u +%Y-%m-%d)
PYTEST_ARGS ?=

export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(PY))
export PATH := $(abspath $(VENV))/bin:$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: help setup demo test test-fast bench lint lock clean

help:
	@echo "make demo   - set up (venv, pinned packages, Delta jars, tables) and ingest the demo data"
	@echo "make test   - set up, then run the whole test suite"
	@echo "make bench  - benchmarks under bench/ (JSON lines)"
	@echo "make lint   - ruff + mypy"
	@echo "make lock   - regenerate requirements/*.lock from requirements/platform.in"

$(STAMP): requirements/torch.lock requirements/platform.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip==25.3"
	@# torch first; then everything else exactly as locked and without a resolver run, because
	@# petastorm's setuptools<70 pin contradicts torch's setuptools>=77 (see README).
	$(PIP) install --quiet -r requirements/torch.lock
	$(PIP) install --quiet --no-deps -r requirements/platform.lock
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	@test -d $(VENV)/lib/python3.11/site-packages/pyspark/jars || \
	  (echo "pyspark's jars are missing (pyspark-client overwrote pyspark?)" >&2; exit 1)
	@touch $(STAMP)

$(JARS_STAMP): $(STAMP) requirements/jars.lock
	$(PY) -m recsys.warehouse.jars
	@touch $(JARS_STAMP)

setup: $(STAMP) $(JARS_STAMP)
	$(PY) -m jobs.setup_warehouse

demo: setup
	$(PY) -m jobs.ingest --input data/ml-latest-small --ds $(DEMO_DS)
	$(PY) -m jobs.show_warehouse

test: setup
	@# Exit code 5 (no tests collected) must fail CI, and does: pytest returns it as non-zero.
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow and not cluster" $(PYTEST_ARGS)

bench: setup
	@for b in bench/*.py; do echo "# $$b"; $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

lock: $(STAMP)
	@echo "Regenerating locks from the current .venv; check the diff before committing."
	$(PY) -m pip freeze --all --exclude-editable | grep -v '^pip==' > /tmp/recsys-freeze.txt
	$(PY) requirements/split_lock.py /tmp/recsys-freeze.txt

clean:
	rm -rf warehouse .cache/spark-jars/.verified
