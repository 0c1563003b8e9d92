"""Rows of ``bronze.quarantine``: the one builder every writer of rejected rows uses.

A rejected row is kept, not dropped: the table it was meant for, where it came from, the row as
read, a machine-readable reason with a human-readable detail, and the delivery (``source``,
``ds``) and run that rejected it. Ingest, ``jobs.exposures`` and ``jobs.replay`` build their
quarantine rows with :func:`quarantine_rows` and write them with :mod:`recsys.warehouse.io`.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, TypeAlias

from pyspark.sql import Column
from pyspark.sql import functions as F

from recsys.warehouse.tables import Col, TableRef

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: A value of every row (a literal: a string is a value, never a column name) or a Column.
Value: TypeAlias = str | date | TableRef | Column

#: ``bronze.quarantine``'s columns, in its order.
QUARANTINE_COLUMNS: tuple[str, ...] = (
    Col.TARGET_TABLE,
    Col.SOURCE_FILE,
    Col.RAW_LINE,
    Col.REASON,
    Col.DETAIL,
    Col.SOURCE,
    Col.RUN_ID,
    Col.DS,
)


def _value(value: Value) -> Column:
    if isinstance(value, Column):
        return value
    if isinstance(value, TableRef):
        return F.lit(value.qualified_name)
    return F.lit(value)


def row_as_json(*columns: str | Column) -> Column:
    """A ``raw_line`` for a rejected table row: ``columns`` as one JSON object."""
    return F.to_json(F.struct(*columns))


def quarantine_rows(
    rejected: DataFrame,
    *,
    target_table: TableRef,
    source_file: Value,
    raw_line: Column,
    source: Value,
    run_id: str,
    ds: Value,
) -> DataFrame:
    """``bronze.quarantine`` rows, one per row of ``rejected``, in the table's column order.

    Args:
        rejected: Rows that failed validation, with columns ``reason`` (a
            :class:`recsys.settings.Reason` value, never NULL) and ``detail`` (text or NULL).
        target_table: The table the rows were meant for.
        source_file: Where they came from: a file (per row, a Column) or a table.
        raw_line: The row as read (:func:`row_as_json` for table rows).
        source: The delivery (partition) they belong to.
        run_id: The run that rejected them.
        ds: Their day (partition): a date, or a Column for rows of several days.
    """
    return rejected.select(
        _value(target_table).alias(Col.TARGET_TABLE),
        _value(source_file).alias(Col.SOURCE_FILE),
        raw_line.alias(Col.RAW_LINE),
        F.col(Col.REASON),
        F.col(Col.DETAIL),
        _value(source).alias(Col.SOURCE),
        F.lit(run_id).alias(Col.RUN_ID),
        _value(ds).alias(Col.DS),
    )


def of_target(target_table: TableRef) -> Column:
    """Quarantine rows meant for ``target_table`` (a writer owns its target's rows only)."""
    return F.col(Col.TARGET_TABLE) == F.lit(target_table.qualified_name)
