"""Writing to warehouse tables: one Delta commit per call, idempotent by key."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from recsys.warehouse.tables import Col, TableRef

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def replace_delivery(df: DataFrame, table: TableRef, ds: date, source: str) -> None:
    """Replace the rows of ``(ds, source)`` in ``table`` with ``df`` in one Delta commit.

    Readers see the old delivery or the new one, never a mix, and a rerun never duplicates.
    ``df`` must hold only rows of that ``(ds, source)`` (Delta refuses the commit otherwise).
    """
    condition = (F.col(Col.DS) == F.lit(ds)) & (F.col(Col.SOURCE) == F.lit(source))
    df.writeTo(table.qualified_name).overwrite(condition)


def append(df: DataFrame, table: TableRef) -> None:
    """Append ``df`` to ``table`` in one Delta commit (audit logs)."""
    df.writeTo(table.qualified_name).append()
