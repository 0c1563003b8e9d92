"""The warehouse_maintenance DAG: parses cheaply, follows the DAG conventions, and its templated
arguments render into a valid ``jobs.retention`` command line.

Airflow is configured as in ``test_dag_integrity.py`` (a throw-away ``AIRFLOW_HOME``) unless another
test module of this run already imported it. No metadata database or Spark is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# Airflow's throw-away home, `dags` on sys.path and the root logger: tests/dags/conftest.py.
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import ParamValidationError

from dags import common
from tests.helpers.fresh_imports import dag_import_cost

REPO = Path(__file__).resolve().parents[2]

DAG_ID = "warehouse_maintenance"
DAG_FILE = REPO / "dags" / "warehouse_maintenance.py"


@pytest.fixture(scope="module")
def dag() -> Any:
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    assert set(bag.dags) == {DAG_ID}
    return bag.dags[DAG_ID]


def test_conventions(dag: Any) -> None:
    assert dag.tags
    assert dag.catchup is False
    assert dag.doc_md.lstrip().startswith(f"# {DAG_ID}")
    assert dag.max_active_runs == 1
    assert dag.schedule == "@daily"
    for task in dag.tasks:
        assert task.retries >= 2, task.task_id
        assert task.retry_exponential_backoff > 0, task.task_id
        assert task.on_failure_callback, task.task_id
    from airflow.serialization.serialized_objects import DagSerialization

    assert DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).dag_id == DAG_ID


def test_one_guarded_spark_task_running_the_retention_job(dag: Any) -> None:
    assert [t.task_id for t in dag.tasks] == ["retention"]
    task = dag.get_task("retention")
    assert isinstance(task, common.SparkJobOperator)
    assert task._conn_id == common.SPARK_CONN_ID
    assert Path(task.application) == REPO / "jobs" / "retention.py"
    assert (task.application_args or [])[:2] == ["--ds", "{{ ds }}"]


def _render(args: list[str], params: dict[str, Any]) -> list[str]:
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    rendered = [env.from_string(a).render(ds="2026-01-12", params=params) for a in args]
    return common.drop_empty_args(rendered)


def test_arguments_render_into_a_valid_job_config(dag: Any) -> None:
    from jobs.retention import RetentionConfig, parse_args
    from recsys.warehouse.tables import SERVE_CANDIDATES

    args = dag.get_task("retention").application_args
    defaults = dict(dag.params.validate())
    config = parse_args(_render(args, defaults))
    # The DAG's defaults are the job's own.
    assert config == RetentionConfig(ds=config.ds)
    assert config.ds.isoformat() == "2026-01-12"
    changed = {**defaults, "serve_days": 7, "candidates_days": 2, "vacuum": False}
    config = parse_args(_render(args, changed))
    assert (config.serve_days, config.horizon_days(SERVE_CANDIDATES)) == (7, 2)
    assert config.vacuum is False


def test_params_are_validated(dag: Any) -> None:
    params = dag.params
    assert params.validate()["vacuum_hours"] == 168
    for name, bad in (
        ("serve_days", 0),
        ("served_days", 5000),
        ("vacuum_hours", 0),
        ("compact_days", -1),
        ("vacuum", "yes"),
    ):
        with pytest.raises(ParamValidationError):
            params.get_param(name).resolve(bad)


def test_parsing_is_cheap_and_starts_no_spark() -> None:
    seconds, loaded = dag_import_cost(("dags.warehouse_maintenance",))
    assert loaded == []
    assert seconds["dags.warehouse_maintenance"] < 2.0
