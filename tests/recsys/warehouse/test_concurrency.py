"""Two Spark processes on one warehouse at once: the catalog design must allow it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import functions as F

from tests.helpers.processes import run_jobs_together

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def tiny_delivery(directory: Path, n_users: int) -> Path:
    directory.mkdir(parents=True)
    (directory / "movies.csv").write_text(
        "movieId,title,genres\n1,A (2001),Drama\n2,B (2002),Comedy\n"
    )
    lines = ["userId,movieId,rating,timestamp"]
    lines += [f"{u},{i},4.0,{1_000_000 + u}" for u in range(1, n_users + 1) for i in (1, 2)]
    (directory / "ratings.csv").write_text("\n".join(lines) + "\n")
    return directory


def test_two_ingest_processes_write_the_same_tables_at_once(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Same tables, same ds, different sources: both commit to the same Delta logs and the same
    # ds partition while the other is running.
    argvs: list[list[str]] = []
    for name, n_users in (("conc-a", 30), ("conc-b", 40)):
        src = tiny_delivery(tmp_path / name, n_users)
        argvs.append(["jobs.ingest", "--input", str(src), "--ds", "2026-10-01", "--source", name])
    run_jobs_together(argvs, timeout_s=1200)
    got = {
        r["source"]: r["n"]
        for r in spark.table("bronze.interactions")
        .where(F.col("source").isin("conc-a", "conc-b"))
        .groupBy("source")
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    }
    assert got == {"conc-a": 60, "conc-b": 80}
