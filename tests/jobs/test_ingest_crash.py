"""Fault injection: ``kill -9`` of ``python -m jobs.ingest`` after each of its five commits.

The job runs in a real process (its own JVM) that SIGKILLs itself right after its k-th data
commit returns: no test hook in the job, the wrapper below only counts the job's own
``replace_delivery``/``append`` calls. After every kill, consumers that read only completed
deliveries see the previous completed one, although bronze then holds a half-written delivery;
a rerun converges to what an uninterrupted run of the same input writes, nothing duplicated.
"""

from __future__ import annotations

import signal
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import functions as F

from jobs import ingest
from recsys.surfaces.sources import resolve_delivery
from recsys.warehouse.completion import (
    Pipeline,
    completed_days,
    is_completed,
    latest_completed_ds,
)
from recsys.warehouse.tables import (
    BRONZE_INTERACTIONS,
    BRONZE_ITEMS,
    BRONZE_QUARANTINE,
    BRONZE_USERS,
    OPS_COMPLETED_RUNS,
    OPS_INGEST_RUNS,
    Col,
    TableRef,
)
from tests.helpers.processes import run_processes

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SOURCE = "crash-test"
D1, D2 = date(2032, 2, 1), date(2032, 2, 2)
#: Runs jobs.ingest's main() and SIGKILLs the process right after its k-th data commit.
KILLER = r"""
import os, signal, sys
k = int(sys.argv[1])
import jobs.ingest as job
done = 0
def after_commit(write):
    def wrapped(*args, **kwargs):
        global done
        write(*args, **kwargs)
        done += 1
        if done == k:
            os.kill(os.getpid(), signal.SIGKILL)
    return wrapped
job.replace_delivery = after_commit(job.replace_delivery)
job.append = after_commit(job.append)
sys.exit(job.main(sys.argv[2:]))
"""
DATA_TABLES = (BRONZE_ITEMS, BRONZE_INTERACTIONS, BRONZE_USERS, BRONZE_QUARANTINE)


def delivery(directory: Path) -> Path:
    """A small delivery with a few bad lines (so the quarantine has rows too)."""
    directory.mkdir(parents=True)
    movies = [f"{i},Movie {i} ({1990 + i}),{'Drama' if i % 2 else 'Comedy'}" for i in range(1, 9)]
    (directory / "movies.csv").write_text(
        "movieId,title,genres\n" + "\n".join([*movies, "9,,Drama"]) + "\n"
    )
    ratings = [f"{u},{i},{1 + (u + i) % 5}.0,{1_000_000 + 60 * u + i}" for u in range(1, 13)
               for i in range(1, 9) if (u + i) % 3]  # fmt: skip
    (directory / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n" + "\n".join([*ratings, "1,1,4.0", "2,99,4.0,5"]) + "\n"
    )
    return directory


def argv(src: Path, ds: date) -> list[str]:
    return ["--input", str(src), "--ds", ds.isoformat(), "--source", SOURCE,
            "--max-bad-fraction", "0.5"]  # fmt: skip


def kill_after(k: int, src: Path, ds: date) -> None:
    """Run the job in its own process, killed by SIGKILL after its k-th commit."""
    ((code, out),) = run_processes([["-c", KILLER, str(k), *argv(src, ds)]], timeout_s=600)
    assert code == -signal.SIGKILL, out[-3000:]


def content(spark: SparkSession, table: TableRef, ds: date) -> list[tuple[object, ...]]:
    """The delivery's rows without what differs between runs (run id, day)."""
    rows = spark.table(table.qualified_name).where(
        (F.col(Col.SOURCE) == SOURCE) & (F.col(Col.DS) == F.lit(ds))
    )
    keep = [c for c in rows.columns if c not in (Col.RUN_ID, Col.DS)]
    return sorted((tuple(map(repr, r)) for r in rows.select(*keep).collect()), key=str)


def run_ids(spark: SparkSession, table: TableRef, ds: date) -> set[str]:
    rows = spark.table(table.qualified_name).where(
        (F.col(Col.SOURCE) == SOURCE) & (F.col(Col.DS) == F.lit(ds))
    )
    return {r[Col.RUN_ID] for r in rows.select(Col.RUN_ID).distinct().collect()}


def completed(spark: SparkSession) -> set[date]:
    days = completed_days(spark, Pipeline.INGEST, SOURCE)
    assert days is not None
    return {r[Col.DS] for r in days.collect()}


def record_run(spark: SparkSession, ds: date) -> str | None:
    row = (
        spark.table(OPS_COMPLETED_RUNS.qualified_name)
        .where((F.col(Col.PIPELINE) == "ingest") & (F.col(Col.SOURCE) == SOURCE))
        .where(F.col(Col.DS) == F.lit(ds))
        .first()
    )
    return None if row is None else str(row[Col.RUN_ID])


@pytest.mark.timeout(3000)
def test_kill_after_each_commit_then_rerun_converges(spark: SparkSession, tmp_path: Path) -> None:
    src = delivery(tmp_path / "delivery")
    # Two uninterrupted runs of the same input: D1 is the reference, D2 the day to crash.
    assert ingest.main(argv(src, D1)) == 0
    assert ingest.main(argv(src, D2)) == 0
    assert completed(spark) == {D1, D2}
    reference = {t: content(spark, t, D1) for t in DATA_TABLES}
    assert all(reference[t] for t in DATA_TABLES)  # every table has rows to compare
    assert {t: content(spark, t, D2) for t in DATA_TABLES} == reference
    interactions = spark.table(BRONZE_INTERACTIONS.qualified_name).where(
        F.col(Col.SOURCE) == SOURCE
    )
    assert latest_completed_ds(interactions, spark, Pipeline.INGEST, SOURCE) == D2
    first_run = record_run(spark, D2)
    assert first_run is not None

    # Rerun D2, killed after each of its 5 commits in turn (items, interactions, users,
    # quarantine, ops.ingest_runs). The first kill interrupts a rerun of a completed day: the run
    # retracted the record first, so the day is incomplete from its first commit on.
    for k, table in enumerate((*DATA_TABLES, OPS_INGEST_RUNS), start=1):
        kill_after(k, src, D2)
        # The half-written delivery is there: the table just committed has the killed run's rows.
        assert run_ids(spark, table, D2) - {first_run}, (k, table)
        assert completed(spark) == {D1}, k
        assert not is_completed(spark, Pipeline.INGEST, D2, SOURCE)
        assert latest_completed_ds(interactions, spark, Pipeline.INGEST, SOURCE) == D1
        assert resolve_delivery(spark, SOURCE, D2) == D1  # trending / related items read D1
        assert record_run(spark, D2) is None

    # A rerun heals everything: same rows as the uninterrupted run, none duplicated, complete.
    assert ingest.main(argv(src, D2)) == 0
    assert completed(spark) == {D1, D2}
    assert {t: content(spark, t, D2) for t in DATA_TABLES} == reference
    last = record_run(spark, D2)
    assert last is not None
    for table in DATA_TABLES:
        assert run_ids(spark, table, D2) == {last}, table
    assert resolve_delivery(spark, SOURCE, D2) == D2
    # ops.ingest_runs is an audit log: one row per file kind for every run that reached it
    # (the last killed run got that far), each run's rows once.
    audit = spark.table(OPS_INGEST_RUNS.qualified_name).where(
        (F.col(Col.SOURCE) == SOURCE) & (F.col(Col.DS) == F.lit(D2))
    )
    per_run = {r[Col.RUN_ID]: r["n"] for r in audit.groupBy(Col.RUN_ID).count()
               .withColumnRenamed("count", "n").collect()}  # fmt: skip
    assert len(per_run) == 3  # the first complete run, the run killed after its 5th, the rerun
    assert len(set(per_run.values())) == 1
    assert last in per_run
