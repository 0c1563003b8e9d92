"""Training validation and evaluation collect only their user sample, never every interaction.

The jobs run in a child process whose SparkSession has ``spark.driver.maxResultSize=1m`` (a
static setting: the shared test session cannot take it), on a generated feature set whose
interactions are several MiB as Arrow. The child first shows that collecting every interaction
does fail there, then trains the two-tower model and SASRec on a 500-user training sample
(``--train-users``) and the ranker (validation on a 50-user sample), and evaluates them,
popularity and ALS (fitted in Spark, factors of the sample only) on a 60-user sample of 4,000
users. Left out: co-visitation (it reads ``features.covisit``, which the generated set does not
write).
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
import json, sys
from datetime import date

from recsys.settings import load_settings
from recsys.warehouse.catalog import apply_ddl
from recsys.warehouse.session import build_spark

root, arts = sys.argv[1], sys.argv[2]
settings = load_settings(
    master="local[2]",
    shuffle_partitions=2,
    ui_enabled=False,
    driver_memory="2g",
    warehouse_root=root,
    max_result_size="1m",
)
spark = build_spark(settings, app_name="bounded-collect", attach=False)
apply_ddl(spark, root)
out = {"max_result_size": spark.sparkContext.getConf().get("spark.driver.maxResultSize")}

from jobs.evaluate import EvalJobConfig
from jobs.evaluate import run as run_eval
from jobs.train import parse_args as parse_train
from jobs.train import run as run_train
from recsys.training import data as D
from tests.helpers.tiny_features import write_tiny_features

ds = date(2026, 4, 1)
write_tiny_features(spark, ds, n_users=4000, n_items=60, n_positives=20)
try:
    D.split_pairs(spark, ds, "leave_last_out")
    out["full_collect"] = "succeeded"
except Exception as err:  # the guard: every interaction is more than maxResultSize
    text = str(err)
    at = text.find("maxResultSize")
    out["full_collect"] = "failed: " + (text[max(0, at - 200) : at + 100] if at >= 0 else text)
common = ["--ds", ds.isoformat(), "--epochs", "1", "--batch-size", "256"]
common += ["--artifacts-dir", arts, "--validation-users", "50"]
for model, extra in (
    ("two_tower", ["--train-users", "500"]),
    ("sasrec", ["--max-len", "20", "--train-users", "500"]),
    ("ranker", ["--ranker-covisit", "off", "--ranker-sasrec", "on"]),
):
    run_train(parse_train(["--model", model, *common, *extra]), root)
models = ("popularity", "als", "two_tower", "sasrec", "two_tower+ranker")
from pathlib import Path
config = EvalJobConfig(
    ds, "leave_last_out", models, Path(arts), als_max_iter=2, als_grid="one", eval_users=60
)
table = run_eval(config, root)
out["models"] = list(table.index)
out["ndcg"] = [float(v) for v in table["NDCG@10"]]
from recsys.warehouse.tables import EVAL_OFFLINE_METRICS
ndcg10 = "metric = 'ndcg' AND k = 10 AND slice = 'all'"
rows = spark.table(EVAL_OFFLINE_METRICS.qualified_name).where(ndcg10)
out["n_users"] = sorted({int(r["n_users"]) for r in rows.collect()})
print("RESULT " + json.dumps(out))
"""


def test_jobs_collect_only_the_sample_under_a_small_max_result_size(tmp_path: Path) -> None:
    root, arts = tmp_path / "warehouse", tmp_path / "models"
    env = {
        **os.environ,
        "RECSYS_WAREHOUSE": str(root),
        "RECSYS_SPARK_UI": "false",
        "RECSYS_MAX_RESULT_SIZE": "1m",  # the jobs' own build_spark() calls ask for the same
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
    }
    env.pop("RECSYS_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(arts)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert lines, proc.stdout[-2000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    assert out["max_result_size"] == "1m"
    # The guard is real: collecting every interaction exceeds it.
    assert out["full_collect"].startswith("failed"), out["full_collect"]
    assert "maxResultSize" in out["full_collect"]
    assert out["models"] == ["popularity", "als", "two_tower", "sasrec", "two_tower+ranker"]
    assert all(v >= 0 for v in out["ndcg"])
    # Each model was evaluated on the 60 sampled users (every tiny user has a test positive).
    assert out["n_users"] == [60]
