"""The one builder of ``bronze.quarantine`` rows: the table columns, literals, per-row values."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import functions as F

from recsys.warehouse.quarantine import QUARANTINE_COLUMNS, of_target, quarantine_rows, row_as_json
from recsys.warehouse.tables import AB_SERVED, BRONZE_ITEMS, BRONZE_QUARANTINE, Col

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark
DS = date(2031, 7, 1)


def test_rows_have_the_table_columns_and_take_literals_or_columns(spark: SparkSession) -> None:
    rejected = spark.createDataFrame(
        [("f.csv", "1,x", "invalid_value", "bad x", date(2031, 7, 2))],
        "file string, line string, reason string, detail string, ds date",
    )
    # A string is a value, never a column name ("reason" and "file" here are columns too).
    rows = quarantine_rows(
        rejected,
        target_table=BRONZE_ITEMS,
        source_file=F.col("file"),
        raw_line=F.col("line"),
        source="reason",
        run_id="r1",
        ds=DS,
    )
    assert tuple(rows.columns) == QUARANTINE_COLUMNS
    assert rows.columns == spark.table(BRONZE_QUARANTINE.qualified_name).columns
    (first,) = rows.collect()
    assert first.asDict() == {
        Col.TARGET_TABLE: "bronze.items",
        Col.SOURCE_FILE: "f.csv",
        Col.RAW_LINE: "1,x",
        Col.REASON: "invalid_value",
        Col.DETAIL: "bad x",
        Col.SOURCE: "reason",
        Col.RUN_ID: "r1",
        Col.DS: DS,
    }
    (per_row,) = quarantine_rows(
        rejected,
        target_table=AB_SERVED,
        source_file="file",
        raw_line=row_as_json("line", Col.DS),
        source=F.col("file"),
        run_id="r2",
        ds=F.col(Col.DS),
    ).collect()
    assert (per_row.source_file, per_row.raw_line, per_row.source, per_row.ds) == (
        "file",
        '{"line":"1,x","ds":"2031-07-02"}',
        "f.csv",
        date(2031, 7, 2),
    )
    assert rows.where(of_target(BRONZE_ITEMS)).count() == 1
    assert rows.where(of_target(AB_SERVED)).count() == 0
