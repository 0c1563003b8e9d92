"""Whole DAG runs through ``dag.test()`` on a throw-away Airflow home (SQLite, 127.0.0.1 only).

Each run is a subprocess with its own ``AIRFLOW_HOME`` (Airflow's configuration is global per
process), sharing one migrated metadata database per module:

- dry runs: every Spark task's binary replaced by ``/bin/echo``, so the real operator, guard,
  templating, dynamic mapping and asset events run without a JVM;
- one end-to-end run of ``recsys_daily`` on a tiny ml-latest-small directory with local Spark,
  up to ``ingest`` (``features`` is marked success: it needs the sentence encoder), against the
  session-wide test warehouse, whose bronze tables are then read back.
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

from recsys.settings import WarehouseSettings
from recsys.warehouse.tables import BRONZE_INTERACTIONS, BRONZE_ITEMS, OPS_INGEST_RUNS, TableRef

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
    return result


def test_recsys_daily_dry_run(airflow_home: Path, tmp_path: Path) -> None:
    out = dag_test(
        airflow_home,
        {
            "dag": "recsys_daily",
            "logical_date": "2026-01-07T00:00:00+00:00",
            "conf": {"input_path": str(tmp_path), "source": "ml-test"},
            "echo": ["setup_warehouse", "ingest", "features"],
        },
        timeout=180,
        RECSYS_WAREHOUSE=str(tmp_path / "warehouse"),
    )
    assert out["state"] == "success", out
    assert [t[:3] for t in out["tis"]] == [
        ["features", -1, "success"],
        ["ingest", -1, "success"],
        ["setup_warehouse", -1, "success"],
    ]
    assert out["args"]["ingest[-1]"] == [
        "--input", str(tmp_path), "--ds", "2026-01-07", "--source", "ml-test"
    ]  # fmt: skip
    assert out["args"]["features[-1]"] == [
        "--ds", "2026-01-07", "--source", "ml-test", "--source-ds", "2026-01-07"
    ]  # fmt: skip
    assert out["events"] == [
        {
            "uri": "delta://warehouse/features/ranker_examples",
            "task": "features",
            "extra": {"ds": "2026-01-07", "source": "ml-test"},
        }
    ]


def test_experiment_analysis_dry_run_maps_live_experiments(airflow_home: Path) -> None:
    out = dag_test(
        airflow_home,
        {
            "dag": "experiment_analysis",
            "logical_date": "2026-01-12T00:00:00+00:00",
            "echo": ["assign", "analyze"],
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
    config = str(REPO / "ab_testing" / "experiments.example.yaml")
    assert out["args"]["assign[-1]"] == [
        "--config", config, "--ds", "2026-01-12", "--source", "ml-latest-small"
    ]  # fmt: skip
    assert out["args"]["analyze[1]"] == [
        "--config", config,
        "--metrics", str(REPO / "ab_testing" / "metrics.example.yaml"),
        "--ds", "2026-01-12",
        "--experiment", "diversity_boost",
    ]  # fmt: skip


def write_tiny_movielens(directory: Path) -> tuple[int, int]:
    """A tiny ml-latest-small directory; returns (movies, ratings)."""
    directory.mkdir(parents=True, exist_ok=True)
    movies = [
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy",
        "2,Jumanji (1995),Adventure|Children|Fantasy",
        "3,Heat (1995),Action|Crime|Thriller",
        '4,"American President, The (1995)",Comedy|Drama|Romance',
    ]
    ratings = [
        f"{user},{item},{rating},{964982703 + 60 * user + item}"
        for user in range(1, 6)
        for item, rating in ((1, 4.0), (2, 3.5), (3, 5.0), (4, 2.0))
        if (user + item) % 5
    ]
    (directory / "movies.csv").write_text("movieId,title,genres\n" + "\n".join(movies) + "\n")
    (directory / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n" + "\n".join(ratings) + "\n"
    )
    return len(movies), len(ratings)


def count(spark: SparkSession, table: TableRef, root: str, ds: date, source: str) -> int:
    frame = spark.read.format("delta").load(table.location(root))
    return frame.where((frame["ds"] == ds) & (frame["source"] == source)).count()


@pytest.mark.spark
def test_recsys_daily_end_to_end_up_to_ingest(
    spark: SparkSession, warehouse_settings: WarehouseSettings, airflow_home: Path, tmp_path: Path
) -> None:
    n_movies, n_ratings = write_tiny_movielens(tmp_path / "ml-tiny")
    root = warehouse_settings.warehouse_root
    out = dag_test(
        airflow_home,
        {
            "dag": "recsys_daily",
            "logical_date": "2026-01-05T00:00:00+00:00",
            "conf": {"input_path": str(tmp_path / "ml-tiny"), "source": "ml-tiny"},
            "mark_success": "features",
        },
        timeout=300,
        RECSYS_WAREHOUSE=root,
    )
    assert out["state"] == "success", out
    assert [t[:3] for t in out["tis"]][1:] == [
        ["ingest", -1, "success"],
        ["setup_warehouse", -1, "success"],
    ]
    ds = date(2026, 1, 5)
    assert count(spark, BRONZE_INTERACTIONS, root, ds, "ml-tiny") == n_ratings
    assert count(spark, BRONZE_ITEMS, root, ds, "ml-tiny") == n_movies
    runs = spark.read.format("delta").load(OPS_INGEST_RUNS.location(root))
    statuses = {r["status"] for r in runs.where(runs["source"] == "ml-tiny").collect()}
    assert statuses == {"ok"}
