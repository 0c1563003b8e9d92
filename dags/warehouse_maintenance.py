"""# warehouse_maintenance

Daily retention of the Delta warehouse: one task, `retention`, runs
`spark-submit jobs/retention.py --ds {{ ds }} ...` (what it does, step by step, is in the job's
docstring and `docs/operations-retention.md`):

- drops daily partitions older than their horizon from every `features.*` and `serve.*` table
  (`params.features_days`, `params.serve_days`; `serve.candidates` keeps
  `params.candidates_days`) and from `ab.served` (`params.served_days`), never a table's newest
  day nor the day the app-side reader serves;
- compacts the last `params.compact_days` days of `ab.served` (the apps append small batches);
- sets `delta.logRetentionDuration` (`params.log_retention_days`) and
  `delta.deletedFileRetentionDuration` (`params.vacuum_hours`) and runs VACUUM with that horizon:
  time travel keeps working for `params.vacuum_hours` hours.

Horizons count back from the run's logical date (`ds`), so a late or repeated run decides the
same; the job is idempotent. It runs beside `recsys_daily`: every commit it makes is retried on a
Delta write conflict, and readers see each table before or after a commit, never a mix of days.

**Params** (JSON schema, checked when a run is triggered): the horizons above, and `vacuum`
(false skips VACUUM).

```bash
airflow dags test warehouse_maintenance 2026-01-12 -c '{"serve_days": 7}'
```

Retries: 2, exponential backoff from 1 minute; a failure logs one `TASK FAILED` line
(`dags/common.py`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.sdk import DAG, Param

try:
    from dags import common
except ModuleNotFoundError:  # parsed by Airflow without the repository on sys.path
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    from dags import common


def _days(default: int, description: str, minimum: int = 1) -> Param:
    return common.int_param(default, description, minimum=minimum, maximum=3650)


with DAG(
    dag_id="warehouse_maintenance",
    description="Retention: old daily partitions dropped, ab.served compacted, VACUUM",
    doc_md=__doc__,
    schedule="@daily",
    tags=["warehouse", "spark", "maintenance"],
    params={
        # Defaults as jobs/retention.py's (not imported: parsing reads no project module).
        "features_days": _days(14, "Days of each features.* table kept."),
        "serve_days": _days(14, "Days of each serve.* table kept."),
        "candidates_days": _days(3, "Days of serve.candidates kept."),
        "served_days": _days(90, "Days of ab.served kept."),
        "compact_days": _days(2, "Recent days of ab.served compacted (0: none).", minimum=0),
        "vacuum_hours": common.int_param(
            168, "VACUUM horizon, hours: time travel works this far back.", minimum=1, maximum=87600
        ),
        "log_retention_days": _days(30, "Delta log retention, days (>= vacuum_hours / 24)."),
        "vacuum": Param(True, type="boolean", description="Run VACUUM."),
    },
    **common.dag_settings(timeout_hours=4),
) as dag:
    retention = common.spark_job(
        "retention",
        "retention",
        [
            "--ds", "{{ ds }}",
            "--features-days", "{{ params.features_days }}",
            "--serve-days", "{{ params.serve_days }}",
            "--keep-days", "serve.candidates={{ params.candidates_days }}",
            "--served-days", "{{ params.served_days }}",
            "--compact-days", "{{ params.compact_days }}",
            "--vacuum-hours", "{{ params.vacuum_hours }}",
            "--log-retention-days", "{{ params.log_retention_days }}",
            "{{ '' if params.vacuum else '--no-vacuum' }}",
        ],
    )  # fmt: skip
