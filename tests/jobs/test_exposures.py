"""The exposures job: served x assigned of days -> first exposures; bad rows quarantined."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from pyspark.sql import functions as F

from jobs import exposures as job
from recsys.quality.exposure_checks import CHECK_NAME
from recsys.warehouse.tables import (
    AB_ASSIGNMENTS,
    AB_EXPOSURES,
    AB_SERVED,
    BRONZE_QUARANTINE,
    OPS_DQ_CHECKS,
    Col,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

DAY1, DAY2 = date(2031, 5, 1), date(2031, 5, 2)
EXP = "exposures_job_test"


def assignment(unit: str, variant: str, ds: date, exp: str = EXP) -> tuple[Any, ...]:
    return (unit, exp, "layer_x", variant, variant == "control", 1, 2, 1, "r", ds)


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


def exposures(spark: SparkSession, exp: str = EXP) -> dict[str, Any]:
    rows = spark.table(AB_EXPOSURES.qualified_name).where(F.col(Col.EXPERIMENT_ID) == exp)
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


def test_quarantine_rows_keep_the_served_row_verbatim(spark: SparkSession) -> None:
    rows = [served("b", datetime(2031, 4, 30, 23), ds=DAY1), served("a", datetime(2031, 5, 1))]
    _, bad = job.split_served(
        spark.createDataFrame(rows, spark.table(AB_SERVED.qualified_name).schema)
    )
    (row,) = job.quarantine_rows(bad, "r1").collect()
    assert row.asDict() == {
        Col.TARGET_TABLE: "ab.exposures",
        Col.SOURCE_FILE: "ab.served",
        Col.RAW_LINE: '{"unit_id":"b","surface":"home","served_ts":"2031-04-30T23:00:00.000Z",'
        '"rec_set":"model","item_ids":[1,2],"model_version":"v1","source":"app",'
        '"ds":"2031-05-01"}',
        Col.REASON: "timestamp_out_of_range",
        Col.DETAIL: "served_ts is not on ds",
        Col.SOURCE: "app",
        Col.RUN_ID: "r1",
        Col.DS: DAY1,
    }
    (on_day2,) = job.quarantine_rows(bad, "r1", DAY2).collect()
    assert on_day2.ds == DAY2


def test_missing_assignments_and_bad_arguments(spark: SparkSession) -> None:
    assert job.main(["--ds", "2031-06-01"]) == 1
    assert job.main(["--ds", "2031-06-01", "--source", "bad source"]) == 2
    with pytest.raises(SystemExit):
        job.parse_args(["--ds", "yesterday"])


RANGE_EXP = "exposures_range_test"
R1, R2, R3 = date(2031, 7, 1), date(2031, 7, 2), date(2031, 7, 3)


def range_state(spark: SparkSession) -> tuple[Counter[tuple[Any, ...]], Counter[tuple[Any, ...]]]:
    """(exposures of RANGE_EXP, quarantined rows of R1..R3 without run id), as multisets."""
    exp = spark.table(AB_EXPOSURES.qualified_name).where(F.col(Col.EXPERIMENT_ID) == RANGE_EXP)
    q = spark.table(BRONZE_QUARANTINE.qualified_name).where(
        F.col(Col.DS).between(R1, R3) & (F.col(Col.TARGET_TABLE) == "ab.exposures")
    )
    return (
        Counter(tuple(r) for r in exp.collect()),
        Counter(tuple(r) for r in q.drop(Col.RUN_ID).collect()),
    )


def test_range_equals_per_day_runs_and_reruns_idempotently(spark: SparkSession) -> None:
    write(
        spark,
        AB_ASSIGNMENTS.qualified_name,
        [assignment("r1", "control", d, RANGE_EXP) for d in (R1, R2, R3)]
        + [assignment("r2", "treat", d, RANGE_EXP) for d in (R2, R3)]
        + [assignment("r3", "treat", R3, RANGE_EXP), assignment("r4", "control", R1, RANGE_EXP)],
    )
    write(
        spark,
        AB_SERVED.qualified_name,
        [
            served("r1", datetime(2031, 7, 1, 10)),
            served("r1", datetime(2031, 7, 1, 9), surface="item_page", source="replay"),
            served("r1", datetime(2031, 7, 2, 1)),  # later: keeps day 1
            served("r2", datetime(2031, 7, 1, 2)),  # not assigned on day 1: exposes nothing
            served("r2", datetime(2031, 7, 3, 4)),
            served("r2", datetime(2031, 7, 2, 23)),
            served("r3", datetime(2031, 7, 3, 5)),
            served("r4", datetime(2031, 7, 2, 6)),  # assigned on day 1 only: nothing
            served("r1", datetime(2031, 7, 1, 6), items=[]),
            served("r3", datetime(2031, 7, 2, 7), ds=R3),  # in the wrong partition
            served("", datetime(2031, 7, 2, 8)),
        ],
    )
    for day in (R1, R2, R3):
        assert job.main(["--ds", str(day), "--run-id", "per-day"]) == 0
    per_day = range_state(spark)
    got = exposures(spark, RANGE_EXP)
    assert set(got) == {"r1", "r2", "r3"}
    assert (got["r1"].first_exposure_ts, got["r1"].ds) == (datetime(2031, 7, 1, 9), R1)
    assert (got["r2"].first_exposure_ts, got["r3"].ds) == (datetime(2031, 7, 2, 23), R3)
    assert sorted(k[3] for k in per_day[1].elements()) == [
        "invalid_value",
        "null_field",
        "timestamp_out_of_range",
    ]

    # The range from an empty start gives the same exposures and quarantine as the days did.
    spark.sql(f"DELETE FROM {AB_EXPOSURES.qualified_name} WHERE experiment_id = '{RANGE_EXP}'")
    assert exposures(spark, RANGE_EXP) == {}
    rng = ["--from-ds", str(R1), "--ds", str(R3)]
    assert job.main([*rng, "--run-id", "range"]) == 0
    assert range_state(spark) == per_day
    assert {r.run_id for r in quarantined(spark, R2)} == {"range"}
    assert job.main([*rng, "--run-id", "again"]) == 0  # a rerun duplicates nothing
    assert range_state(spark) == per_day
    assert {r.run_id for r in quarantined(spark, R3)} == {"again"}

    # A day of the range without assignments: exit 1 before anything is written.
    late = ["--from-ds", str(R2), "--ds", str(R3 + timedelta(days=2)), "--run-id", "none"]
    assert job.main(late) == 1
    assert {r.run_id for r in quarantined(spark, R2)} == {"again"}


def test_bad_ranges_exit_2(caplog: pytest.LogCaptureFixture) -> None:
    assert job.main(["--from-ds", "2031-07-03", "--ds", "2031-07-01"]) == 2
    assert "--from-ds: 2031-07-03 is after --ds 2031-07-01" in caplog.text
    assert job.main(["--from-ds", "2030-06-30", "--ds", "2031-07-01"]) == 2  # 367 days
    assert "367 days; at most 366" in caplog.text
    longest = job.parse_args(["--from-ds", "2030-07-01", "--ds", "2031-07-01"])
    assert (len(longest.days), longest.days[-1]) == (366, date(2031, 7, 1))
    assert job.parse_args(["--ds", "2031-07-01"]).days == (date(2031, 7, 1),)


RECS_EXP, OTHER_EXP = "exposures_recs_check", "exposures_other_layer"
DAY3 = date(2031, 8, 1)  # a day and units no other test here uses


def dq_rows_of(spark: SparkSession, ds: date) -> dict[str, Any]:
    rows = spark.table(OPS_DQ_CHECKS.qualified_name).where(F.col(Col.DS) == F.lit(ds)).collect()
    return {r.table_name: r for r in rows if r.check_name == CHECK_NAME}


def test_served_rec_set_is_cross_checked_against_the_assigned_variant(
    spark: SparkSession, caplog: pytest.LogCaptureFixture
) -> None:
    def shown(unit: str, hour: int, rec_set: str) -> tuple[Any, ...]:
        return (unit, "home", datetime(2031, 8, 1, hour), rec_set, [1, 2], "v1", "app", DAY3)

    write(
        spark,
        AB_ASSIGNMENTS.qualified_name,
        [
            assignment("m1", "popularity", DAY3, RECS_EXP),
            assignment("m2", "model", DAY3, RECS_EXP),
            assignment("m3", "popularity", DAY3, RECS_EXP),
            assignment("m4", "model", DAY3, RECS_EXP),
            # Another layer's experiment whose variants name no set: not checked.
            assignment("m3", "treat", DAY3, OTHER_EXP),
        ],
    )
    write(
        spark,
        AB_SERVED.qualified_name,
        [
            shown("m1", 9, "popularity"),
            shown("m2", 9, "model"),
            shown("m2", 10, "model"),
            shown("m3", 8, "model"),  # a stale app config served m3 the other arm's set
            shown("m3", 11, "popularity"),
        ],
    )
    # Another check's row of the same day must survive this job's writes.
    other = [("row_count", "serve.ranked[model]", 1.0, "> 0", True, "1 rows", "dq", DAY3)]
    spark.createDataFrame(
        [(*r[:7], datetime(2031, 8, 1), r[7]) for r in other],
        spark.table(OPS_DQ_CHECKS.qualified_name).schema,
    ).writeTo(OPS_DQ_CHECKS.qualified_name).append()

    with caplog.at_level("WARNING", logger="jobs.exposures"):
        assert job.main(["--ds", DAY3.isoformat(), "--run-id", "x1"]) == 0
    # Intent to treat: m3 stays in its assigned arm, first exposed by the mismatched row.
    got = exposures(spark, RECS_EXP)
    assert (got["m3"].variant, got["m3"].first_exposure_ts) == (
        "popularity",
        datetime(2031, 8, 1, 8),
    )
    assert set(got) == {"m1", "m2", "m3"}  # m4 was assigned but never served
    checks = dq_rows_of(spark, DAY3)
    assert set(checks) == {f"ab.exposures[{RECS_EXP}]"}  # the other experiment is not checked
    row = checks[f"ab.exposures[{RECS_EXP}]"]
    assert row.observed == pytest.approx(1 / 5)
    assert (row.passed, row.threshold, row.run_id) == (False, "<= 0.01", "x1")
    assert row.detail.startswith("1 of 5 served rows (1 units)")
    assert any(
        RECS_EXP in r.getMessage() and "1 of 5 served rows" in r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING"
    )
    assert any("DQ FAILED" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")

    # A looser threshold passes; the rerun replaces this check's row, other checks untouched.
    argv = ["--ds", DAY3.isoformat(), "--run-id", "x2", "--max-rec-set-mismatch-share", "0.25"]
    assert job.main(argv) == 0
    checks = dq_rows_of(spark, DAY3)
    assert [(r.passed, r.run_id) for r in checks.values()] == [(True, "x2")]
    all_rows = spark.table(OPS_DQ_CHECKS.qualified_name).where(F.col(Col.DS) == F.lit(DAY3))
    assert all_rows.where(F.col(Col.CHECK_NAME) == "row_count").count() == 1

    # One source alone gets its own row; the all-sources row stays.
    assert job.main(["--ds", DAY3.isoformat(), "--source", "app", "--run-id", "x3"]) == 0
    assert set(dq_rows_of(spark, DAY3)) == {
        f"ab.exposures[{RECS_EXP}]",
        f"ab.exposures[{RECS_EXP}]@app",
    }
    assert job.main(["--ds", DAY3.isoformat(), "--max-rec-set-mismatch-share", "1.5"]) == 2
