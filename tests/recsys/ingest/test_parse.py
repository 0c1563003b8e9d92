"""Line-level validation: every kind of bad input gets its own reason."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pyspark.sql import functions as F

from recsys.ingest.layouts import LAYOUT_FILES, FileSpec
from recsys.ingest.parse import (
    decode,
    max_event_epoch,
    parse_movies,
    parse_ratings,
    parse_tags,
    parse_users,
)
from recsys.settings import FileKind, Layout, Reason

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark
DS = date(2026, 11, 28)


def spec(layout: Layout, kind: FileKind) -> FileSpec:
    return next(s for s in LAYOUT_FILES[layout] if s.kind == kind)


def lines(spark: SparkSession, tmp_path: Path, content: bytes, s: FileSpec) -> DataFrame:
    path = tmp_path / s.name
    path.write_bytes(content)
    raw = spark.read.text(str(path)).select(
        F.col("_metadata.file_path").alias("source_file"), "value"
    )
    return decode(raw, s)


def rows(df: DataFrame) -> list[dict[str, Any]]:
    return [r.asDict() for r in df.orderBy("raw_line").collect()]


def test_good_ratings_parse(spark: SparkSession, tmp_path: Path) -> None:
    s = spec(Layout.ML_LATEST_SMALL, FileKind.RATINGS)
    content = b"userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n"
    [r] = rows(parse_ratings(lines(spark, tmp_path, content, s), s, DS))
    assert r["reason"] is None
    assert (r["user_id"], r["item_id"], r["rating"]) == (1, 31, 2.5)
    assert r["event_ts"] == datetime(2009, 12, 14, 2, 52, 24)  # date -u -d @1260759144
    assert r["source_file"].endswith("ratings.csv")


BAD_RATINGS = [
    (b"1,31,2.5", Reason.WRONG_FIELD_COUNT, "expected 4 fields, got 3"),
    (b"1,31,2.5,1260759144,9", Reason.WRONG_FIELD_COUNT, "got 5"),
    (b"", Reason.WRONG_FIELD_COUNT, "got 1"),
    (b",31,2.5,1260759144", Reason.NULL_FIELD, "user_id is empty"),
    (b"1,31,,1260759144", Reason.NULL_FIELD, "rating is empty"),
    (b"1,x31,2.5,1260759144", Reason.UNPARSEABLE_NUMBER, "item_id is not an integer: x31"),
    (b"1,31,abc,1260759144", Reason.UNPARSEABLE_NUMBER, "rating is not a number"),
    (b"1,31,NaN,1260759144", Reason.UNPARSEABLE_NUMBER, "rating is not a number"),
    (b"-1,31,2.5,1260759144", Reason.INVALID_VALUE, "user_id is negative"),
    (b"1,31,7.0,1260759144", Reason.RATING_OUT_OF_RANGE, "rating outside [0.5, 5.0]: 7.0"),
    (b"1,31,0,1260759144", Reason.RATING_OUT_OF_RANGE, "rating outside"),
    (b"1,31,2.5,yesterday", Reason.UNPARSEABLE_TIMESTAMP, "not epoch seconds: yesterday"),
    (b"1,31,2.5,99999999999", Reason.TIMESTAMP_OUT_OF_RANGE, "timestamp outside"),
    (b"1,31,2.5,-5", Reason.TIMESTAMP_OUT_OF_RANGE, "timestamp outside"),
    (b"1,\xff\xfe31,2.5,1260759144", Reason.INVALID_UTF8, "not valid UTF-8"),
    (b'1,"31,2.5,1260759144', Reason.MALFORMED_QUOTING, "quoting"),
]


@pytest.mark.parametrize(
    ("line", "reason", "detail"), BAD_RATINGS, ids=[str(b[0]) for b in BAD_RATINGS]
)
def test_bad_rating_lines_get_their_reason(
    spark: SparkSession, tmp_path: Path, line: bytes, reason: Reason, detail: str
) -> None:
    s = spec(Layout.ML_LATEST_SMALL, FileKind.RATINGS)
    [r] = rows(
        parse_ratings(lines(spark, tmp_path, line + b"\n1,31,2.5,1260759144\n", s), s, DS).where(
            F.col("reason").isNotNull()
        )
    )
    assert r["reason"] == reason.value
    assert detail in r["detail"]
    assert r["user_id"] is None  # a bad line carries no parsed values
    if reason is Reason.INVALID_UTF8:
        assert "\ufffd" in r["raw_line"]
    else:
        assert r["raw_line"] == line.decode()


def test_max_event_epoch_is_end_of_next_day() -> None:
    assert max_event_epoch(date(1970, 1, 1)) == 2 * 86400 - 1


def test_movies_quoting_years_and_genres(spark: SparkSession, tmp_path: Path) -> None:
    s = spec(Layout.ML_LATEST_SMALL, FileKind.MOVIES)
    content = (
        "movieId,title,genres\n"
        '11,"American President, The (1995)",Comedy|Drama|Romance\n'
        '12,"Say ""Hi"" (2001)",Comedy\n'
        "13,Babylon 5,(no genres listed)\n"
        "14,Cosmos (2014-),Documentary\n"
        "15,Amélie (2001),Comedy|Romance\n"
        "16,,Comedy\n"
        "17,No genres (1999),\n"
    ).encode()
    got = {
        r["raw_line"].split(",")[0]: r
        for r in rows(parse_movies(lines(spark, tmp_path, content, s), s))
    }
    assert (got["11"]["title"], got["11"]["year"]) == ("American President, The", 1995)
    assert got["11"]["genres"] == ["Comedy", "Drama", "Romance"]
    assert got["12"]["title"] == 'Say "Hi"'
    assert (got["13"]["title"], got["13"]["year"], got["13"]["genres"]) == ("Babylon 5", None, [])
    assert (got["14"]["title"], got["14"]["year"]) == ("Cosmos", 2014)
    assert got["15"]["title"] == "Amélie"
    assert (got["16"]["reason"], got["16"]["detail"]) == (Reason.NULL_FIELD.value, "title is empty")
    assert got["17"]["reason"] == Reason.NULL_FIELD.value


def test_ml100k_items_are_latin1_with_genre_flags(spark: SparkSession, tmp_path: Path) -> None:
    s = spec(Layout.ML_100K, FileKind.MOVIES)
    flags = "|".join(["0", "0", "0", "1", "1"] + ["0"] * 14)
    bad = "|".join(["0", "2"] + ["0"] * 17)
    content = (
        f"1|Toy Story (1995)|01-Jan-1995||http://x|{flags}\n"
        f"2|Misérables, Les (1995)|01-Jan-1995||http://x|{flags}\n"
        f"3|Untitled|01-Jan-1997||http://x|{flags}\n"
        f"4|Bad flags (1995)|01-Jan-1995||http://x|{bad}\n"
    ).encode("latin-1")
    got = {r["raw_line"][0]: r for r in rows(parse_movies(lines(spark, tmp_path, content, s), s))}
    assert got["1"]["genres"] == ["Animation", "Children"]
    assert got["2"]["title"] == "Misérables, Les"
    assert (got["3"]["title"], got["3"]["year"]) == ("Untitled", 1997)
    assert got["4"]["reason"] == Reason.INVALID_VALUE.value


def test_ml1m_ratings_and_users(spark: SparkSession, tmp_path: Path) -> None:
    rs = spec(Layout.ML_1M, FileKind.RATINGS)
    ratings = rows(
        parse_ratings(
            lines(spark, tmp_path, b"1::1193::5::978300760\n1::2::0.5::978300760\n", rs), rs, DS
        )
    )
    assert [r["reason"] for r in ratings] == [None, Reason.RATING_OUT_OF_RANGE.value]  # 1193 < 2
    us = spec(Layout.ML_1M, FileKind.USERS)
    content = b"1::F::1::10::48067\n2::M::56::16::70072\n3::X::25::15::55117\n4::M::25::99::55117\n"
    users = {
        r["raw_line"][0]: r for r in rows(parse_users(lines(spark, tmp_path, content, us), us))
    }
    assert (users["1"]["gender"], users["1"]["age"], users["1"]["occupation"]) == (
        "F",
        1,
        "K-12 student",
    )
    assert users["2"]["zip_code"] == "70072"
    assert users["3"]["reason"] == Reason.INVALID_VALUE.value
    assert "occupation" in users["4"]["detail"]


def test_tags_with_commas(spark: SparkSession, tmp_path: Path) -> None:
    s = spec(Layout.ML_LATEST_SMALL, FileKind.TAGS)
    content = (
        b'userId,movieId,tag,timestamp\n2,60756,"funny, really",1445714994\n2,60756,,1445714994\n'
    )
    got = rows(parse_tags(lines(spark, tmp_path, content, s), s, DS))
    assert [(r["tag"], r["reason"]) for r in got] == [
        ("funny, really", None),  # '"' sorts before ','
        (None, Reason.NULL_FIELD.value),
    ]
