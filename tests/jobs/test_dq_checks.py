"""The data-quality job on tiny features and literal recommendations: pass, then fail loudly."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import Window
from pyspark.sql import functions as F

from jobs import dq_checks as job
from recsys.quality.observe import KNOWN_ROLES, rec_set_stats
from recsys.training.tiny import write_tiny_features
from recsys.warehouse.io import replace_partition
from recsys.warehouse.tables import (
    FEATURES_INTERACTIONS_SPLIT,
    OPS_DQ_CHECKS,
    SERVE_RECOMMENDATIONS,
    Col,
    RecSet,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark

DS = date(2031, 6, 1)
N = 10


def _recs(spark: SparkSession, ds: date) -> DataFrame:
    """N unseen items per user for both sets (model scores in (0, 1), popularity counts)."""
    split = spark.table(FEATURES_INTERACTIONS_SPLIT.qualified_name).where(
        F.col(Col.DS) == F.lit(ds)
    )
    users = split.select(Col.USER_ID).distinct()
    items = split.select(Col.ITEM_ID).distinct()
    known = split.where(F.col(Col.ROLE).isin(*KNOWN_ROLES)).select(Col.USER_ID, Col.ITEM_ID)
    unseen = users.crossJoin(items).join(known, [Col.USER_ID, Col.ITEM_ID], "left_anti")
    w = Window.partitionBy(Col.USER_ID).orderBy(Col.ITEM_ID)
    top = unseen.withColumn(Col.RANK, F.row_number().over(w)).where(F.col(Col.RANK) <= N)
    out: DataFrame | None = None
    for rec_set, score in (
        (RecSet.MODEL, 1.0 / (F.col(Col.RANK) + 1)),
        (RecSet.POPULARITY, 100.0 - F.col(Col.RANK)),
    ):
        part = top.select(
            F.lit(rec_set).alias(Col.REC_SET),
            Col.USER_ID,
            Col.RANK,
            Col.ITEM_ID,
            score.cast("float").alias(Col.SCORE),
            F.lit("Popular right now").alias(Col.EXPLANATION),
            F.lit("two_tower").alias(Col.SOURCE),
            F.lit("v1").alias(Col.MODEL_VERSION),
            F.lit("run").alias(Col.RUN_ID),
            F.lit(ds).alias(Col.DS),
        )
        out = part if out is None else out.unionByName(part)
    if out is None:
        raise RuntimeError("no recommendation sets")
    return out


def test_dq_job_passes_a_good_day_and_fails_a_bad_one(spark: SparkSession) -> None:
    write_tiny_features(spark, DS)
    good = _recs(spark, DS)
    replace_partition(good, SERVE_RECOMMENDATIONS, DS)
    args = ["--ds", DS.isoformat(), "--min-list-length", "5", "--no-surfaces"]
    assert job.main(args) == 0
    checks = spark.table(OPS_DQ_CHECKS.qualified_name).where(F.col(Col.DS) == F.lit(DS))
    assert checks.count() > 0
    assert checks.where(~F.col(Col.PASSED)).count() == 0

    # A seen item, a repeated rank and a score above 1 in the model set: exit 1, three failures.
    split = spark.table(FEATURES_INTERACTIONS_SPLIT.qualified_name).where(
        F.col(Col.DS) == F.lit(DS)
    )
    known = split.where(F.col(Col.ROLE) == "train").select(Col.USER_ID, Col.ITEM_ID).first()
    assert known is not None
    first = (
        (F.col(Col.REC_SET) == RecSet.MODEL)
        & (F.col(Col.USER_ID) == known[Col.USER_ID])
        & (F.col(Col.RANK) == 1)
    )
    bad = good.withColumn(
        Col.ITEM_ID, F.when(first, F.lit(known[Col.ITEM_ID])).otherwise(F.col(Col.ITEM_ID))
    )
    bad = bad.withColumn(
        Col.SCORE, F.when(first, F.lit(1.5).cast("float")).otherwise(F.col(Col.SCORE))
    )
    replace_partition(bad, SERVE_RECOMMENDATIONS, DS)
    assert job.main(args) == 1
    failed = {
        r[Col.CHECK_NAME]
        for r in spark.table(OPS_DQ_CHECKS.qualified_name)
        .where((F.col(Col.DS) == F.lit(DS)) & ~F.col(Col.PASSED))
        .collect()
    }
    assert failed == {"seen_items", "score_range"}
    # Surfaces are checked by default: today's trending/related rows are absent here.
    assert job.main(["--ds", DS.isoformat(), "--min-list-length", "5"]) == 1


def test_rec_set_stats_counts_broken_lists(spark: SparkSession) -> None:
    rows = [
        (RecSet.MODEL, 1, 1, 10, 0.9, "x"),
        (RecSet.MODEL, 1, 2, 11, 0.8, "x"),
        (RecSet.MODEL, 2, 1, 10, 0.9, "x"),
        (RecSet.MODEL, 2, 3, 12, float("nan"), "x"),  # rank gap and a NaN score
        (RecSet.MODEL, 3, 1, 10, 0.5, " "),  # empty explanation
        (RecSet.MODEL, 3, 2, 10, 0.4, "x"),  # repeated item
    ]
    recs = spark.createDataFrame(
        rows,
        f"{Col.REC_SET} string, {Col.USER_ID} long, {Col.RANK} int, {Col.ITEM_ID} long, "
        f"{Col.SCORE} float, {Col.EXPLANATION} string",
    )
    seen = spark.createDataFrame([(1, 11)], f"{Col.USER_ID} long, {Col.ITEM_ID} long")
    s = rec_set_stats(recs, seen)[RecSet.MODEL]
    assert (s.rows, s.users, s.null_rows, s.bad_lists, s.seen_items) == (6, 3, 2, 2, 1)
    assert s.median_length == 2


def test_bad_arguments_exit_2() -> None:
    assert job.main(["--ds", "2031-01-01", "--min-user-coverage", "2"]) == 2
    with pytest.raises(SystemExit) as exc:  # argparse rejects an unparsable date itself
        job.main(["--ds", "not-a-date"])
    assert exc.value.code == 2
