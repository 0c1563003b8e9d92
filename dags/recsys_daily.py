"""# recsys_daily

The daily recommendation pipeline on the Delta warehouse, one `spark-submit` per step:

- `setup_warehouse`: `jobs/setup_warehouse.py`, creates missing tables and checks declared
  schemas (idempotent);
- `ingest`: `jobs/ingest.py --input {{ params.input_path }} --ds {{ ds }}
  --source {{ params.source }}`, one MovieLens delivery into bronze, bad lines quarantined;
- `features`: `jobs/features.py --ds {{ ds }} --source {{ params.source }} --source-ds {{ ds }}`,
  split, user/item features and ranker examples of that delivery.

`features` emits the Asset `delta://warehouse/features/ranker_examples`
(`dags.common.RECSYS_DAILY_OUTPUT`) with `extra = {"ds", "source"}`; `experiment_analysis` is
scheduled on it.

**Later issues** append, in this order: `train` (reads `params.force_retrain`) → `evaluate` →
`gate` → `embeddings` → `retrieval` → `ranking` → `publish` → `data_quality`. The graph stops
at the tasks whose jobs exist (no placeholders); when `publish` lands, the output Asset becomes
`delta://warehouse/serving/recommendations` and moves to it.

**Params** (JSON schema, checked when a run is triggered): `input_path` (a MovieLens directory,
default the bundled `data/ml-latest-small`), `source` (delivery name, default `ml-latest-small`),
`force_retrain` (bool, default false; used by `train` once it exists). `ds` is the run's logical
date: scheduled runs and `airflow dags test recsys_daily 2026-01-05` have one; a manual trigger
must set a logical date.

**Running it** (throw-away metadata DB; Spark connection as in `dags/common.py`):

```bash
export AIRFLOW_HOME=$(mktemp -d) AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__PARALLELISM=2 \
  AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags PYTHONPATH=$PWD \
  AIRFLOW_CONN_SPARK_LOCAL='{"conn_type": "spark", "host": "local[*]"}'
.venv/bin/airflow db migrate && .venv/bin/airflow dags test recsys_daily 2026-01-05
```

Retries: 2 per task, exponential backoff from 1 minute; a failure logs one `TASK FAILED` line.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param

try:
    from dags import common
except ModuleNotFoundError:  # parsed by Airflow without the repository on sys.path
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    from dags import common

with DAG(
    dag_id="recsys_daily",
    description="Daily recommendations: ingest -> features (-> models, scoring: later issues)",
    doc_md=__doc__,
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=8),
    default_args=common.default_args(),
    tags=["recsys", "spark", "daily"],
    params={
        "input_path": common.path_param(
            common.REPO_ROOT / "data" / "ml-latest-small",
            "MovieLens directory (ml-latest-small, ml-100k or ml-1m layout; .gz read directly).",
        ),
        "source": common.source_param(),
        "force_retrain": Param(
            False, type="boolean", description="Retrain even if the model gate would skip it."
        ),
    },
) as dag:
    setup_warehouse = common.spark_job("setup_warehouse", "setup_warehouse")
    ingest = common.spark_job(
        "ingest",
        "ingest",
        [
            "--input", "{{ params.input_path }}",
            "--ds", "{{ ds }}",
            "--source", "{{ params.source }}",
        ],
    )  # fmt: skip
    features = common.spark_job(
        "features",
        "features",
        [
            "--ds", "{{ ds }}",
            "--source", "{{ params.source }}",
            "--source-ds", "{{ ds }}",
        ],
        outlets=[common.RECSYS_DAILY_OUTPUT],
        asset_extra={"ds": "{{ ds }}", "source": "{{ params.source }}"},
    )  # fmt: skip

    setup_warehouse >> ingest >> features
