"""Completion records with Spark: record, retract, completed days, the no-record fallback, and
the app-side (delta-rs) reader of the same table."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import functions as F

from recsys.warehouse.completion import (
    Pipeline,
    completed_days,
    is_completed,
    latest_completed_ds,
    only_completed,
    record_completion,
    retract_completion,
    table_version,
)
from recsys.warehouse.tables import BRONZE_ITEMS, OPS_COMPLETED_RUNS, Col

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from recsys.settings import WarehouseSettings

pytestmark = pytest.mark.spark

SOURCE = "completion-test"
D1, D2, D3 = date(2033, 1, 1), date(2033, 1, 2), date(2033, 1, 3)


def days(spark: SparkSession, source: str = SOURCE) -> set[date] | None:
    frame = completed_days(spark, Pipeline.INGEST, source)
    return None if frame is None else {r[Col.DS] for r in frame.collect()}


def test_record_retract_and_read(spark: SparkSession) -> None:
    # No record of this source yet: completion is not tracked for it, every day counts.
    assert days(spark) is None
    assert is_completed(spark, Pipeline.INGEST, D1, SOURCE)
    frame = spark.createDataFrame([(D1,), (D2,), (D3,)], f"{Col.DS} date")
    assert only_completed(frame, spark, Pipeline.INGEST, SOURCE).count() == 3

    versions = record_completion(spark, Pipeline.INGEST, D1, "run-a", [BRONZE_ITEMS], SOURCE)
    assert versions == {BRONZE_ITEMS.qualified_name: table_version(spark, BRONZE_ITEMS)}
    record_completion(spark, "ingest", D2, "run-b", [BRONZE_ITEMS], SOURCE)
    record_completion(spark, Pipeline.INGEST, D2, "run-c", [BRONZE_ITEMS], SOURCE)  # rerun
    assert days(spark) == {D1, D2}
    rows = spark.table(OPS_COMPLETED_RUNS.qualified_name).where(F.col(Col.SOURCE) == SOURCE)
    assert sorted((r[Col.DS], r[Col.RUN_ID]) for r in rows.collect()) == [
        (D1, "run-a"),
        (D2, "run-c"),  # replaced, never duplicated
    ]
    assert {r[Col.DS] for r in only_completed(frame, spark, "ingest", SOURCE).collect()} == {
        D1,
        D2,
    }
    assert latest_completed_ds(frame, spark, Pipeline.INGEST, SOURCE) == D2
    assert latest_completed_ds(frame, spark, Pipeline.INGEST, SOURCE, on_or_before=D1) == D1
    assert not is_completed(spark, Pipeline.INGEST, D3, SOURCE)

    # A rerun retracts its day before writing: D2 is incomplete until it records again.
    assert retract_completion(spark, Pipeline.INGEST, D2, SOURCE)
    assert not retract_completion(spark, Pipeline.INGEST, D2, SOURCE)  # nothing left: no commit
    assert days(spark) == {D1}
    assert latest_completed_ds(frame, spark, Pipeline.INGEST, SOURCE) == D1
    # Other sources and pipelines are separate.
    assert days(spark, "completion-other") is None


def test_delta_rs_reader_reads_what_spark_wrote(
    spark: SparkSession, warehouse_settings: WarehouseSettings
) -> None:
    from deltalake import DeltaTable

    from recsys.reader.snapshots import read_completed_days

    record_completion(spark, Pipeline.RECSYS_DAILY, D3, "daily-run", [BRONZE_ITEMS])
    table = DeltaTable(OPS_COMPLETED_RUNS.location(warehouse_settings.warehouse_root))
    got = read_completed_days(table, Pipeline.RECSYS_DAILY)
    assert got is not None
    assert D3 in got


def test_caller_mistakes_raise(spark: SparkSession) -> None:
    with pytest.raises(ValueError, match="pipeline"):
        record_completion(spark, "nightly", D1, "r", [BRONZE_ITEMS])
    with pytest.raises(ValueError, match="source"):
        record_completion(spark, Pipeline.INGEST, D1, "r", [BRONZE_ITEMS], "Bad Source\n")
    with pytest.raises(ValueError, match="run_id"):
        record_completion(spark, Pipeline.INGEST, D1, " ", [BRONZE_ITEMS], SOURCE)
    with pytest.raises(ValueError, match="pipeline"):
        completed_days(spark, "ingest\n")
