"""The assignment job end to end: latest users delivery in, days of ab.assignments out."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import date, datetime, timedelta
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
from tests.helpers.experiments import experiment, layer

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

SOURCE = "ab-assign-test"
DS = date(2030, 1, 4)

CONFIG: dict[str, Any] = {
    "version": 3,
    "holdout": {"salt": "holdout-job", "buckets": 1000},
    "layers": [
        layer(
            "ranking",
            experiment(
                "adults_only",
                "2030-01-01",
                "2030-02-01",
                [0, 6000],
                {"control": 1, "treat": 1},
                targeting=[
                    {"attribute": "age", "op": "ge", "value": 18},
                    {"attribute": "gender", "op": "eq", "value": "F"},
                ],
            ),
        ),
        layer(
            "ui",
            experiment(
                "everyone",
                "2030-01-01",
                "2030-02-01",
                [0, 10000],
                {"control": 1, "b": 2},
                ramp=[{"date": "2030-01-01", "percent": 50}],
            ),
        ),
    ],
}


def write_users(
    spark: SparkSession, ds: date, n: int, source: str = SOURCE
) -> list[dict[str, Any]]:
    """A bronze.users delivery of ``n`` users for (source, ds); returns their attributes."""
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
            source,
            "test",
            ds,
        )
        for i in range(1, n + 1)
    ]
    df = spark.createDataFrame(rows, spark.table(BRONZE_USERS.qualified_name).schema)
    replace_delivery(df, BRONZE_USERS, ds, source)
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


RANGE_SOURCE = "ab-assign-range-test"
FIRST, LAST = date(2030, 1, 10), date(2030, 1, 13)


def range_rows(spark: SparkSession, lo: date, hi: date) -> Counter[tuple[Any, ...]]:
    """Rows of ab.assignments on days lo..hi, without the run id, as a multiset."""
    df = spark.table(AB_ASSIGNMENTS.qualified_name).where(F.col(Col.DS).between(lo, hi))
    return Counter(tuple(r) for r in df.drop(Col.RUN_ID).collect())


def run_ids(spark: SparkSession, ds: date) -> set[str]:
    return {r[Col.RUN_ID] for r in day_rows(spark, ds)}


def test_range_equals_per_day_runs_and_reruns_idempotently(
    spark: SparkSession, tmp_path: Path
) -> None:
    # The plan changes inside the range: adults_only starts on day 2, a ramp step on day 3, and a
    # new population is delivered on day 3.
    config = copy.deepcopy(CONFIG)
    config["layers"][0]["experiments"][0]["start"] = "2030-01-11"
    config["layers"][1]["experiments"][0]["ramp"].append({"date": "2030-01-12", "percent": 80})
    config_path = tmp_path / "experiments.yaml"
    config_path.write_text(yaml.safe_dump(config))
    write_users(spark, date(2030, 1, 8), 300, RANGE_SOURCE)
    write_users(spark, date(2030, 1, 12), 600, RANGE_SOURCE)
    argv = ["--config", str(config_path), "--source", RANGE_SOURCE]
    after = LAST + timedelta(days=1)  # assigned per day, outside the range: left alone
    for i in range((after - FIRST).days + 1):
        day = FIRST + timedelta(days=i)
        assert job.main([*argv, "--ds", str(day), "--run-id", "per-day"]) == 0
    per_day = range_rows(spark, FIRST, after)
    assert {k[-1] for k in per_day} == {FIRST + timedelta(days=i) for i in range(5)}
    assert not any(k[1] == "adults_only" and k[-1] == FIRST for k in per_day)

    rng = [*argv, "--from-ds", str(FIRST), "--ds", str(LAST)]
    assert job.main([*rng, "--run-id", "range"]) == 0
    assert range_rows(spark, FIRST, after) == per_day  # the same rows, no duplicate
    assert all(run_ids(spark, FIRST + timedelta(days=i)) == {"range"} for i in range(4))
    assert run_ids(spark, after) == {"per-day"}
    assert job.main([*rng, "--run-id", "again"]) == 0  # rerun: replaced, not duplicated
    assert range_rows(spark, FIRST, after) == per_day
    assert run_ids(spark, LAST) == {"again"}

    # A day of the range without a population: exit 1 before anything is written.
    late = ["--from-ds", "2030-01-05", "--ds", "2030-01-20", "--run-id", "none"]
    assert job.main([*argv, *late]) == 1
    assert run_ids(spark, LAST) == {"again"}
    assert range_rows(spark, after + timedelta(days=1), date(2030, 1, 20)) == Counter()


def test_bad_ranges_exit_2(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config_path = tmp_path / "experiments.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    argv = ["--config", str(config_path)]
    assert job.main([*argv, "--from-ds", "2030-01-05", "--ds", "2030-01-04"]) == 2
    assert "--from-ds: 2030-01-05 is after --ds 2030-01-04" in caplog.text
    assert job.main([*argv, "--from-ds", "2029-01-01", "--ds", "2030-01-02"]) == 2  # 367 days
    assert "367 days; at most 366" in caplog.text
    longest = job.parse_args([*argv, "--from-ds", "2029-01-02", "--ds", "2030-01-02"])
    assert (len(longest.days), longest.days[0], longest.days[-1]) == (
        366,
        date(2029, 1, 2),
        date(2030, 1, 2),
    )
    assert job.parse_args([*argv, "--ds", "2030-01-02"]).days == (date(2030, 1, 2),)
    with pytest.raises(SystemExit):
        job.parse_args([*argv, "--ds", "2030-01-02", "--from-ds", "soon"])
