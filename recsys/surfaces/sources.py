"""Inputs the surface jobs share: which bronze delivery to read."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from recsys.warehouse.completion import Pipeline, latest_completed_ds
from recsys.warehouse.tables import BRONZE_INTERACTIONS, BRONZE_ITEMS, Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class MissingInputError(RuntimeError):
    """An input the job needs has no rows (the job exits 2 and names it)."""


def resolve_delivery(
    spark: SparkSession, source: str, ds: date, source_ds: date | None = None
) -> date:
    """The bronze delivery date to read: ``source_ds``, or the latest COMPLETED delivery of
    ``source`` on or before ``ds`` (one whose ingest finished all its commits; any, on a
    warehouse without completion records: :mod:`recsys.warehouse.completion`).

    Raises:
        MissingInputError: no such delivery has interactions.
    """
    rows = spark.table(BRONZE_INTERACTIONS.qualified_name).where(F.col(Col.SOURCE) == F.lit(source))
    if source_ds is not None:
        if rows.where(F.col(Col.DS) == F.lit(source_ds)).limit(1).count() == 0:
            raise MissingInputError(
                f"source_ds: no interactions of {source!r} for ds {source_ds.isoformat()}"
            )
        return source_ds
    found = latest_completed_ds(rows, spark, Pipeline.INGEST, source, on_or_before=ds)
    if found is None:
        raise MissingInputError(
            f"source: no completed delivery of {source!r} in bronze on or before {ds.isoformat()}"
        )
    return found


def delivery(spark: SparkSession, source: str, source_ds: date) -> tuple[DataFrame, DataFrame]:
    """``bronze.interactions`` and ``bronze.items`` rows of the delivery ``(source, source_ds)``."""
    where = (F.col(Col.SOURCE) == F.lit(source)) & (F.col(Col.DS) == F.lit(source_ds))
    return (
        spark.table(BRONZE_INTERACTIONS.qualified_name).where(where),
        spark.table(BRONZE_ITEMS.qualified_name).where(where),
    )
