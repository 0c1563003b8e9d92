# Quick start: `make demo` then `make test`. Everything installs into .venv and .cache (ignored).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
JARS_STAMP := .cache/spark-jars/.verified
CDS_ARCHIVE := .cache/spark-cds/spark.jsa
DEMO_DS ?= 2027-01-03
PYTEST_ARGS ?=
# pytest-xdist workers of `make test` (each its own local Spark; ≈ 2.5 GB of memory apiece).
TEST_WORKERS ?= 2

export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(PY))
export PATH := $(abspath $(VENV))/bin:$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: help setup demo eval test test-fast bench lint lock clean airflow-ui

help:
	@echo "make demo   - set up, then run both Airflow DAGs on the demo data (Airflow home .airflow/)"
	@echo "make eval   - offline metrics table of every model for a MovieLens directory (EVAL_DATA=...)"
	@echo "make test   - set up, then run the whole test suite"
	@echo "make bench  - benchmarks under bench/ (JSON lines)"
	@echo "make lint   - ruff + mypy"
	@echo "make airflow-ui - Airflow's UI, scheduler and DAG processor on 127.0.0.1:$(AIRFLOW_UI_PORT)"
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

# The driver JVM's class-data-sharing archive (recsys/warehouse/cds.py): jobs start ≈ 5 s faster.
# Optional: without it (a JDK that cannot write one) everything runs, only slower to start.
$(CDS_ARCHIVE): $(JARS_STAMP)
	$(PY) -m recsys.warehouse.cds || echo "continuing without a CDS archive" >&2

setup: $(STAMP) $(JARS_STAMP) $(CDS_ARCHIVE)
	$(PY) -m jobs.setup_warehouse

# One Airflow home for the demo and the UI (docs/decisions/0008-one-airflow-home.md): after
# `make demo`, `make airflow-ui` lists the demo's runs. The home is kept between demos:
# `airflow db migrate` is idempotent and `airflow dags test` replaces an earlier run of the same
# DAG and logical date, so no fresh metadata DB is needed, and the UI's generated config and
# admin password survive. A fresh start: stop the UI, `rm -rf .airflow`.
AIRFLOW_HOME_DIR := $(CURDIR)/.airflow
AIRFLOW_UI_PORT ?= 8080
demo airflow-ui: export AIRFLOW_HOME := $(AIRFLOW_HOME_DIR)
demo airflow-ui: export AIRFLOW__CORE__LOAD_EXAMPLES := False
demo airflow-ui: export AIRFLOW__CORE__PARALLELISM := 2
demo airflow-ui: export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
demo airflow-ui: export AIRFLOW__API__HOST := 127.0.0.1
demo airflow-ui: export AIRFLOW__API__BASE_URL := http://127.0.0.1:$(AIRFLOW_UI_PORT)
demo airflow-ui: export AIRFLOW_CONN_SPARK_LOCAL := {"conn_type": "spark", "host": "local[*]"}
demo airflow-ui: export PYTHONPATH := $(CURDIR)

# The demo runs both DAGs through Airflow (`airflow dags test`, which records each run in the
# metadata DB of $(AIRFLOW_HOME_DIR)); its own logs go to $(DEMO_LOGS). DEMO_DS is the daily
# run's day; the recommendation experiment's replay calendar (ab_testing/experiments.recs.yaml)
# runs DEMO_EXP_FROM..DEMO_EXP_DS after it. Stop `make airflow-ui` first: one SQLite writer.
DEMO_LOGS := $(AIRFLOW_HOME_DIR)/demo
DEMO_EPOCHS ?= 3
DEMO_EXP_FROM ?= 2027-01-04
DEMO_EXP_DS ?= 2027-01-17
DEMO_EXPERIMENT := recs_model_vs_popularity
demo: setup
	mkdir -p $(DEMO_LOGS)
	airflow db migrate > $(DEMO_LOGS)/migrate.log
	airflow dags test recsys_daily $(DEMO_DS) \
	  -c '{"force_retrain": true, "train_epochs": $(DEMO_EPOCHS)}' > $(DEMO_LOGS)/recsys_daily.log 2>&1 \
	  || (tail -50 $(DEMO_LOGS)/recsys_daily.log; exit 1)
	@grep -E "TASK FAILED|Marking task as|state=" $(DEMO_LOGS)/recsys_daily.log | tail -20 || true
	airflow dags test experiment_analysis $(DEMO_EXP_DS) \
	  -c '{"experiments_config": "$(CURDIR)/ab_testing/experiments.recs.yaml", "metrics_config": "$(CURDIR)/ab_testing/metrics.recs.yaml", "from_ds": "$(DEMO_EXP_FROM)", "replay": true, "replay_experiment": "$(DEMO_EXPERIMENT)"}' \
	  > $(DEMO_LOGS)/experiment_analysis.log 2>&1 || (tail -50 $(DEMO_LOGS)/experiment_analysis.log; exit 1)
	$(PY) -m jobs.demo_summary --ds $(DEMO_DS) --experiment $(DEMO_EXPERIMENT) --analysis-ds $(DEMO_EXP_DS)
	$(PY) -m recsys.reader --experiments ab_testing/experiments.recs.yaml --user 1 --user 999999999 --item 1 --genre Comedy -n 5
	@echo "Both runs' logs: $(DEMO_LOGS)/*.log; to browse the runs: make airflow-ui"

# One command from a MovieLens directory to the offline metrics table (jobs/offline_eval.py):
# ingest -> features -> train two-tower, SASRec, ranker -> evaluate, in a warehouse of its own
# under .cache/offline-eval/. EVAL_ARGS passes more options, e.g. EVAL_ARGS="--epochs 3".
EVAL_DATA ?= ../shared/data/ml-latest-small
EVAL_ARGS ?=
eval: setup
	$(PY) -m jobs.offline_eval --input $(EVAL_DATA) $(EVAL_ARGS)

test: setup
	@# Exit code 5 (no tests collected) must fail CI, and does: pytest returns it as non-zero.
	@# Two workers: the whole-DAG test (≈ 8 min of spark-submits) runs beside the rest, which
	@# tests/conftest.py starts slow-first; worksteal rebalances whatever is left at the end.
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not slow and not cluster" $(PYTEST_ARGS)

bench: setup
	@# Bench-only dependencies (e.g. duckdb as the reference engine) are locked separately.
	@test ! -f requirements/bench.lock || $(PIP) install --quiet --no-deps -r requirements/bench.lock
	@for b in bench/bench_*.py; do echo "# $$b"; $(PY) -m bench.$$(basename $$b .py) || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

lock: $(STAMP)
	@echo "Regenerating locks from the current .venv; check the diff before committing."
	$(PY) -m pip freeze --all --exclude-editable | grep -v '^pip==' > /tmp/recsys-freeze.txt
	$(PY) requirements/split_lock.py /tmp/recsys-freeze.txt

airflow-ui: setup
	@# Not `airflow standalone`: its log servers always listen on 0.0.0.0. These three processes
	@# listen on 127.0.0.1 only, and Ctrl-C stops them.
	@mkdir -p $(AIRFLOW_HOME) && airflow db migrate > $(AIRFLOW_HOME)/migrate.log
	@echo "Airflow UI: http://127.0.0.1:$(AIRFLOW_UI_PORT)  user admin, password in $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated; Ctrl-C stops"
	@trap 'kill -INT $$(jobs -p) 2>/dev/null' INT TERM; \
	  airflow api-server -H 127.0.0.1 -p $(AIRFLOW_UI_PORT) & \
	  airflow scheduler --skip-serve-logs & airflow dag-processor & wait

clean:
	rm -rf warehouse .cache/spark-jars/.verified $(CDS_ARCHIVE) .cache/offline-eval
