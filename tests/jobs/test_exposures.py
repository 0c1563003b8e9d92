"""The exposures job: served x assigned of a day -> first exposures; bad rows quarantined."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pytest
from pyspark.sql import functions as F

from jobs import exposures as job
from recsys.warehouse.tables import AB_ASSIGNMENTS, AB_EXPOSURES, AB_SERVED, BRONZE_QUARANTINE, Col

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

DAY1, DAY2 = date(2031, 5, 1), date(2031, 5, 2)
EXP = "exposures_job_test"


def assignment(unit: str, variant: str, ds: date) -> tuple[Any, ...]:
    return (unit, EXP, "layer_x", variant, variant == "control", 1, 2, 1, "r", ds)


def served(
    unit: str,
    ts: datetime,
    surface: str = "home",
    items: list[int] | None = None,
    ds: date | None = None,
    source: str = "app",
) -> tuple[Any, ...]:
    shown = [1, 2] if items is None else items
    return (unit, surface, ts, "model", shown, "v1", source, ds or ts.date())


def write(spark: SparkSession, table: str, rows: list[tuple[Any, ...]]) -> None:
    spark.createDataFrame(rows, spark.table(table).schema).writeTo(table).append()


def exposures(spark: SparkSession) -> dict[str, Any]:
    rows = spark.table(AB_EXPOSURES.qualified_name).where(F.col(Col.EXPERIMENT_ID) == EXP)
    return {r.unit_id: r for r in rows.collect()}


def quarantined(spark: SparkSession, ds: date) -> list[Any]:
    q = spark.table(BRONZE_QUARANTINE.qualified_name).where(
        (F.col(Col.DS) == F.lit(ds)) & (F.col(Col.TARGET_TABLE) == "ab.exposures")
    )
    return q.collect()


def test_first_exposures_idempotent_and_quarantine(spark: SparkSession) -> None:
    write(
        spark,
        AB_ASSIGNMENTS.qualified_name,
        [
            assignment("a", "control", DAY1),
            assignment("b", "treat", DAY1),
            assignment("a", "control", DAY2),
            assignment("c", "treat", DAY2),
        ],
    )
    write(
        spark,
        AB_SERVED.qualified_name,
        [
            served("a", datetime(2031, 5, 1, 9)),
            served("a", datetime(2031, 5, 1, 8), surface="item_page", source="replay"),
            served("b", datetime(2031, 5, 1, 12)),
            served("z", datetime(2031, 5, 1, 7)),  # not assigned: exposes nothing
            served("b", datetime(2031, 5, 1, 6), items=[]),  # showed nothing
            served("b", datetime(2031, 4, 30, 23), ds=DAY1),  # in the wrong partition
            served("", datetime(2031, 5, 1, 5)),  # empty unit
        ],
    )
    assert job.main(["--ds", DAY1.isoformat()]) == 0
    got = exposures(spark)
    assert set(got) == {"a", "b"}
    assert (got["a"].first_exposure_ts, got["a"].surface) == (datetime(2031, 5, 1, 8), "item_page")
    assert (got["b"].variant, got["b"].layer_id, got["b"].ds) == ("treat", "layer_x", DAY1)
    bad = quarantined(spark, DAY1)
    assert sorted(r.reason for r in bad) == [
        "invalid_value",
        "null_field",
        "timestamp_out_of_range",
    ]
    assert all(r.source_file == "ab.served" and r.raw_line.startswith("{") for r in bad)

    # A rerun changes nothing and does not duplicate the quarantined rows.
    before = sorted(map(tuple, spark.table(AB_EXPOSURES.qualified_name).collect()))
    assert job.main(["--ds", DAY1.isoformat(), "--run-id", "again"]) == 0
    assert sorted(map(tuple, spark.table(AB_EXPOSURES.qualified_name).collect())) == before
    assert len(quarantined(spark, DAY1)) == 3

    # Day 2: a keeps its first exposure of day 1, c is new; only --source rows are read.
    write(
        spark,
        AB_SERVED.qualified_name,
        [
            served("a", datetime(2031, 5, 2, 1), source="replay"),
            served("c", datetime(2031, 5, 2, 3), source="replay"),
            served("c", datetime(2031, 5, 2, 2), source="app"),
        ],
    )
    assert job.main(["--ds", DAY2.isoformat(), "--source", "replay"]) == 0
    got = exposures(spark)
    assert got["a"].first_exposure_ts == datetime(2031, 5, 1, 8)
    assert (got["c"].first_exposure_ts, got["c"].ds) == (datetime(2031, 5, 2, 3), DAY2)
    assert len(quarantined(spark, DAY1)) == 3  # other days' quarantine untouched


def test_missing_assignments_and_bad_arguments(spark: SparkSession) -> None:
    assert job.main(["--ds", "2031-06-01"]) == 1
    assert job.main(["--ds", "2031-06-01", "--source", "bad source"]) == 2
    with pytest.raises(SystemExit):
        job.parse_args(["--ds", "yesterday"])
