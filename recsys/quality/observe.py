"""Spark side of the data-quality checks: the aggregates :mod:`recsys.quality.checks` judges.

The checked table is the staged day, ``serve.ranked`` (:func:`observe`'s default), before it is
published; any table with the ``serve.recommendations`` columns can be observed the same way.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from recsys.features.split import Role
from recsys.quality.checks import Observed, RecSetStats
from recsys.warehouse.tables import (
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_USER_FEATURES,
    OPS_DQ_CHECKS,
    SERVE_RANKED,
    Col,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Roles the scoring job treats as known to the user (never recommended again).
KNOWN_ROLES = (Role.TRAIN.value, Role.VALIDATION.value)
#: Distinct run ids collected per day, at most (a day from one run has one; more is reported).
MAX_RUN_IDS = 5


def rec_set_stats(recs: DataFrame, seen: DataFrame) -> dict[str, RecSetStats]:
    """Aggregates per ``rec_set`` of one day's recommendations.

    Args:
        recs: Rows of ``serve.recommendations`` for one ds.
        seen: ``(user_id, item_id)`` pairs the users already know (train and validation).
    """
    per_list = recs.groupBy(Col.REC_SET, Col.USER_ID).agg(
        F.count(F.lit(1)).alias("n"),
        F.countDistinct(Col.ITEM_ID).alias("items"),
        F.countDistinct(Col.RANK).alias("ranks"),
        F.min(Col.RANK).alias("lo"),
        F.max(Col.RANK).alias("hi"),
    )
    bad = (
        (F.col("items") != F.col("n"))
        | (F.col("ranks") != F.col("n"))
        | (F.col("lo") != 1)
        | (F.col("hi") != F.col("n"))
    )
    lists = per_list.groupBy(Col.REC_SET).agg(
        F.count(F.lit(1)).alias("users"),
        F.sum(bad.cast("long")).alias("bad_lists"),
        F.percentile_approx("n", 0.5).alias("median_length"),
    )
    score = F.col(Col.SCORE)
    is_null = score.isNull() | F.isnan(score) | (F.length(F.trim(Col.EXPLANATION)) == 0)
    leaks = recs.join(seen, [Col.USER_ID, Col.ITEM_ID], "left_semi")
    rows = recs.groupBy(Col.REC_SET).agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(is_null.cast("long")).alias("null_rows"),
        F.min(score).alias("score_min"),
        F.max(score).alias("score_max"),
    )
    seen_rows = leaks.groupBy(Col.REC_SET).agg(F.count(F.lit(1)).alias("seen_items"))
    out: dict[str, RecSetStats] = {}
    for r in rows.join(lists, Col.REC_SET).join(seen_rows, Col.REC_SET, "left").collect():
        out[str(r[Col.REC_SET])] = RecSetStats(
            rows=int(r["rows"]),
            users=int(r["users"]),
            null_rows=int(r["null_rows"] or 0),
            score_min=math.nan if r["score_min"] is None else float(r["score_min"]),
            score_max=math.nan if r["score_max"] is None else float(r["score_max"]),
            bad_lists=int(r["bad_lists"] or 0),
            seen_items=int(r["seen_items"] or 0),
            median_length=float(r["median_length"] or 0),
        )
    return out


def _newest_commit_age_hours(spark: SparkSession, table: TableRef, now: datetime) -> float:
    from delta.tables import DeltaTable

    last = DeltaTable.forName(spark, table.qualified_name).history(1).collect()
    if not last:
        return math.inf
    ts = last[0]["timestamp"]
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts
    return float((now - ts).total_seconds()) / 3600.0


def observe(
    spark: SparkSession,
    ds: date,
    split_id: str,
    surfaces: tuple[TableRef, ...] = (),
    table: TableRef = SERVE_RANKED,
    expected_run_id: str | None = None,
) -> Observed:
    """Aggregates of day ``ds`` of ``table`` (default: the staged ``serve.ranked``): rows per
    set, eligible users, run ids, age of the newest commit, and rows of ``surfaces``.

    Args:
        spark: Session with the warehouse attached.
        ds: Day checked.
        split_id: Split of the features the day was scored on (eligible and known items).
        surfaces: Other tables that must have rows on ``ds``.
        table: Table with the ``serve.recommendations`` columns to check.
        expected_run_id: Scoring run whose rows must be the day's only rows, or None.
    """
    day = F.col(Col.DS) == F.lit(ds)
    recs = spark.table(table.qualified_name).where(day)
    in_split = day & (F.col(Col.SPLIT_ID) == F.lit(split_id))
    seen = (
        spark.table(FEATURES_INTERACTIONS_SPLIT.qualified_name)
        .where(in_split & F.col(Col.ROLE).isin(*KNOWN_ROLES))
        .select(Col.USER_ID, Col.ITEM_ID)
        .distinct()
    )
    eligible = (
        spark.table(FEATURES_USER_FEATURES.qualified_name)
        .where(in_split)
        .select(Col.USER_ID)
        .distinct()
        .count()
    )
    run_ids = recs.select(Col.RUN_ID).distinct().limit(MAX_RUN_IDS).collect()
    now = datetime.now(UTC)
    return Observed(
        ds=ds,
        eligible_users=int(eligible),
        rec_sets=rec_set_stats(recs, seen),
        run_ids=tuple(sorted(str(r[Col.RUN_ID]) for r in run_ids)),
        expected_run_id=expected_run_id,
        age_hours=_newest_commit_age_hours(spark, table, now),
        surface_rows={
            t.qualified_name: spark.table(t.qualified_name).where(day).count() for t in surfaces
        },
    )


def dq_verdict(spark: SparkSession, ds: date, run_id: str) -> str | None:
    """None when ``ops.dq_checks`` holds checks of ``(ds, run_id)`` and every one passed; else
    one line saying why the day must not be published (no checks, or which failed)."""
    checks = spark.table(OPS_DQ_CHECKS.qualified_name).where(
        (F.col(Col.DS) == F.lit(ds)) & (F.col(Col.RUN_ID) == F.lit(run_id))
    )
    row = checks.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum((~F.col(Col.PASSED)).cast("long")).alias("failed"),
        F.sort_array(
            F.collect_set(F.when(~F.col(Col.PASSED), F.col(Col.CHECK_NAME)))
        ).alias("names"),
    ).first()
    n = 0 if row is None else int(row["n"])
    if n == 0:
        return (
            f"{OPS_DQ_CHECKS}: no data-quality checks of ds={ds} by run {run_id!r}: run "
            f"jobs/dq_checks.py --ds {ds} --run-id {run_id} first"
        )
    failed = int(row["failed"] or 0) if row is not None else 0
    if failed:
        names = ", ".join(row["names"]) if row is not None else ""
        return (
            f"{OPS_DQ_CHECKS}: {failed} of {n} checks of ds={ds} by run {run_id!r} failed "
            f"({names})"
        )
    return None
