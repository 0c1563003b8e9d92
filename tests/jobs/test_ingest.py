"""The ingest job end to end: planted bad rows, idempotent reruns, thresholds, real data."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import functions as F

from jobs import ingest
from recsys.settings import PROJECT_ROOT, Reason
from recsys.warehouse.completion import table_version
from recsys.warehouse.tables import (
    BRONZE_INTERACTIONS,
    BRONZE_ITEMS,
    BRONZE_QUARANTINE,
    BRONZE_USERS,
    OPS_COMPLETED_RUNS,
    OPS_INGEST_RUNS,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

pytestmark = pytest.mark.spark

MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    "2,Jumanji (1995),Adventure|Children|Fantasy\n"
    '3,"Grumpier Old Men, The (1995)",Comedy|Romance\n'
    "3,Grumpier Old Men again (1995),Comedy\n"  # duplicate item id
    "4,,Comedy\n"  # no title
)
GOOD_RATINGS = [
    f"{u},{i},{r},{964982703 + u}" for u in range(1, 7) for i, r in ((1, 4.0), (2, 3.5), (3, 5.0))
]
#: Each planted line and the reason it must be quarantined with.
PLANTED = {
    "7,1,4.0": Reason.WRONG_FIELD_COUNT,
    "7,,4.0,964982703": Reason.NULL_FIELD,
    "7,one,4.0,964982703": Reason.UNPARSEABLE_NUMBER,
    "7,1,4.0,soon": Reason.UNPARSEABLE_TIMESTAMP,
    "7,1,9.5,964982703": Reason.RATING_OUT_OF_RANGE,
    "7,42,4.0,964982703": Reason.UNKNOWN_ITEM,
    '7,"1,4.0,964982703': Reason.MALFORMED_QUOTING,
    "1,1,4.0,964982000": Reason.DUPLICATE,  # earlier rating of (1, 1)
}
#: The tables an ingest writes (other tables of the warehouse are not its business).
INGEST_TABLES = (
    BRONZE_INTERACTIONS,
    BRONZE_ITEMS,
    BRONZE_USERS,
    BRONZE_QUARANTINE,
    OPS_INGEST_RUNS,
)
INVALID_UTF8 = b"7,2,\xc3\x28,964982703"


def _first(df: DataFrame) -> Row:
    row = df.first()
    assert row is not None, "expected a row"
    return row


def write_delivery(directory: Path) -> Path:
    directory.mkdir(parents=True)
    (directory / "movies.csv").write_text(MOVIES)
    lines = ["userId,movieId,rating,timestamp", *GOOD_RATINGS, *PLANTED]
    (directory / "ratings.csv").write_bytes(
        ("\n".join(lines) + "\n").encode() + INVALID_UTF8 + b"\n"
    )
    with gzip.open(directory / "tags.csv.gz", "wt") as f:
        f.write("userId,movieId,tag,timestamp\n1,1,pixar,1139045764\n2,9,orphan,1139045764\n")
    return directory


def versions(spark: SparkSession) -> dict[TableRef, int]:
    return {t: table_version(spark, t) for t in INGEST_TABLES}


def completion(spark: SparkSession, source: str) -> dict[str, int] | None:
    """The delivery's completion record (``ops.completed_runs``): its table versions, or None."""
    rows = (
        spark.table(OPS_COMPLETED_RUNS.qualified_name)
        .where((F.col("pipeline") == "ingest") & (F.col("source") == source))
        .collect()
    )
    assert len(rows) <= 1, rows  # one record per (pipeline, ds, source), never duplicated
    return dict(rows[0]["table_versions"]) if rows else None


def counts(spark: SparkSession, source: str) -> dict[str, int]:
    return {
        t.qualified_name: spark.table(t.qualified_name).where(F.col("source") == source).count()
        for t in INGEST_TABLES
    }


def test_planted_bad_rows_are_quarantined_and_rerun_is_idempotent(
    spark: SparkSession, tmp_path: Path
) -> None:
    src = write_delivery(tmp_path / "planted")
    argv = [
        "--input",
        str(src),
        "--ds",
        "2026-11-01",
        "--source",
        "planted",
        "--max-bad-fraction",
        "0.5",
    ]
    assert ingest.main(argv) == 0
    quarantined = {
        r["raw_line"]: r["reason"]
        for r in spark.table(BRONZE_QUARANTINE.qualified_name)
        .where(F.col("source") == "planted")
        .collect()
    }
    expected = {line: reason.value for line, reason in PLANTED.items()}
    expected["7,2,\ufffd(,964982703"] = Reason.INVALID_UTF8.value
    expected["3,Grumpier Old Men again (1995),Comedy"] = Reason.DUPLICATE.value
    expected["4,,Comedy"] = Reason.NULL_FIELD.value
    expected["2,9,orphan,1139045764"] = Reason.UNKNOWN_ITEM.value
    assert quarantined == expected
    first = counts(spark, "planted")
    assert first["bronze.interactions"] == len(GOOD_RATINGS)
    assert first["bronze.items"] == 3
    assert first["bronze.users"] == 6

    before = versions(spark)
    # Written last: the versions of all five commits, under (ingest, ds, source).
    assert completion(spark, "planted") == {t.qualified_name: v for t, v in before.items()}
    assert ingest.main(argv) == 0
    after = counts(spark, "planted")
    # The audit log gains one row per file kind and run; every data table is unchanged.
    assert (
        after.pop(OPS_INGEST_RUNS.qualified_name) == first.pop(OPS_INGEST_RUNS.qualified_name) + 3
    )
    assert after == first  # a rerun replaces, never duplicates
    # One Delta commit per table per run: readers see the old delivery or the new one.
    assert {t: v - before[t] for t, v in versions(spark).items()} == {t: 1 for t in INGEST_TABLES}
    assert completion(spark, "planted") == {t.qualified_name: v for t, v in versions(spark).items()}


def test_too_many_bad_rows_fails_and_leaves_bronze_untouched(
    spark: SparkSession, tmp_path: Path
) -> None:
    src = write_delivery(tmp_path / "bad")
    assert ingest.main(["--input", str(src), "--ds", "2026-11-02", "--source", "toobad"]) == 1
    written = counts(spark, "toobad")
    assert written["bronze.interactions"] == written["bronze.items"] == written["bronze.users"] == 0
    assert written["bronze.quarantine"] == len(PLANTED) + 4
    status = spark.table(OPS_INGEST_RUNS.qualified_name).where(F.col("source") == "toobad")
    assert {r["status"] for r in status.collect()} == {"failed"}
    assert "max-bad-fraction" in _first(status)["message"]
    assert completion(spark, "toobad") is None  # a failed delivery is never complete


def test_missing_and_empty_inputs_write_nothing(spark: SparkSession, tmp_path: Path) -> None:
    before = versions(spark)
    assert ingest.main(["--input", str(tmp_path / "absent"), "--source", "x"]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ingest.main(["--input", str(empty), "--source", "x"]) == 2
    header_only = tmp_path / "header_only"
    header_only.mkdir()
    (header_only / "movies.csv").write_text(MOVIES)
    (header_only / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    assert ingest.main(["--input", str(header_only), "--source", "x"]) == 1
    assert versions(spark) == before


def test_demo_copy_in_repo_gives_published_counts(spark: SparkSession) -> None:
    assert (
        ingest.main(
            [
                "--input",
                str(PROJECT_ROOT / "data" / "ml-latest-small"),
                "--ds",
                "2026-11-03",
                "--source",
                "demo",
            ]
        )
        == 0
    )
    got = counts(spark, "demo")
    assert got["bronze.interactions"] == 100_836
    assert got["bronze.items"] == 9_742
    assert got["bronze.users"] == 610
    assert got["bronze.quarantine"] == 0


@pytest.mark.slow
def test_shared_ml_latest_small_gives_published_counts(
    spark: SparkSession, shared_data: Path
) -> None:
    assert (
        ingest.main(
            [
                "--input",
                str(shared_data / "ml-latest-small"),
                "--ds",
                "2026-11-04",
                "--source",
                "shared-mls",
            ]
        )
        == 0
    )
    got = counts(spark, "shared-mls")
    assert (got["bronze.interactions"], got["bronze.items"], got["bronze.users"]) == (
        100_836,
        9_742,
        610,
    )
    positives = (
        spark.table("bronze.interactions")
        .where((F.col("source") == "shared-mls") & F.col("is_positive"))
        .count()
    )
    assert (
        positives
        == spark.table("bronze.interactions")
        .where((F.col("source") == "shared-mls") & (F.col("rating") >= 4.0))
        .count()
        > 0
    )
    latest = spark.table("bronze.interactions").where(F.col("source") == "shared-mls")
    assert _first(latest.agg(F.max("ds")))[0] == date(2026, 11, 4)
