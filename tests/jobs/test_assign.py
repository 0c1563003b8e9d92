"""The assignment job end to end: latest users delivery in, one day of ab.assignments out."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from pyspark.sql import functions as F

from ab_testing.assignment import assign
from ab_testing.config import load_config
from jobs import assign as job
from recsys.warehouse.io import replace_delivery
from recsys.warehouse.tables import AB_ASSIGNMENTS, BRONZE_USERS, Col

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

SOURCE = "ab-assign-test"
DS = date(2030, 1, 4)

CONFIG: dict[str, Any] = {
    "version": 3,
    "holdout": {"salt": "holdout-job", "buckets": 1000},
    "layers": [
        {
            "id": "ranking",
            "experiments": [
                {
                    "id": "adults_only",
                    "start": "2030-01-01",
                    "end": "2030-02-01",
                    "buckets": [0, 6000],
                    "variants": [
                        {"id": "control", "weight": 1, "control": True},
                        {"id": "treat", "weight": 1},
                    ],
                    "targeting": [
                        {"attribute": "age", "op": "ge", "value": 18},
                        {"attribute": "gender", "op": "eq", "value": "F"},
                    ],
                }
            ],
        },
        {
            "id": "ui",
            "experiments": [
                {
                    "id": "everyone",
                    "start": "2030-01-01",
                    "end": "2030-02-01",
                    "buckets": [0, 10000],
                    "ramp": [{"date": "2030-01-01", "percent": 50}],
                    "variants": [
                        {"id": "control", "weight": 1, "control": True},
                        {"id": "b", "weight": 2},
                    ],
                }
            ],
        },
    ],
}


def write_users(spark: SparkSession, ds: date, n: int) -> list[dict[str, Any]]:
    """A bronze.users delivery of ``n`` users for (SOURCE, ds); returns their attributes."""
    when = datetime(2029, 12, 1)
    rows = [
        (
            i,
            when,
            when,
            5 + i % 9,
            "F" if i % 2 else "M",
            10 + i % 30,
            "other",
            "00000",
            SOURCE,
            "test",
            ds,
        )
        for i in range(1, n + 1)
    ]
    df = spark.createDataFrame(rows, spark.table(BRONZE_USERS.qualified_name).schema)
    replace_delivery(df, BRONZE_USERS, ds, SOURCE)
    return [{"user_id": r[0], "gender": r[4], "age": r[5]} for r in rows]


def day_rows(spark: SparkSession, ds: date) -> list[Any]:
    return spark.table(AB_ASSIGNMENTS.qualified_name).where(F.col(Col.DS) == F.lit(ds)).collect()


def test_job_assigns_the_latest_delivery_and_reruns_idempotently(
    spark: SparkSession, tmp_path: Path
) -> None:
    config_path = tmp_path / "experiments.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    write_users(spark, date(2030, 1, 1), 50)
    users = write_users(spark, date(2030, 1, 3), 800)  # the latest on or before DS
    write_users(spark, date(2030, 1, 9), 20)  # after DS: ignored
    argv = ["--config", str(config_path), "--ds", DS.isoformat(), "--source", SOURCE]
    assert job.main([*argv, "--run-id", "first"]) == 0
    cfg = load_config(config_path)
    expected = {
        (str(u["user_id"]), a.experiment_id, a.variant, a.is_control)
        for u in users
        for a in assign(cfg, str(u["user_id"]), u, on=DS)
    }
    rows = day_rows(spark, DS)
    got = {(r[Col.UNIT_ID], r[Col.EXPERIMENT_ID], r[Col.VARIANT], r[Col.IS_CONTROL]) for r in rows}
    assert got == expected
    assert {r[Col.CONFIG_VERSION] for r in rows} == {3}
    assert {r[Col.RUN_ID] for r in rows} == {"first"}
    assert {r[Col.EXPERIMENT_ID] for r in rows} == {"adults_only", "everyone"}
    assert job.main([*argv, "--run-id", "second"]) == 0  # rerun: replaced, not duplicated
    again = day_rows(spark, DS)
    assert len(again) == len(rows)
    assert {r[Col.RUN_ID] for r in again} == {"second"}


def test_bad_config_and_missing_population(spark: SparkSession, tmp_path: Path) -> None:
    bad = dict(CONFIG, layers=[dict(CONFIG["layers"][1], id="ui; DROP TABLE ab.assignments")])
    bad_path = tmp_path / "bad.yaml"
    bad_path.write_text(yaml.safe_dump(bad))
    assert job.main(["--config", str(bad_path), "--ds", DS.isoformat()]) == 2
    assert job.main(["--config", str(tmp_path / "absent.yaml"), "--ds", DS.isoformat()]) == 2
    good_path = tmp_path / "good.yaml"
    good_path.write_text(yaml.safe_dump(CONFIG))
    argv = ["--config", str(good_path), "--ds", DS.isoformat()]
    assert job.main([*argv, "--source", "it's"]) == 2
    assert job.main([*argv, "--source", "no-such-source"]) == 1
