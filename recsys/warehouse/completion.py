"""Completion records: which (pipeline, ds) runs finished every one of their writes.

A multi-table run (ingest: 5 commits; recsys_daily: a day of features, scores and the publish) is
atomic per table only. The run therefore writes one row to ``ops.completed_runs`` LAST, after its
data commits, and a rerun of the same day first *retracts* the day's record; a run that crashes
anywhere in between leaves its day incomplete, and consumers that read only completed days keep
using the previous completed day until a rerun finishes.

- Writers (Spark): :func:`retract_completion` before the first data commit of a rerun,
  :func:`record_completion` after the last; both one Delta commit, idempotent.
- Readers (Spark): :func:`completed_days`, :func:`only_completed` and
  :func:`latest_completed_ds`.
- The app-side reader (delta-rs, no Spark) reads the table itself
  (:func:`recsys.reader.snapshots.read_completed_days`) and applies the same rule,
  :func:`newest_allowed_day`.

**Older warehouses.** A warehouse set up before this table existed has no records. The rule is
then the old one: when the table is absent, or holds no record of the pipeline (and source) at
all, every day counts as complete (``allowed = None``). Once one record exists, only recorded days
count. Re-running set-up (``jobs/setup_warehouse.py``) creates the table; the next finished run
writes the first record.

Only the standard library is imported at module level: the app-side reader imports this module
without pulling in Spark (pyspark and delta-spark are imported inside the Spark functions).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from recsys.warehouse.tables import (
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_ITEM_FEATURES,
    FEATURES_RANKER_EXAMPLES,
    FEATURES_USER_FEATURES,
    OPS_COMPLETED_RUNS,
    OPS_DQ_CHECKS,
    SERVE_CANDIDATES,
    SERVE_ITEM_EMBEDDINGS,
    SERVE_RANKED,
    SERVE_RECOMMENDATIONS,
    SERVE_RELATED_ITEMS,
    SERVE_TRENDING,
    SERVE_USER_EMBEDDINGS,
    Col,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)


class Pipeline(StrEnum):
    """Pipelines that write completion records (``ops.completed_runs.pipeline``)."""

    #: ``dags/recsys_daily.py``: recorded by the publish step after its commit (source NULL).
    RECSYS_DAILY = "recsys_daily"
    #: ``jobs/ingest.py``: one record per delivery ``(ds, source)`` after its 5 commits.
    INGEST = "ingest"


#: Tables a daily run writes for its day (ingest has its own record); their versions are recorded
#: by the publish step, the run's last write.
RECSYS_DAILY_TABLES: Final[tuple[TableRef, ...]] = (
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_USER_FEATURES,
    FEATURES_ITEM_FEATURES,
    FEATURES_RANKER_EXAMPLES,
    SERVE_ITEM_EMBEDDINGS,
    SERVE_USER_EMBEDDINGS,
    SERVE_CANDIDATES,
    SERVE_RELATED_ITEMS,
    SERVE_TRENDING,
    SERVE_RANKED,
    OPS_DQ_CHECKS,
    SERVE_RECOMMENDATIONS,
)
#: Columns of ``ops.completed_runs`` the readers need.
KEY_COLUMNS: Final = (Col.PIPELINE, Col.SOURCE, Col.DS)
_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def check_pipeline(pipeline: object) -> Pipeline:
    """``pipeline`` as a :class:`Pipeline`; ValueError naming the argument otherwise."""
    try:
        return Pipeline(pipeline if isinstance(pipeline, str) else repr(pipeline))
    except ValueError:
        allowed = ", ".join(p.value for p in Pipeline)
        raise ValueError(f"pipeline: expected one of {allowed}, got {pipeline!r}") from None


def check_source(source: object) -> str | None:
    """A delivery name (as ``jobs.ingest --source``) or None; ValueError otherwise."""
    if source is None:
        return None
    if not isinstance(source, str) or not _NAME_RE.fullmatch(source):
        raise ValueError(f"source: expected a delivery name or None, got {source!r}")
    return source


# --------------------------------------------------------------------------------------------
# The rule, shared by the Spark and the delta-rs readers (pure).


def newest_allowed_day(days: Iterable[date], allowed: frozenset[date] | None) -> date | None:
    """The newest of ``days`` that is complete: in ``allowed``, or any when ``allowed`` is None
    (no completion records: an older warehouse). None when no day qualifies."""
    candidates = [d for d in days if allowed is None or d in allowed]
    return max(candidates) if candidates else None


# --------------------------------------------------------------------------------------------
# Spark writers.


def _has_table(spark: SparkSession) -> bool:
    return bool(spark.catalog.tableExists(OPS_COMPLETED_RUNS.qualified_name))


def _key(pipeline: Pipeline, ds: date, source: str | None) -> Column:
    from pyspark.sql import functions as F

    return (
        (F.col(Col.DS) == F.lit(ds))
        & (F.col(Col.PIPELINE) == F.lit(pipeline.value))
        & F.col(Col.SOURCE).eqNullSafe(F.lit(source).cast("string"))
    )


def table_version(spark: SparkSession, table: TableRef) -> int:
    """The newest Delta version of ``table`` (a read of its log, no data)."""
    row = spark.sql(f"DESCRIBE HISTORY {table.qualified_name} LIMIT 1").first()
    if row is None:
        raise ValueError(f"table: {table} has no Delta history")
    return int(row["version"])


def table_versions(spark: SparkSession, tables: Iterable[TableRef]) -> dict[str, int]:
    """:func:`table_version` of each table, by qualified name."""
    return {t.qualified_name: table_version(spark, t) for t in tables}


def record_completion(
    spark: SparkSession,
    pipeline: Pipeline | str,
    ds: date,
    run_id: str,
    tables: Sequence[TableRef],
    source: str | None = None,
) -> dict[str, int] | None:
    """Record that ``run_id`` finished ``(pipeline, ds, source)``: ONE Delta commit, written
    after every data commit of the run. Replaces an earlier record of the same key.

    Args:
        spark: Session with the warehouse attached.
        pipeline: Which pipeline finished.
        ds: The day it produced.
        run_id: Its run id (non-empty).
        tables: The tables it wrote; their current Delta versions are stored.
        source: Delivery name for per-delivery pipelines (ingest), else None.

    Returns:
        The recorded versions (``schema.table -> version``), or None when the warehouse has no
        ``ops.completed_runs`` (set-up predates it: a warning, nothing written).
    """
    from pyspark.sql.types import StructType

    from recsys.warehouse.io import replace_rows

    name = check_pipeline(pipeline)
    src = check_source(source)
    if not isinstance(run_id, str) or not run_id.strip():
        raise ValueError(f"run_id: expected a non-empty string, got {run_id!r}")
    if not _has_table(spark):
        log.warning(
            "%s missing (set-up predates it; run jobs/setup_warehouse.py): completion of "
            "%s ds=%s not recorded",
            OPS_COMPLETED_RUNS,
            name.value,
            ds,
        )
        return None
    versions = table_versions(spark, tables)
    schema: StructType = spark.table(OPS_COMPLETED_RUNS.qualified_name).schema
    values = {
        Col.PIPELINE: name.value,
        Col.SOURCE: src,
        Col.RUN_ID: run_id,
        Col.COMPLETED_TS: datetime.now(UTC).replace(tzinfo=None),
        Col.TABLE_VERSIONS: versions,
        Col.DS: ds,
    }
    row = spark.createDataFrame([tuple(values[f.name] for f in schema.fields)], schema)
    replace_rows(row, OPS_COMPLETED_RUNS, _key(name, ds, src))
    log.info("%s ds=%s%s completed by run %s: %s", name.value, ds, _of(src), run_id, versions)
    return versions


def _of(source: str | None) -> str:
    return "" if source is None else f" source={source}"


def retract_completion(
    spark: SparkSession, pipeline: Pipeline | str, ds: date, source: str | None = None
) -> bool:
    """Remove the record of ``(pipeline, ds, source)`` before a rerun's first data commit, so
    that a crash mid-rerun leaves the day incomplete. One Delta commit when there was a record,
    none otherwise. Returns True when a record was removed."""
    from delta.tables import DeltaTable

    from recsys.warehouse.io import with_conflict_retry

    name = check_pipeline(pipeline)
    src = check_source(source)
    if not _has_table(spark):
        return False
    key = _key(name, ds, src)
    if spark.table(OPS_COMPLETED_RUNS.qualified_name).where(key).limit(1).count() == 0:
        return False
    table = DeltaTable.forName(spark, OPS_COMPLETED_RUNS.qualified_name)
    with_conflict_retry(lambda: table.delete(key), OPS_COMPLETED_RUNS.qualified_name)
    log.info("%s ds=%s%s: completion retracted (rerun started)", name.value, ds, _of(src))
    return True


# --------------------------------------------------------------------------------------------
# Spark readers.


def completed_days(
    spark: SparkSession, pipeline: Pipeline | str, source: str | None = None
) -> DataFrame | None:
    """One column ``ds``: the completed days of ``pipeline`` (of ``source`` when given), or None
    when completion is not tracked (no table, or no record of the pipeline and source at all:
    every day counts, see the module docstring)."""
    from pyspark.sql import functions as F

    name = check_pipeline(pipeline)
    src = check_source(source)
    if not _has_table(spark):
        return None
    rows = spark.table(OPS_COMPLETED_RUNS.qualified_name).where(
        F.col(Col.PIPELINE) == F.lit(name.value)
    )
    if src is not None:
        rows = rows.where(F.col(Col.SOURCE) == F.lit(src))
    if rows.limit(1).count() == 0:
        return None
    return rows.select(Col.DS).distinct()


def only_completed(
    df: DataFrame, spark: SparkSession, pipeline: Pipeline | str, source: str | None = None
) -> DataFrame:
    """Rows of ``df`` (with a ``ds`` column) on completed days only (all rows when completion is
    not tracked). A semi-join with a tiny table: nothing is collected."""
    days = completed_days(spark, pipeline, source)
    return df if days is None else df.join(days, Col.DS, "left_semi")


def latest_completed_ds(
    df: DataFrame,
    spark: SparkSession,
    pipeline: Pipeline | str,
    source: str | None = None,
    on_or_before: date | None = None,
) -> date | None:
    """Newest ``ds`` of ``df`` on a completed day (and on or before ``on_or_before``), or None."""
    from pyspark.sql import functions as F

    rows = only_completed(df, spark, pipeline, source)
    if on_or_before is not None:
        rows = rows.where(F.col(Col.DS) <= F.lit(on_or_before))
    row = rows.agg(F.max(Col.DS).alias(Col.DS)).first()
    found: date | None = None if row is None else row[Col.DS]
    return found


def is_completed(
    spark: SparkSession, pipeline: Pipeline | str, ds: date, source: str | None = None
) -> bool:
    """True when ``(pipeline, ds, source)`` is complete (always, when completion is not
    tracked)."""
    from pyspark.sql import functions as F

    days = completed_days(spark, pipeline, source)
    return days is None or days.where(F.col(Col.DS) == F.lit(ds)).limit(1).count() > 0
