"""Writing to warehouse tables: one Delta commit per call, idempotent by key."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Final

from pyspark.sql import functions as F

from recsys.warehouse.tables import Col, TableRef

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

log = logging.getLogger(__name__)

#: Delta's optimistic-concurrency conflicts (error classes DELTA_CONCURRENT_*): another writer
#: committed first to what this transaction read. Retrying an idempotent write is safe.
_CONFLICT_MARK: Final = "DELTA_CONCURRENT_"


def is_write_conflict(err: BaseException) -> bool:
    """True when ``err`` is a Delta concurrent-modification conflict."""
    return _CONFLICT_MARK in str(err)


def with_conflict_retry(
    write: Callable[[], None], what: str, attempts: int = 5, base_delay_s: float = 0.5
) -> None:
    """Run an idempotent ``write``, retrying Delta write conflicts with jittered backoff.

    Args:
        write: Performs one Delta commit; must be safe to run again after a conflict.
        what: Names the write in log lines.
        attempts: Tries in all, >= 1.
        base_delay_s: First back-off in seconds; doubles each retry, times a 0.5-1.5 jitter.
    """
    if attempts < 1:
        raise ValueError(f"attempts: must be >= 1, got {attempts!r}")
    for attempt in range(1, attempts + 1):
        try:
            write()
            return
        except Exception as err:  # py4j surfaces Delta's exceptions as Py4JJavaError
            if attempt == attempts or not is_write_conflict(err):
                raise
            delay = base_delay_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
            log.warning(
                "%s: concurrent commit, retry %d/%d in %.1fs", what, attempt, attempts - 1, delay
            )
            time.sleep(delay)


def replace_delivery(df: DataFrame, table: TableRef, ds: date, source: str) -> None:
    """Replace the rows of ``(ds, source)`` in ``table`` with ``df`` in one Delta commit.

    Readers see the old delivery or the new one, never a mix, and a rerun never duplicates.
    ``df`` must hold only rows of that ``(ds, source)`` (Delta refuses the commit otherwise).
    Bronze tables are partitioned by ``(ds, source)``, so deliveries of different sources never
    conflict; two writers of the same delivery are serialised by retrying the loser.
    """
    condition = (F.col(Col.DS) == F.lit(ds)) & (F.col(Col.SOURCE) == F.lit(source))
    with_conflict_retry(
        lambda: df.writeTo(table.qualified_name).overwrite(condition), table.qualified_name
    )


def append(df: DataFrame, table: TableRef) -> None:
    """Append ``df`` to ``table`` in one Delta commit (audit logs; blind appends never conflict)."""
    with_conflict_retry(lambda: df.writeTo(table.qualified_name).append(), table.qualified_name)


def replace_rows(df: DataFrame, table: TableRef, condition: Column) -> None:
    """Replace the rows of ``table`` matching ``condition`` with ``df`` in one Delta commit.

    ``df`` must hold only rows that match ``condition`` (Delta refuses the write otherwise).
    """
    with_conflict_retry(
        lambda: df.writeTo(table.qualified_name).overwrite(condition), table.qualified_name
    )


def replace_partition(df: DataFrame, table: TableRef, ds: date) -> None:
    """Replace every row of day ``ds`` in ``table`` with ``df`` in one Delta commit.

    For tables keyed by ``ds`` alone (daily outputs): a rerun for the same day replaces it,
    readers see the old day or the new one. ``df`` must hold only rows of ``ds``.
    """
    replace_rows(df, table, F.col(Col.DS) == F.lit(ds))
