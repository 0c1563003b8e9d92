"""Fault injection with real processes (issue 17): two runs of one job and day at once, and the
app-side reader while a publish process moves ``serve.recommendations`` to the next day.

Each job runs as ``python -m jobs.<job>`` in its own process (its own JVM, ``local[1]``), on the
session's test warehouse; nothing but loopback. Two runs of the same job and day commit to the
same rows: Delta lets one commit first and the other meets a write conflict, which it retries
(``recsys.warehouse.io.with_conflict_retry``), so both exit 0 and the tables end as one
sequential run leaves them: the same rows, none duplicated, none half-written.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pyspark.sql import functions as F

from jobs import features, ingest, score
from recsys.warehouse.io import replace_partition
from recsys.warehouse.tables import (
    FEATURES_COVISIT,
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_ITEM_FEATURES,
    FEATURES_RANKER_EXAMPLES,
    FEATURES_USER_FEATURES,
    OPS_COMPLETED_RUNS,
    SERVE_RANKED,
    SERVE_RECOMMENDATIONS,
    Col,
    RecSet,
    TableRef,
)
from tests.helpers.background import reader_in_background, reason_heads
from tests.helpers.processes import run_jobs_together

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from recsys.settings import WarehouseSettings

pytestmark = [pytest.mark.spark, pytest.mark.slow]

#: Seconds the processes of one run_together call may take (a JVM each, on a busy test machine).
PROCESS_TIMEOUT_S = 1500


def run_together(*argvs: list[str]) -> list[str]:
    """Start ``python -m <argv>`` for every argv at once; wait for all; return their outputs.

    Every process must exit 0 (the output's tail, without Java stack lines, says why not).
    """
    return run_jobs_together(argvs, PROCESS_TIMEOUT_S)


def rows_of(
    spark: SparkSession, table: TableRef, where: Any, drop: tuple[str, ...] = ()
) -> list[str]:
    """The matching rows as sorted strings (``drop``: columns that differ between runs)."""
    df = spark.table(table.qualified_name).where(where)
    keep = [c for c in df.columns if c not in drop]
    return sorted(repr(tuple(r)) for r in df.select(*keep).collect())


# --------------------------------------------------------------------------------------------
# Two feature jobs for the same day and split.

SOURCE = "conc-features"
INGEST_DS, FEATURES_DS = "2031-05-01", "2031-05-02"
FEATURE_TABLES = (
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_USER_FEATURES,
    FEATURES_ITEM_FEATURES,
    FEATURES_RANKER_EXAMPLES,
    FEATURES_COVISIT,
)


def tiny_delivery(directory: Path) -> Path:
    """Six users rating six movies, an hour apart per item and a day apart per user."""
    directory.mkdir(parents=True)
    genres = ("Comedy", "Drama|Romance", "Action|Thriller")
    movies = [f"{i},Movie {i} ({1990 + i}),{genres[i % 3]}" for i in range(1, 7)]
    (directory / "movies.csv").write_text("movieId,title,genres\n" + "\n".join(movies) + "\n")
    ratings = [
        f"{u},{i},{2.0 if (u + i) % 4 == 0 else 4.5},{1_500_000_000 + u * 86_400 + i * 3_600}"
        for u in range(1, 7)
        for i in range(1, 7)
        if (u * i) % 5
    ]
    (directory / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n" + "\n".join(ratings) + "\n"
    )
    return directory


@pytest.mark.timeout(2400)
def test_two_feature_jobs_at_once_equal_a_sequential_run(
    spark: SparkSession, tmp_path: Path
) -> None:
    src = tiny_delivery(tmp_path / "tiny")
    assert ingest.main(["--input", str(src), "--ds", INGEST_DS, "--source", SOURCE]) == 0
    argv = ["--ds", FEATURES_DS, "--source", SOURCE, "--no-content",
            "--negatives-per-positive", "2", "--covisit-top-n", "2"]  # fmt: skip
    day = (F.col(Col.DS) == F.lit(date.fromisoformat(FEATURES_DS))) & (
        F.col(Col.SPLIT_ID) == F.lit("leave_last_out")
    )
    # Both processes replace the same (ds, split_id) rows of the same five tables.
    outputs = run_together(["jobs.features", *argv], ["jobs.features", *argv])
    concurrent = {t: rows_of(spark, t, day) for t in FEATURE_TABLES}
    assert all(concurrent.values()), {str(t): len(r) for t, r in concurrent.items()}
    # The same day computed again by one run alone, replacing the rows above.
    assert features.main(argv) == 0
    for table in FEATURE_TABLES:
        # Equal as sorted lists, so equal counts too: no row of the two runs written twice
        # (ranker_examples may hold equal rows by design: one negative drawn for two positives).
        assert concurrent[table] == rows_of(spark, table, day), table
    retried = sum(out.count("concurrent commit, retry") for out in outputs)
    print(f"feature jobs at once: {retried} conflicting commit(s) retried")


# --------------------------------------------------------------------------------------------
# Publishing: two publish processes at once, and the reader during a publish.

D0, D1, D2 = date(2045, 1, 1), date(2045, 1, 2), date(2045, 1, 3)
USERS = range(1, 31)
TOP = (1, 2, 3)


@pytest.fixture
def far_days(spark: SparkSession) -> Iterator[None]:
    """Days D0..D2 are the session's newest published days only while a test uses them."""
    yield
    days = ", ".join(f"DATE'{d}'" for d in (D0, D1, D2))
    for table in (SERVE_RANKED, SERVE_RECOMMENDATIONS, OPS_COMPLETED_RUNS):
        spark.sql(f"DELETE FROM {table.qualified_name} WHERE ds IN ({days})")


def stage(spark: SparkSession, ds: date) -> None:
    """The day's ranked lists in ``serve.ranked``: item ids and explanations tell the day."""
    offset = (ds - D0).days * 10
    rows = [
        (RecSet.MODEL, u, r, 1000 * u + offset + r, 1.0 / r, f"day {ds} {r}", "two_tower",
         "mv-test", f"rank-{ds}", ds)
        for u in USERS
        for r in TOP
    ]  # fmt: skip
    schema = spark.table(SERVE_RANKED.qualified_name).schema
    replace_partition(spark.createDataFrame(rows, schema), SERVE_RANKED, ds)


def published(spark: SparkSession, ds: date) -> list[str]:
    return rows_of(spark, SERVE_RECOMMENDATIONS, F.col(Col.DS) == F.lit(ds), (Col.RUN_ID,))


def staged_rows(spark: SparkSession, ds: date) -> list[str]:
    return rows_of(spark, SERVE_RANKED, F.col(Col.DS) == F.lit(ds), (Col.RUN_ID,))


def completion_runs(spark: SparkSession, ds: date) -> list[str]:
    rows = spark.table(OPS_COMPLETED_RUNS.qualified_name).where(
        (F.col(Col.PIPELINE) == "recsys_daily") & (F.col(Col.DS) == F.lit(ds))
    )
    return [r[Col.RUN_ID] for r in rows.collect()]


@pytest.mark.timeout(2000)
@pytest.mark.usefixtures("far_days")
def test_reader_serves_whole_days_while_a_publish_process_moves_to_the_next_day(
    spark: SparkSession, warehouse_settings: WarehouseSettings
) -> None:
    from recsys.reader import InMemorySink, Reader

    for ds in (D0, D1):
        stage(spark, ds)
    assert score.main(["publish", "--ds", D0.isoformat(), "--run-id", "pub-d0"]) == 0
    reader = Reader(warehouse_settings.warehouse_root, sink=InMemorySink(), refresh_interval_s=0)
    assert reader.recommendations_for(1, n=3).ds == D0
    with reader_in_background(reader, USERS) as observed:
        run_together(["jobs.score", "publish", "--ds", D1.isoformat(), "--run-id", "pub-d1"])
        deadline = time.monotonic() + 60  # the reader looks for a new version on every call
        while time.monotonic() < deadline and not any(
            res.ds == D1 for _, res in observed[-len(USERS) :]
        ):
            time.sleep(0.1)
        time.sleep(0.2)  # a few more calls on the new day
    assert observed
    for user, res in observed:
        day = res.ds
        assert not res.is_fallback, (day, user)
        assert day in (D0, D1), day
        assert day is not None  # (for the type checker: the line above says so)
        assert reason_heads(res) == {f"day {day}"}  # rows of one day only, the day the list says
        offset = (day - D0).days * 10
        assert res.item_ids == [1000 * user + offset + r for r in TOP]
    served_days = [res.ds for _, res in observed]
    first_d1 = served_days.index(D1)  # the reader moved to the new day ...
    assert set(served_days[:first_d1]) == {D0}
    assert set(served_days[first_d1:]) == {D1}  # ... and never went back
    assert published(spark, D1) == staged_rows(spark, D1)


@pytest.mark.timeout(2000)
@pytest.mark.usefixtures("far_days")
def test_two_publish_processes_at_once_equal_a_sequential_publish(spark: SparkSession) -> None:
    stage(spark, D2)
    argv = ["jobs.score", "publish", "--ds", D2.isoformat()]
    outputs = run_together([*argv, "--run-id", "pub-a"], [*argv, "--run-id", "pub-b"])
    concurrent = published(spark, D2)
    assert concurrent == staged_rows(spark, D2)  # every staged row once, nothing duplicated
    assert len(completion_runs(spark, D2)) == 1  # one record of the day, not two
    assert score.main(["publish", "--ds", D2.isoformat(), "--run-id", "pub-seq"]) == 0
    assert published(spark, D2) == concurrent
    assert completion_runs(spark, D2) == ["pub-seq"]
    retried = sum(out.count("concurrent commit, retry") for out in outputs)
    print(f"publish processes at once: {retried} conflicting commit(s) retried")
