"""Every task of a ``recsys_daily`` training day runs under ``spark.driver.maxResultSize=1m``.

Issue 16 asks for a test that no task brings data proportional to users or interactions to the
driver. A child process generates a synthetic bronze delivery whose interactions are several
MiB as Arrow (3,000 users, 100 items), shows that collecting them fails under the guard, then
runs every Spark task of the DAG's training day in topological order, with the arguments
Airflow would submit (``bench.bench_scale.dag_tasks`` renders the real operators), each through
its job's ``main`` in one process whose one SparkSession has the 1 MiB limit. The only changes
to the DAG's arguments are the sample sizes, scaled down with the population as the defaults
(100,000 evaluation users, 10,000 validation users) are a tenth of a 1M-user warehouse: a task
that collects only its sample passes; one that collects every user or interaction fails.
Evaluation also fits the ALS baseline (one grid point, two iterations) to cover its Spark path.

``ingest`` is not run (the generator writes bronze directly, as in the scale benchmark). What
the 1 MiB limit cannot tell apart at this size: a table of one small row per user (3,000 rows)
fits under it, so the guard catches collects of interactions (about 20 rows per user), not of
per-user tables; and the catalogue is kept at 100 items so that what is meant to be collected
(item arrays, the co-visitation matrix of at most ``items × top_n`` entries, model weights)
fits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.settings import PROJECT_ROOT

pytestmark = [pytest.mark.spark, pytest.mark.slow]

CHILD = r"""
import importlib, json, os, sys
from datetime import date

from bench.bench_scale import dag_tasks
from jobs import generate_synthetic, setup_warehouse
from recsys.warehouse.session import build_spark
from recsys.warehouse.tables import BRONZE_INTERACTIONS

ds = date(2027, 1, 3)
out = {"tasks": []}
if setup_warehouse.main([]) != 0:
    raise SystemExit("setup_warehouse failed")
gen = ["--users", "3000", "--items", "100", "--interactions", "150000", "--ds", ds.isoformat()]
if generate_synthetic.main(gen) != 0:
    raise SystemExit("generate_synthetic failed")
spark = build_spark(app_name="bounded-collect-daily")
out["max_result_size"] = spark.sparkContext.getConf().get("spark.driver.maxResultSize")
bronze = spark.table(BRONZE_INTERACTIONS.qualified_name)
out["interactions"] = bronze.count()
out["users"] = bronze.select("user_id").distinct().count()
try:
    spark.table(BRONZE_INTERACTIONS.qualified_name).toPandas()
    out["full_collect"] = "succeeded"
except Exception as err:  # the guard: every interaction is more than maxResultSize
    text = str(err)
    at = text.find("maxResultSize")
    out["full_collect"] = "failed: " + (text[max(0, at - 200) : at + 100] if at >= 0 else text)

params = {
    "source": "synthetic",
    "force_retrain": True,
    "train_every_days": 365,
    "train_epochs": 1,
    "train_users": 400,
    "content_embeddings": False,
    "eval_models": "popularity,als,two_tower,sasrec,two_tower+ranker",
}
# Samples scaled with the population, and one short ALS fit instead of the grid (argparse
# keeps the last value of a repeated option).
SAMPLES = {
    "train": ["--validation-users", "100"],
    "evaluate": ["--eval-users", "200", "--als-grid", "one", "--als-max-iter", "2"],
}
for task in dag_tasks(ds, params, dict(os.environ)):
    at = next(i for i, part in enumerate(task.command) if part.endswith(".py"))
    job = os.path.basename(task.command[at])[: -len(".py")]
    args = task.command[at + 1 :] + SAMPLES.get(job, [])
    try:
        rc = importlib.import_module("jobs." + job).main(args)
    except Exception as err:  # say which task broke the guard, and how
        text = str(err)
        at = max(0, text.find("maxResultSize") - 300)
        rc = f"raised {type(err).__name__}: {text[at : at + 600]}"
    out["tasks"].append([task.task_id, rc])
    if rc != 0:
        break

def count(table, where):
    return spark.table(table).where(where).count()

day = f"ds = '{ds.isoformat()}'"
out["recommendations"] = count("serve.recommendations", day)
served = spark.table("serve.recommendations").where(day)
out["users_served"] = served.select("user_id").distinct().count()
out["dq_failed"] = count("ops.dq_checks", day + " AND NOT passed")
ndcg10 = spark.table("eval.offline_metrics").where("metric = 'ndcg' AND k = 10 AND slice = 'all'")
out["evaluated"] = sorted({(r["model_name"], int(r["n_users"])) for r in ndcg10.collect()})
print("RESULT " + json.dumps(out))
"""


def test_daily_dag_tasks_run_under_a_small_max_result_size(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    env = {
        **os.environ,
        "RECSYS_WAREHOUSE": str(root),
        "RECSYS_SPARK_UI": "false",
        "RECSYS_MAX_RESULT_SIZE": "1m",
        "RECSYS_SPARK_MASTER": "local[2]",
        "RECSYS_SHUFFLE_PARTITIONS": "2",
        "RECSYS_DRIVER_MEMORY": "2g",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "HF_HUB_OFFLINE": "1",
        # dag_tasks renders the real operators: Airflow needs a home and the Spark connection.
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW_CONN_SPARK_LOCAL": json.dumps({"conn_type": "spark", "host": "local[2]"}),
    }
    env.pop("RECSYS_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert lines, (proc.stdout[-2000:], proc.stderr[-4000:])
    out = json.loads(lines[-1][len("RESULT ") :])
    assert out["max_result_size"] == "1m"
    # The guard is real: the day's interactions do not fit under it.
    assert out["interactions"] > 50_000
    assert out["full_collect"].startswith("failed"), out["full_collect"]
    assert "maxResultSize" in out["full_collect"]
    tasks = dict((task, rc) for task, rc in out["tasks"])
    failed = {task: rc for task, rc in tasks.items() if rc != 0}
    assert not failed, failed
    want = {
        "setup_warehouse", "features", "trending", "train_two_tower", "train_sasrec",
        "train_ranker", "evaluate", "promote", "embeddings", "related_items", "scoring",
        "data_quality", "publish",
    }  # fmt: skip
    assert set(tasks) == want
    # Published for every user of the delivery: up to 50 model and 50 popularity items each
    # (fewer for a user who has seen most of the 100 items).
    assert out["users"] > 2_500
    assert out["users_served"] == out["users"]
    assert out["users"] * 50 < out["recommendations"] <= out["users"] * 100
    assert out["dq_failed"] == 0
    # Every model, ALS (fitted in Spark) included, was judged on the same users of the
    # 200-user sample (those with a held-out item), not on every user.
    models = {"popularity", "als", "two_tower", "sasrec", "two_tower+ranker"}
    assert {m for m, _ in out["evaluated"]} == models
    (n_users,) = {n for _, n in out["evaluated"]}
    assert 150 < n_users <= 200
