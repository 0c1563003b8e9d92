"""The data-quality job on tiny features and a literal staged day: pass, then fail loudly; and
the publish gate: a day that failed its checks never reaches serve.recommendations."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import Window
from pyspark.sql import functions as F

from jobs import dq_checks as job
from jobs import score as score_job
from recsys.quality.observe import KNOWN_ROLES, dq_verdict, rec_set_stats
from recsys.warehouse.completion import RECSYS_DAILY_TABLES, table_version
from recsys.warehouse.io import append, replace_partition
from recsys.warehouse.tables import (
    FEATURES_INTERACTIONS_SPLIT,
    OPS_COMPLETED_RUNS,
    OPS_DQ_CHECKS,
    SERVE_RANKED,
    SERVE_RECOMMENDATIONS,
    Col,
    RecSet,
)
from tests.helpers.tiny_features import write_tiny_features

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark

DS = date(2031, 6, 1)
N = 10


def _recs(spark: SparkSession, ds: date, run_id: str = "run") -> DataFrame:
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
            F.lit(run_id).alias(Col.RUN_ID),
            F.lit(ds).alias(Col.DS),
        )
        out = part if out is None else out.unionByName(part)
    if out is None:
        raise RuntimeError("no recommendation sets")
    return out


def _failed(spark: SparkSession, ds: date) -> set[str]:
    return {
        r[Col.CHECK_NAME]
        for r in spark.table(OPS_DQ_CHECKS.qualified_name)
        .where((F.col(Col.DS) == F.lit(ds)) & ~F.col(Col.PASSED))
        .collect()
    }


def test_dq_job_passes_a_good_day_and_fails_a_bad_one(spark: SparkSession) -> None:
    write_tiny_features(spark, DS)
    good = _recs(spark, DS)
    # The checks read the STAGED day: nothing is published for DS in this test.
    replace_partition(good, SERVE_RANKED, DS)
    # Another job's check of the same day (the exposures job's): this job must leave it alone.
    row = ("exposure_rec_set_mismatch", "ab.exposures[e1]", 0.0, "<= 0.01", True, "ok", "x")
    other = spark.createDataFrame(
        [(*row, datetime(2031, 6, 1, 1), DS)], spark.table(OPS_DQ_CHECKS.qualified_name).schema
    )
    append(other, OPS_DQ_CHECKS)
    args = ["--ds", DS.isoformat(), "--min-list-length", "5", "--no-surfaces"]
    assert job.main(args) == 0
    assert job.main(args) == 0  # a rerun replaces its own rows, never duplicates
    assert _rows(
        spark.table(OPS_DQ_CHECKS.qualified_name).where(
            (F.col(Col.DS) == F.lit(DS)) & ~F.col(Col.TABLE_NAME).startswith("serve.")
        )
    ) == _rows(other)
    checks = spark.table(OPS_DQ_CHECKS.qualified_name).where(
        (F.col(Col.DS) == F.lit(DS)) & F.col(Col.TABLE_NAME).startswith("serve.")
    )
    assert checks.count() == 15  # 7 model + 6 popularity + one staged run + freshness
    assert checks.where(~F.col(Col.PASSED)).count() == 0
    assert {r[Col.TABLE_NAME].split("[")[0] for r in checks.collect()} == {str(SERVE_RANKED)}
    assert spark.table(SERVE_RECOMMENDATIONS.qualified_name).where(
        F.col(Col.DS) == F.lit(DS)
    ).count() == 0
    # The staged rows must be the expected run's: a stale day staged by another run fails.
    assert job.main([*args, "--run-id", "run"]) == 0
    assert job.main([*args, "--run-id", "another-run"]) == 1
    assert _failed(spark, DS) == {"staged_run"}

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
    replace_partition(bad, SERVE_RANKED, DS)
    assert job.main(args) == 1
    assert _failed(spark, DS) == {"seen_items", "score_range"}
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


def _rows(df: DataFrame) -> list[tuple[object, ...]]:
    return sorted(tuple(r) for r in df.collect())


def _completion(spark: SparkSession, ds: date) -> list[tuple[str, dict[str, int]]]:
    rows = spark.table(OPS_COMPLETED_RUNS.qualified_name).where(
        (F.col(Col.DS) == F.lit(ds)) & (F.col(Col.PIPELINE) == "recsys_daily")
    )
    return [(r[Col.RUN_ID], dict(r[Col.TABLE_VERSIONS])) for r in rows.collect()]


def test_a_day_that_fails_its_checks_is_never_published(spark: SparkSession) -> None:
    """rank -> dq -> publish --require-dq, as in recsys_daily: a good day goes live with its
    completion record; a bad day staged by the next run fails, publish refuses, and the live
    day, its version and its completion record stay as they were."""
    ds = date(2031, 6, 2)
    write_tiny_features(spark, ds)
    day = F.col(Col.DS) == F.lit(ds)
    dq = ["--ds", ds.isoformat(), "--min-list-length", "5", "--no-surfaces", "--run-id"]
    publish = ["publish", "--ds", ds.isoformat(), "--require-dq", "--run-id"]

    good = _recs(spark, ds, "run-good")
    replace_partition(good, SERVE_RANKED, ds)
    # No checks of this run yet (e.g. data_quality marked success by hand): refused.
    assert score_job.main([*publish, "run-good"]) == 1
    assert spark.table(SERVE_RECOMMENDATIONS.qualified_name).where(day).count() == 0
    assert job.main([*dq, "run-good"]) == 0
    assert dq_verdict(spark, ds, "run-good") is None
    assert score_job.main([*publish, "run-good"]) == 0
    live = spark.table(SERVE_RECOMMENDATIONS.qualified_name).where(day)
    published = _rows(live)
    assert published == _rows(good)
    version = table_version(spark, SERVE_RECOMMENDATIONS)
    [(run_id, versions)] = _completion(spark, ds)
    assert run_id == "run-good"
    assert set(versions) == {t.qualified_name for t in RECSYS_DAILY_TABLES}
    assert versions[SERVE_RECOMMENDATIONS.qualified_name] == version

    # The next run stages a bad day: a score above 1 in the model set.
    bad = _recs(spark, ds, "run-bad").withColumn(
        Col.SCORE,
        F.when(
            (F.col(Col.REC_SET) == RecSet.MODEL) & (F.col(Col.RANK) == 1), F.lit(1.5)
        ).otherwise(F.col(Col.SCORE)).cast("float"),
    )
    replace_partition(bad, SERVE_RANKED, ds)
    assert job.main([*dq, "run-bad"]) == 1
    reason = dq_verdict(spark, ds, "run-bad")
    assert reason is not None
    assert "score_range" in reason
    assert score_job.main([*publish, "run-bad"]) == 1
    assert _rows(spark.table(SERVE_RECOMMENDATIONS.qualified_name).where(day)) == published
    assert table_version(spark, SERVE_RECOMMENDATIONS) == version
    assert _completion(spark, ds) == [("run-good", versions)]
    # What would have been published is not there.
    assert live.where(F.col(Col.RUN_ID) == "run-bad").count() == 0
    assert live.where((F.col(Col.REC_SET) == RecSet.MODEL) & (F.col(Col.SCORE) > 1)).count() == 0
