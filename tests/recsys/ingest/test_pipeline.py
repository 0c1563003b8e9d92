"""Set-level checks and the rows each bronze table gets, on tiny literal deliveries."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pyspark.sql import functions as F

from recsys.ingest.layouts import LAYOUT_FILES
from recsys.ingest.pipeline import (
    Classified,
    Delivery,
    classify,
    interactions_rows,
    items_rows,
    line_counts,
    quarantine_rows,
    users_rows,
)
from recsys.settings import FileKind, Layout, Reason

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark
DS = date(2026, 11, 28)
DELIVERY = Delivery("unit", DS, "run1")


def deliver(
    spark: SparkSession, tmp_path: Path, layout: Layout, files: dict[FileKind, bytes]
) -> Classified:
    lines = {}
    for s in LAYOUT_FILES[layout]:
        if s.kind in files:
            path = tmp_path / s.name
            path.write_bytes(files[s.kind])
            lines[s.kind] = (
                s,
                spark.read.text(str(path)).select(
                    F.col("_metadata.file_path").alias("source_file"), "value"
                ),
            )
    return classify(lines, DS)


def collect(df: DataFrame, *order: str) -> list[dict[str, Any]]:
    return [r.asDict() for r in df.orderBy(*order).collect()]


MOVIES = (
    b"movieId,title,genres\n"
    b"1,Toy Story (1995),Animation|Children\n"
    b"2,Heat (1995),Action\n"
    b"2,Heat again (1995),Action\n"  # duplicate item id
)
RATINGS = (
    b"userId,movieId,rating,timestamp\n"
    b"10,1,4.0,1000\n"
    b"10,1,2.0,2000\n"  # same user and item later: this one wins, the first is a duplicate
    b"10,2,3.0,1500\n"
    b"11,2,5.0,3000\n"
    b"11,99,5.0,3000\n"  # unknown item
)
TAGS = (
    b"userId,movieId,tag,timestamp\n"
    b"10,1,pixar,50\n"
    b"11,1,funny,40\n"
    b"12,1,pixar,60\n"
    b"10,1,pixar,50\n"  # the same user tagging the same item alike again
    b"11,77,x,10\n"  # unknown item
)


@pytest.fixture
def latest_small(spark: SparkSession, tmp_path: Path) -> Classified:
    """MOVIES, RATINGS and TAGS delivered as one ml-latest-small delivery, classified."""
    return deliver(
        spark,
        tmp_path,
        Layout.ML_LATEST_SMALL,
        {FileKind.MOVIES: MOVIES, FileKind.RATINGS: RATINGS, FileKind.TAGS: TAGS},
    )


def test_duplicates_unknown_items_and_counts(latest_small: Classified) -> None:
    c = latest_small
    q = collect(quarantine_rows(c, DELIVERY), "raw_line")
    assert [(r["raw_line"], r["reason"], r["target_table"]) for r in q] == [
        ("10,1,4.0,1000", Reason.DUPLICATE.value, "bronze.interactions"),
        ("10,1,pixar,50", Reason.DUPLICATE.value, "bronze.items"),
        ("11,77,x,10", Reason.UNKNOWN_ITEM.value, "bronze.items"),
        ("11,99,5.0,3000", Reason.UNKNOWN_ITEM.value, "bronze.interactions"),
        ("2,Heat again (1995),Action", Reason.DUPLICATE.value, "bronze.items"),
    ]
    assert {r["source"] for r in q} == {"unit"}
    assert {r["ds"] for r in q} == {DS}
    # The bronze.quarantine columns in order; the file each line came from; the run id.
    assert list(q[0]) == [
        "target_table",
        "source_file",
        "raw_line",
        "reason",
        "detail",
        "source",
        "run_id",
        "ds",
    ]
    assert [r["source_file"].rsplit("/", 1)[-1] for r in q] == [
        "ratings.csv",
        "tags.csv",
        "tags.csv",
        "ratings.csv",
        "movies.csv",
    ]
    assert q[0]["detail"] == "duplicate user_id/item_id 10/1"
    assert {r["run_id"] for r in q} == {"run1"}
    counts = {
        r["file_kind"]: (r["n_read"], r["n_quarantined"])
        for r in collect(line_counts(c), "file_kind")
    }
    assert counts == {"movies": (3, 1), "ratings": (5, 2), "tags": (5, 2)}


def test_bronze_rows(latest_small: Classified) -> None:
    c = latest_small
    inter = collect(interactions_rows(c, DELIVERY), "user_id", "item_id")
    assert [(r["user_id"], r["item_id"], r["rating"], r["is_positive"]) for r in inter] == [
        (10, 1, 2.0, False),
        (10, 2, 3.0, False),
        (11, 2, 5.0, True),
    ]
    items = collect(items_rows(c, DELIVERY), "item_id")
    assert [(r["item_id"], r["title"], r["tag_text"]) for r in items] == [
        (1, "Toy Story", "funny, pixar"),
        (2, "Heat", None),
    ]  # tags in first-use order
    users = collect(users_rows(c, DELIVERY), "user_id")
    assert [(r["user_id"], r["n_interactions"]) for r in users] == [(10, 2), (11, 1)]
    assert users[0]["gender"] is None


def test_ml100k_users_file_and_unknown_users(spark: SparkSession, tmp_path: Path) -> None:
    flags = "|".join(["0", "1"] + ["0"] * 17)
    movies = f"1|Toy Story (1995)|01-Jan-1995||http://x|{flags}\n".encode("latin-1")
    ratings = b"1\t1\t5\t881250949\n2\t1\t3\t881250949\n9\t1\t3\t881250949\n"
    users = b"1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n"
    c = deliver(
        spark,
        tmp_path,
        Layout.ML_100K,
        {FileKind.MOVIES: movies, FileKind.RATINGS: ratings, FileKind.USERS: users},
    )
    q = collect(quarantine_rows(c, DELIVERY), "raw_line")
    assert [(r["raw_line"], r["reason"]) for r in q] == [
        ("9\t1\t3\t881250949", Reason.UNKNOWN_USER.value)
    ]
    rows = collect(users_rows(c, DELIVERY), "user_id")
    assert [(r["user_id"], r["age"], r["n_interactions"]) for r in rows] == [
        (1, 24, 1),
        (2, 53, 1),
        (3, 23, 0),
    ]
    assert rows[2]["first_seen_ts"] is None
