"""Whole DAG runs through ``dag.test()`` on a throw-away Airflow home (SQLite, 127.0.0.1 only).

Each run is a subprocess with its own ``AIRFLOW_HOME`` (Airflow's configuration is global per
process), sharing one migrated metadata database per module:

- dry runs: every Spark task's binary replaced by ``/bin/echo``, so the real operator, guard,
  templating, dynamic mapping and asset events run without a JVM;
- one end-to-end run of the whole ``recsys_daily`` with local Spark on a small generated
  MovieLens directory (no sentence encoder, one epoch per model) into its own warehouse, whose
  published tables and checks are then read back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from recsys.warehouse.tables import (
    BRONZE_INTERACTIONS,
    OPS_COMPLETED_RUNS,
    OPS_DQ_CHECKS,
    OPS_MODEL_DECISIONS,
    SERVE_RECOMMENDATIONS,
    SERVE_RELATED_ITEMS,
    SERVE_TRENDING,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LOCAL_CONN = '{"conn_type": "spark", "host": "local[2]"}'

#: Runs one DAG with dag.test() and prints what happened as one JSON line (prefix RESULT).
RUNNER = r"""
import datetime, importlib, json, sys
cfg = json.loads(sys.argv[1])
sys.path.insert(0, cfg["repo"])
dag = importlib.import_module("dags." + cfg["dag"]).dag
for task in dag.tasks:
    task.retries = 0  # a failure must end the run, not wait for a retry
for task_id in cfg.get("echo", []):
    task = dag.task_dict[task_id]
    if hasattr(task, "partial_kwargs"):
        task.partial_kwargs["spark_binary"] = "/bin/echo"
    else:
        task._spark_binary = "/bin/echo"
run = dag.test(
    logical_date=datetime.datetime.fromisoformat(cfg["logical_date"]),
    run_conf=cfg.get("conf"),
    mark_success_pattern=cfg.get("mark_success"),
)
from sqlalchemy import select
from airflow.models import TaskInstance
from airflow.models.asset import AssetEvent
from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rtif
from airflow.utils.session import create_session
with create_session() as s:
    tis = s.scalars(select(TaskInstance).filter_by(dag_id=dag.dag_id, run_id=run.run_id)).all()
    rtifs = s.scalars(select(Rtif).filter_by(dag_id=dag.dag_id, run_id=run.run_id)).all()
    events = s.scalars(
        select(AssetEvent).filter_by(source_dag_id=dag.dag_id, source_run_id=run.run_id)
    ).all()
    out = {
        "state": str(run.state),
        "tis": sorted(
            [t.task_id, t.map_index, str(t.state), t.rendered_map_index] for t in tis
        ),
        "args": {
            f"{r.task_id}[{r.map_index}]": (r.rendered_fields or {}).get("application_args")
            for r in rtifs
        },
        "events": [
            {"uri": e.asset.uri, "task": e.source_task_id, "extra": e.extra} for e in events
        ],
    }
print("RESULT " + json.dumps(out, default=str))
"""


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__PARALLELISM="2",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__API__BASE_URL="http://127.0.0.1:8080",
        AIRFLOW_CONN_SPARK_LOCAL=LOCAL_CONN,
        PYTHONPATH=str(REPO),
        SPARK_LOCAL_IP="127.0.0.1",
        RECSYS_SPARK_UI="false",
        RECSYS_SHUFFLE_PARTITIONS="2",
        RECSYS_DRIVER_MEMORY="1g",
    )
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow_home")
    res = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=airflow_env(home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return home


def dag_test(home: Path, cfg: dict[str, Any], timeout: int, **env: str) -> dict[str, Any]:
    script = home / "run_dag.py"
    script.write_text(RUNNER)
    res = subprocess.run(
        [sys.executable, str(script), json.dumps({"repo": str(REPO), **cfg})],
        env=airflow_env(home, **env),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
    assert lines, res.stdout[-6000:]
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    if result["state"] != "success":  # what failed, in the assertion message of the caller
        output = (res.stdout + res.stderr).splitlines()
        result["errors"] = [x[:400] for x in output if "ERROR" in x or "TASK FAILED" in x][-20:]
    return result


SPARK_TASKS = [
    "setup_warehouse", "ingest", "features", "trending", "train_two_tower", "train_sasrec",
    "train_ranker", "evaluate", "promote", "embeddings", "related_items", "scoring",
    "publish", "data_quality",
]  # fmt: skip


def test_recsys_daily_dry_run_training_day(airflow_home: Path, tmp_path: Path) -> None:
    out = dag_test(
        airflow_home,
        {
            "dag": "recsys_daily",
            "logical_date": "2026-01-07T00:00:00+00:00",
            "conf": {
                "input_path": str(tmp_path),
                "source": "ml-test",
                "force_retrain": True,
                "train_epochs": 3,
                "content_embeddings": False,
            },
            "echo": SPARK_TASKS,
        },
        timeout=300,
        RECSYS_WAREHOUSE=str(tmp_path / "warehouse"),
    )
    assert out["state"] == "success", out
    assert {t[0]: t[2] for t in out["tis"]} == {
        **{task: "success" for task in SPARK_TASKS},
        "should_train": "success",
    }
    args = out["args"]
    assert args["ingest[-1]"] == [
        "--input", str(tmp_path), "--ds", "2026-01-07", "--source", "ml-test"
    ]  # fmt: skip
    # Empty template results are dropped at execution; the rendered field keeps them.
    assert [a for a in args["features[-1]"] if a] == [
        "--ds", "2026-01-07", "--source", "ml-test", "--source-ds", "2026-01-07",
        "--covisit-top-n", "500", "--no-content",
    ]  # fmt: skip
    assert [a for a in args["train_sasrec[-1]"] if a] == [
        "--model", "sasrec", "--ds", "2026-01-07", "--epochs", "3"
    ]  # fmt: skip
    run_id = args["publish[-1]"][args["publish[-1]"].index("--run-id") + 1]
    assert run_id.startswith("manual__")
    assert args["scoring[-1]"][:3] == ["retrieve-rank", "--ds", "2026-01-07"]
    assert out["events"] == [
        {
            "uri": "delta://warehouse/serve/recommendations",
            "task": "publish",
            "extra": {"ds": "2026-01-07", "source": "ml-test"},
        }
    ]


def test_recsys_daily_dry_run_off_cadence_reuses_champions(
    airflow_home: Path, tmp_path: Path
) -> None:
    out = dag_test(
        airflow_home,
        {
            "dag": "recsys_daily",
            "logical_date": "2026-01-03T00:00:00+00:00",  # 2 days after the cadence epoch
            "conf": {"input_path": str(tmp_path), "train_every_days": 7},
            "echo": SPARK_TASKS,
        },
        timeout=300,
        RECSYS_WAREHOUSE=str(tmp_path / "warehouse"),
    )
    assert out["state"] == "success", out
    states = {t[0]: t[2] for t in out["tis"]}
    skipped = {"train_two_tower", "train_sasrec", "train_ranker", "evaluate", "promote"}
    assert {t for t, s in states.items() if s == "skipped"} == skipped
    assert {t for t, s in states.items() if s == "success"} == (
        set(SPARK_TASKS) - skipped | {"should_train"}
    )
    # Off cadence the features job leaves co-visitation alone (same decision as the gate);
    # on the training day above the flag renders empty and is dropped.
    assert "--no-covisit" in out["args"]["features[-1]"]


def test_experiment_analysis_dry_run_maps_live_experiments(airflow_home: Path) -> None:
    out = dag_test(
        airflow_home,
        {
            "dag": "experiment_analysis",
            "logical_date": "2026-01-12T00:00:00+00:00",
            "echo": ["assign", "replay", "exposures", "analyze"],
        },
        timeout=180,
    )
    assert out["state"] == "success", out
    analyses = [t for t in out["tis"] if t[0] == "analyze"]
    assert analyses == [
        ["analyze", 0, "success", "two_tower_v2"],
        ["analyze", 1, "success", "diversity_boost"],
        ["analyze", 2, "success", "carousel_rows"],
    ]
    states = {t[0]: t[2] for t in out["tis"] if t[0] != "analyze"}
    assert states["replay"] == "skipped"  # params.replay is false by default
    assert states["exposures"] == "success"
    config = str(REPO / "ab_testing" / "experiments.example.yaml")
    assert [a for a in out["args"]["assign[-1]"] if a] == [
        "--config", config, "--ds", "2026-01-12", "--source", "ml-latest-small"
    ]  # fmt: skip
    assert out["args"]["analyze[1]"] == [
        "--config", config,
        "--metrics", str(REPO / "ab_testing" / "metrics.example.yaml"),
        "--ds", "2026-01-12",
        "--experiment", "diversity_boost",
    ]  # fmt: skip


def test_experiment_analysis_dry_run_with_replay_over_a_range(airflow_home: Path) -> None:
    config = str(REPO / "ab_testing" / "experiments.recs.yaml")
    out = dag_test(
        airflow_home,
        {
            "dag": "experiment_analysis",
            "logical_date": "2027-01-06T00:00:00+00:00",
            "conf": {
                "experiments_config": config,
                "metrics_config": str(REPO / "ab_testing" / "metrics.recs.yaml"),
                "from_ds": "2027-01-04",
                "replay": True,
            },
            "echo": ["assign", "replay", "exposures", "analyze"],
        },
        timeout=180,
    )
    assert out["state"] == "success", out
    assert {t[0]: t[2] for t in out["tis"]}["replay"] == "success"
    assert [a for a in out["args"]["exposures[-1]"] if a] == [
        "--ds", "2027-01-06", "--from-ds", "2027-01-04"
    ]  # fmt: skip
    assert out["args"]["replay[-1]"] == [
        "--config", config,
        "--experiment", "recs_model_vs_popularity",
        "--ds", "2027-01-06",
        "--data-start", "2010-01-01T00:00:00",
        "--align", "held_out",
        "--speed", "250",
        "--list-size", "20",
    ]  # fmt: skip
    assert [t[3] for t in out["tis"] if t[0] == "analyze"] == ["recs_model_vs_popularity"]


def count(spark: SparkSession, table: TableRef, root: str, ds: date, source: str) -> int:
    frame = spark.read.format("delta").load(table.location(root))
    return frame.where((frame["ds"] == ds) & (frame["source"] == source)).count()


@pytest.mark.spark
@pytest.mark.timeout(2700)  # 15 spark-submits; ~8 min on an idle 2-core machine, more when loaded
def test_recsys_daily_end_to_end(
    spark: SparkSession,
    airflow_home: Path,
    tmp_path: Path,
    small_movielens: tuple[Path, int],
) -> None:
    """Every task for real (local Spark): ingest -> ... -> publish -> data-quality checks."""
    movielens, n_ratings = small_movielens
    root = str(tmp_path / "warehouse")  # its own warehouse and model artifacts
    out = dag_test(
        airflow_home,
        {
            "dag": "recsys_daily",
            "logical_date": "2026-01-05T00:00:00+00:00",
            "conf": {
                "input_path": str(movielens),
                "source": "ml-small",
                "force_retrain": True,
                "train_epochs": 1,
                "content_embeddings": False,
            },
        },
        timeout=2400,
        RECSYS_WAREHOUSE=root,
    )
    assert out["state"] == "success", out
    assert all(t[2] == "success" for t in out["tis"]), out["tis"]
    ds = date(2026, 1, 5)
    assert count(spark, BRONZE_INTERACTIONS, root, ds, "ml-small") == n_ratings

    def day(table: TableRef) -> Any:
        frame = spark.read.format("delta").load(table.location(root))
        return frame.where(frame["ds"] == ds)

    recs = day(SERVE_RECOMMENDATIONS)
    sets = {
        r["rec_set"]: r["n"]
        for r in recs.groupBy("rec_set").count().withColumnRenamed("count", "n").collect()
    }
    assert set(sets) == {"model", "popularity"}
    assert recs.where(recs["explanation"] == "").count() == 0
    checks = day(OPS_DQ_CHECKS)
    assert checks.count() > 0
    assert checks.where(~checks["passed"]).count() == 0
    assert {r["decision"] for r in day(OPS_MODEL_DECISIONS).collect()} == {"promoted"}
    assert day(SERVE_RELATED_ITEMS).count() > 0
    assert day(SERVE_TRENDING).count() > 0
    assert out["events"][0]["uri"] == "delta://warehouse/serve/recommendations"
    # The staged day was checked (before publishing), and both runs recorded their completion.
    assert {r["table_name"].split("[")[0] for r in checks.collect()} >= {"serve.ranked"}
    done = {(r["pipeline"], r["source"]): r for r in day(OPS_COMPLETED_RUNS).collect()}
    assert set(done) == {("ingest", "ml-small"), ("recsys_daily", None)}
    published = spark.read.format("delta").load(SERVE_RECOMMENDATIONS.location(root))
    first = published.where(published["ds"] == ds).first()
    assert first is not None
    assert done[("recsys_daily", None)]["run_id"] == first["run_id"]
