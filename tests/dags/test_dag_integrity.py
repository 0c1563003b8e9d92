"""The DAG folder parses cleanly, cheaply and into the intended graphs; the DAGs' pure helpers.

Airflow reads its configuration when first imported, so a throw-away ``AIRFLOW_HOME`` (SQLite,
no examples, parallelism 2) is set before any ``airflow`` import, unless another test module of
this run already did. Nothing here needs a metadata database or Spark.
"""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

# Airflow's throw-away home, `dags` on sys.path and the root logger: tests/dags/conftest.py.
from airflow.dag_processing.dagbag import DagBag
from airflow.exceptions import ParamValidationError
from airflow.sdk import Asset

from dags import common
from dags.experiment_analysis import (
    analysis_args,
    experiments_to_analyse,
    pick_run_day,
    pick_source,
)
from recsys.training.covisit import DEFAULT_TOP_N
from tests.helpers.fresh_imports import dag_import_cost

REPO = Path(__file__).resolve().parents[2]

DAG_IDS = {"recsys_daily", "experiment_analysis", "warehouse_maintenance"}
#: A failed data-quality check is an alarm, not a transient error: never retried.
NOT_RETRIED = {("recsys_daily", "data_quality")}
EXAMPLE_CONFIG = REPO / "ab_testing" / "experiments.example.yaml"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(REPO / "dags"))


def op_of(dag: Any, task_id: str) -> Any:
    """A task of ``dag`` typed loosely: operator attributes differ by class (Spark, mapped)."""
    return dag.get_task(task_id)


def edges(dag: Any) -> set[tuple[str, str]]:
    return {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == DAG_IDS


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_dag_conventions(dagbag: DagBag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    assert dag.tags, "every DAG has tags"
    assert dag.catchup is False
    assert dag.doc_md
    assert dag.doc_md.lstrip().startswith(f"# {dag_id}")
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        if (dag_id, task.task_id) in NOT_RETRIED:
            assert task.retries == 0, task.task_id
        else:
            assert (task.retries or 0) >= 2, task.task_id
            assert (task.retry_exponential_backoff or 0) > 0, task.task_id
        assert task.on_failure_callback, task.task_id
    # The scheduler works on the serialized form: it must round-trip.
    from airflow.serialization.serialized_objects import DagSerialization

    assert DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).dag_id == dag_id


def test_spark_tasks_use_the_guarded_operator(dagbag: DagBag) -> None:
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if task.task_id in ("resolve_run", "list_analyses", "should_train", "should_replay"):
                continue
            kwargs = getattr(task, "partial_kwargs", None)
            if kwargs is not None:  # mapped: the class and partial arguments
                assert task.operator_class is common.SparkJobOperator
                conn_id, application = kwargs["conn_id"], kwargs["application"]
            else:
                assert isinstance(task, common.SparkJobOperator), task.task_id
                conn_id, application = task._conn_id, task.application
            assert conn_id == common.SPARK_CONN_ID
            assert Path(application).is_file()
            assert Path(application).parent == REPO / "jobs"


def test_recsys_daily_shape(dagbag: DagBag) -> None:
    dag = dagbag.dags["recsys_daily"]
    assert edges(dag) == {
        ("setup_warehouse", "ingest"),
        ("ingest", "features"),
        ("features", "trending"),
        ("features", "should_train"),
        ("features", "embeddings"),
        ("should_train", "train_two_tower"),
        ("should_train", "train_sasrec"),
        ("train_two_tower", "train_ranker"),
        ("train_sasrec", "train_ranker"),
        ("train_ranker", "evaluate"),
        ("evaluate", "promote"),
        ("promote", "embeddings"),
        ("embeddings", "related_items"),
        ("embeddings", "scoring"),
        ("trending", "scoring"),
        # The staged day is checked BEFORE it goes live; publish (and its Asset) only after.
        ("scoring", "data_quality"),
        ("related_items", "data_quality"),
        ("data_quality", "publish"),
    }
    assert op_of(dag, "publish").downstream_task_ids == set()  # the run's last write
    # Scoring runs on days without training (the gate's branch skipped), never after a failure.
    assert op_of(dag, "embeddings").trigger_rule == "none_failed_min_one_success"
    publish = op_of(dag, "publish")
    assert publish.outlets == [common.RECSYS_DAILY_OUTPUT]
    assert publish.asset_extra == {"ds": "{{ ds }}", "source": "{{ params.source }}"}
    assert [t.task_id for t in dag.tasks if t.outlets] == ["publish"]
    assert op_of(dag, "ingest").application_args == [
        "--input", "{{ params.input_path }}", "--ds", "{{ ds }}", "--source", "{{ params.source }}"
    ]  # fmt: skip
    features = op_of(dag, "features").application_args
    assert features[:2] == ["--ds", "{{ ds }}"]
    at = features.index("--covisit-top-n")
    assert features[at + 1] == "{{ params.covisit_top_n }}"
    run_ids = {
        t.task_id: t.application_args[t.application_args.index("--run-id") + 1]
        for t in cast(list[Any], dag.tasks)
        if "--run-id" in getattr(t, "application_args", [])
    }
    assert set(run_ids) >= {"embeddings", "scoring", "data_quality", "publish"}
    # Retrieval and ranking in one task: the fused step.
    assert op_of(dag, "scoring").application_args[0] == "retrieve-rank"
    assert set(run_ids.values()) == {"{{ run_id }}"}  # one run id across the scoring tables
    # Publishing refuses by itself unless this run's checks of the day passed.
    assert "--require-dq" in publish.application_args
    assert op_of(dag, "data_quality").retries == 0
    # The training sample reaches the two-tower and SASRec tasks (the ranker trains on the
    # validation sample).
    sample = "{{ params.train_users or '' }}"
    for task_id, passed in (("train_two_tower", 1), ("train_sasrec", 1), ("train_ranker", 0)):
        assert op_of(dag, task_id).application_args.count(sample) == passed, task_id


def test_training_cadence() -> None:
    from dags.recsys_daily import is_training_day

    assert is_training_day("2026-01-01", 7, force=False)
    assert not is_training_day("2026-01-02", 7, force=False)
    assert is_training_day("2026-01-08", 7, force=False)
    assert is_training_day("2026-01-02", 7, force=True)
    assert all(is_training_day(f"2026-02-{d:02d}", 1, force=False) for d in range(1, 29))
    with pytest.raises(ValueError, match="train_every_days"):
        is_training_day("2026-01-01", 0, force=False)


def test_empty_arguments_are_dropped_after_templating() -> None:
    assert common.drop_empty_args(["--ds", "2026-01-01", "", "--epochs", "3", ""]) == [
        "--ds", "2026-01-01", "--epochs", "3"
    ]  # fmt: skip
    assert common.drop_empty_args(None) == []


def test_experiment_analysis_shape(dagbag: DagBag) -> None:
    dag = dagbag.dags["experiment_analysis"]
    assert edges(dag) == {
        ("resolve_run", "assign"),
        ("resolve_run", "list_analyses"),
        ("assign", "should_replay"),
        ("assign", "exposures"),
        ("should_replay", "replay"),
        ("replay", "exposures"),
        ("exposures", "list_analyses"),
        ("list_analyses", "analyze"),
    }
    # Without a replay, exposures still run (from the apps' ab.served).
    assert op_of(dag, "exposures").trigger_rule == "none_failed_min_one_success"
    analyze = op_of(dag, "analyze")
    assert type(analyze).__name__ == "MappedOperator"
    assert analyze.map_index_template == "{{ task.application_args[-1] }}"
    assert analyze.partial_kwargs["application"].endswith("jobs/ab_analyze.py")
    assert list(cast(Any, dag.timetable).asset_condition.objects) == [common.RECSYS_DAILY_OUTPUT]
    assign_args = op_of(dag, "assign").application_args
    assert assign_args[:2] == ["--config", "{{ params.experiments_config }}"]
    assert "--ds" in assign_args
    assert "--source" in assign_args


def test_params_are_validated(dagbag: DagBag) -> None:
    daily = dagbag.dags["recsys_daily"].params
    assert daily.validate() == {
        "input_path": str(REPO / "data" / "ml-latest-small"),
        "source": "ml-latest-small",
        "force_retrain": False,
        "train_every_days": 7,
        "train_epochs": 0,
        "train_users": 0,
        "covisit_top_n": DEFAULT_TOP_N,
        "eval_models": "popularity,two_tower,sasrec,two_tower+ranker",
        "promotion_margin": 0.005,
        "content_embeddings": True,
    }
    with pytest.raises(ParamValidationError):
        daily.get_param("train_every_days").resolve(0)
    with pytest.raises(ParamValidationError):
        daily.get_param("train_users").resolve(-1)
    with pytest.raises(ParamValidationError):
        daily.get_param("covisit_top_n").resolve(0)
    with pytest.raises(ParamValidationError):
        daily.get_param("eval_models").resolve("two_tower; rm -rf /")
    with pytest.raises(ParamValidationError):
        daily.get_param("source").resolve("Bad Source!")
    with pytest.raises(ParamValidationError):
        daily.get_param("force_retrain").resolve("yes")
    with pytest.raises(ParamValidationError):
        daily.get_param("input_path").resolve("")
    # jsonschema runs re.search, where "$" also matches before a trailing newline.
    for name, good in (("source", "ml-1m"), ("eval_models", "two_tower,sasrec")):
        assert daily.get_param(name).resolve(good) == good
        with pytest.raises(ParamValidationError):
            daily.get_param(name).resolve(good + "\n")
    analysis = dagbag.dags["experiment_analysis"].params
    assert analysis.validate()["ds"] is None
    assert analysis.get_param("ds").resolve("2026-01-12") == "2026-01-12"
    with pytest.raises(ParamValidationError):
        analysis.get_param("ds").resolve("yesterday")
    with pytest.raises(ParamValidationError):
        analysis.get_param("ds").resolve("2026-01-12\n")
    with pytest.raises(ParamValidationError):
        analysis.get_param("grace_days").resolve(-1)


def test_parsing_is_cheap_and_starts_no_spark() -> None:
    """Importing a DAG file (airflow already loaded) takes < 2 s and imports no pyspark/config."""
    seconds, loaded = dag_import_cost(("dags.recsys_daily", "dags.experiment_analysis"))
    assert loaded == []
    for name, took in seconds.items():
        assert took < 2.0, (name, took)


# --------------------------------------------------------------------------------------------
# Pure helpers of the DAGs.


def test_pick_run_day_precedence() -> None:
    after = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)
    events: list[dict[str, Any]] = [{"ds": "2026-01-05"}, {"ds": "2026-01-07"}, {"other": 1}]
    assert pick_run_day("2026-02-01", events, "2026-01-01", after) == "2026-02-01"
    assert pick_run_day(None, events, "2026-01-01", after) == "2026-01-07"
    assert pick_run_day(None, [], "2026-01-01", after) == "2026-01-01"
    assert pick_run_day(None, [], None, after) == "2026-03-04"
    with pytest.raises(ValueError, match="ds"):
        pick_run_day(None, [], None, None)
    assert pick_source(None, [{"source": "ml-1m"}]) == "ml-1m"
    assert pick_source("ml-100k", [{"source": "ml-1m"}]) == "ml-100k"
    assert pick_source(None, []) == common.DEFAULT_SOURCE


def test_experiments_to_analyse_window() -> None:
    # two_tower_v2 [01-05, 02-02), diversity_boost [01-05, 01-26), carousel_rows [01-10, 02-10)
    assert experiments_to_analyse(EXAMPLE_CONFIG, "2026-01-04", 7) == []
    assert experiments_to_analyse(EXAMPLE_CONFIG, "2026-01-05", 7) == [
        "two_tower_v2",
        "diversity_boost",
    ]
    assert experiments_to_analyse(EXAMPLE_CONFIG, "2026-01-28", 0) == [
        "two_tower_v2",
        "carousel_rows",
    ]
    assert experiments_to_analyse(EXAMPLE_CONFIG, "2026-01-28", 7) == [
        "two_tower_v2",
        "diversity_boost",
        "carousel_rows",
    ]
    assert experiments_to_analyse(EXAMPLE_CONFIG, "2026-02-17", 7) == []
    with pytest.raises(ValueError, match="no such file"):
        experiments_to_analyse(REPO / "missing.yaml", "2026-01-05", 7)
    args = analysis_args(["a", "b"], "e.yaml", "m.yaml", "2026-01-05")
    assert args[1] == [
        "--config", "e.yaml", "--metrics", "m.yaml", "--ds", "2026-01-05", "--experiment", "b"
    ]  # fmt: skip


def test_failure_line_is_one_line() -> None:
    ti = SimpleNamespace(
        dag_id="recsys_daily",
        task_id="ingest",
        map_index=-1,
        try_number=2,
        log_url="http://127.0.0.1:8080/dags/recsys_daily/runs/r1/tasks/ingest?try_number=2",
    )
    line = common.failure_line(
        {"ti": ti, "ds": "2026-01-05", "exception": RuntimeError("spark-submit failed\ntrace...")}
    )
    assert "\n" not in line
    for part in ("dag=recsys_daily", "task=ingest", "ds=2026-01-05", "try=2", ti.log_url):
        assert part in line
    assert "RuntimeError: spark-submit failed" in line
    assert "trace" not in line
    mapped = SimpleNamespace(dag_id="experiment_analysis", task_id="analyze", map_index=1)
    run = SimpleNamespace(run_after=datetime(2026, 1, 9, 6, tzinfo=UTC))
    line = common.failure_line({"ti": mapped, "dag_run": run, "exception": None})
    assert "task=analyze[1]" in line
    assert "ds=2026-01-09 (run_after" in line


def test_runtime_env_and_conf() -> None:
    env = common.runtime_env({"PYTHONPATH": "/x", "RECSYS_WAREHOUSE": "/wh"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(REPO), "/x"]
    assert env["RECSYS_WAREHOUSE"] == "/wh"
    assert env["RECSYS_SPARK_MASTER"] == ""  # the connection's --master wins
    assert env["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert Path(env["PYSPARK_PYTHON"]).name.startswith("python")
    assert common.runtime_env({})["RECSYS_WAREHOUSE"] == str(REPO / "warehouse")
    conf = common.runtime_conf({"RECSYS_SPARK_UI": "false"})
    assert conf["spark.driver.host"] == conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.ui.enabled"] == "false"
    assert common.runtime_conf({})["spark.ui.enabled"] == "true"


def test_operator_runtime_preparation_and_outlet_stamp() -> None:
    op = common.spark_job(
        "ingest_x",
        "ingest",
        ["--ds", "2026-01-05"],
        conf={"spark.ui.enabled": "false"},
        outlets=[common.RECSYS_DAILY_OUTPUT, Asset("file:///tmp/other")],
        asset_extra={"ds": "2026-01-05"},
    )
    op.prepare_runtime({"RECSYS_WAREHOUSE": "/wh", "RECSYS_DRIVER_MEMORY": "1g"})
    assert op.env_vars is not None
    assert op.env_vars["RECSYS_WAREHOUSE"] == "/wh"
    assert op._driver_memory == "1g"
    assert op.conf is not None
    assert op.jars is not None
    assert op._spark_binary is not None
    assert op.conf["spark.ui.enabled"] == "false"  # explicit conf wins
    assert "io.delta_delta-spark" in op.jars
    assert op._spark_binary.endswith("spark-submit")
    events: defaultdict[Any, SimpleNamespace] = defaultdict(lambda: SimpleNamespace(extra={}))
    op.stamp_outlets({"outlet_events": events})  # type: ignore[arg-type]
    assert events[common.RECSYS_DAILY_OUTPUT].extra == {"ds": "2026-01-05"}
    with pytest.raises(ValueError, match="no such Spark job"):
        common.spark_job("nope", "no_such_job")
    with pytest.raises(ValueError, match=r"schema\.table"):
        common.warehouse_asset("no_schema")
