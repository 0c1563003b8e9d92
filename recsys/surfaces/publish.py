"""Publishing a surface for one day: stamp, conform to the table, replace the day in one commit."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from recsys.warehouse.io import replace_partition
from recsys.warehouse.tables import Col, TableRef

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def conform(df: DataFrame, table: TableRef, ds: date, run_id: str) -> DataFrame:
    """``df`` stamped with ``run_id`` and ``ds``, its columns in the table's order and types.

    Raises:
        ValueError: a column of the table is missing from ``df`` (after stamping).
    """
    schema = df.sparkSession.table(table.qualified_name).schema
    stamped = df.withColumns({Col.RUN_ID: F.lit(run_id), Col.DS: F.lit(ds)})
    missing = [f.name for f in schema.fields if f.name not in stamped.columns]
    if missing:
        raise ValueError(f"df: lacks columns {missing!r} of {table}")
    return stamped.select(*[F.col(f.name).cast(f.dataType) for f in schema.fields])


def publish_day(df: DataFrame, table: TableRef, ds: date, run_id: str) -> int:
    """Replace day ``ds`` of ``table`` with ``df`` in one Delta commit; returns the rows written.

    Readers see the old day or the new one, never a mix; a rerun replaces the day.
    """
    replace_partition(conform(df, table, ds, run_id), table, ds)
    spark = df.sparkSession
    return spark.table(table.qualified_name).where(F.col(Col.DS) == F.lit(ds)).count()
