"""Turn parsed MovieLens lines into bronze rows and quarantine rows (pure DataFrame -> DataFrame).

Line-level checks come from :mod:`recsys.ingest.parse`; this module adds the set-level ones
(duplicates, ratings and tags of unknown items, ratings of unknown users), builds the rows of
``bronze.interactions``, ``bronze.items``, ``bronze.users`` and ``bronze.quarantine``, and counts
what was read and rejected per file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from pyspark.sql import Column, Window
from pyspark.sql import functions as F

from recsys.ingest.layouts import FileSpec
from recsys.ingest.parse import decode, parse_movies, parse_ratings, parse_tags, parse_users
from recsys.settings import FileKind, Reason
from recsys.warehouse import quarantine as warehouse_quarantine
from recsys.warehouse.tables import (
    BRONZE_INTERACTIONS,
    BRONZE_ITEMS,
    BRONZE_USERS,
    Col,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

TAG: str = "tag"
_KNOWN: str = "_known"
_RANK: str = "_rank"

#: Which bronze table each file kind feeds (tags feed ``bronze.items.tag_text``).
TARGET_TABLE: Mapping[FileKind, TableRef] = {
    FileKind.RATINGS: BRONZE_INTERACTIONS,
    FileKind.MOVIES: BRONZE_ITEMS,
    FileKind.TAGS: BRONZE_ITEMS,
    FileKind.USERS: BRONZE_USERS,
}


@dataclass(frozen=True, slots=True)
class Delivery:
    """Identity of one ingest: rows written carry these values."""

    source: str
    ds: date
    run_id: str
    positive_threshold: float = 4.0


@dataclass(frozen=True)
class Classified:
    """Every input line of one delivery, by file kind, with its final ``reason`` (NULL = good)."""

    files: Mapping[FileKind, DataFrame]

    def good(self, kind: FileKind) -> DataFrame:
        return self.files[kind].where(F.col(Col.REASON).isNull())


def mark_duplicates(df: DataFrame, keys: list[str], keep_first: list[Column]) -> DataFrame:
    """Set reason ``duplicate`` on every good row but the first per ``keys`` (by ``keep_first``)."""
    good = F.col(Col.REASON).isNull()
    window = Window.partitionBy(good.alias("_good"), *keys).orderBy(*keep_first, Col.RAW_LINE)
    ranked = df.withColumn(_RANK, F.when(good, F.row_number().over(window)))
    dup = F.col(_RANK) > F.lit(1)
    detail = F.concat(
        F.lit("duplicate " + "/".join(keys) + " "),
        F.concat_ws("/", *[F.col(k).cast("string") for k in keys]),
    )
    return ranked.select(
        *[c for c in df.columns if c not in (Col.REASON, Col.DETAIL)],
        F.when(dup, F.lit(Reason.DUPLICATE.value)).otherwise(F.col(Col.REASON)).alias(Col.REASON),
        F.when(dup, detail).otherwise(F.col(Col.DETAIL)).alias(Col.DETAIL),
    )


def mark_unknown(df: DataFrame, known: DataFrame, key: str, reason: Reason) -> DataFrame:
    """Set ``reason`` on good rows whose ``key`` is not among ``known[key]``."""
    flagged = df.join(known.select(key).distinct().withColumn(_KNOWN, F.lit(True)), key, "left")
    missing = F.col(Col.REASON).isNull() & F.col(_KNOWN).isNull()
    return flagged.select(
        *[c for c in df.columns if c not in (Col.REASON, Col.DETAIL)],
        F.when(missing, F.lit(reason.value)).otherwise(F.col(Col.REASON)).alias(Col.REASON),
        F.when(missing, F.concat(F.lit(key + " not in the delivery: "), F.col(key).cast("string")))
        .otherwise(F.col(Col.DETAIL))
        .alias(Col.DETAIL),
    )


def classify(lines: Mapping[FileKind, tuple[FileSpec, DataFrame]], ds: date) -> Classified:
    """Parse and validate every file of a delivery, line-level then set-level.

    Args:
        lines: Per file kind, its spec and a ``(source_file, value)`` DataFrame of raw lines.
        ds: Delivery date (bounds event timestamps).
    """
    decoded = {kind: (spec, decode(df, spec)) for kind, (spec, df) in lines.items()}
    spec, movies_lines = decoded[FileKind.MOVIES]
    movies = mark_duplicates(parse_movies(movies_lines, spec), [Col.ITEM_ID], [])
    good_items = movies.where(F.col(Col.REASON).isNull())
    files: dict[FileKind, DataFrame] = {FileKind.MOVIES: movies}

    users = None
    if FileKind.USERS in decoded:
        spec, users_lines = decoded[FileKind.USERS]
        users = mark_duplicates(parse_users(users_lines, spec), [Col.USER_ID], [])
        files[FileKind.USERS] = users

    spec, ratings_lines = decoded[FileKind.RATINGS]
    ratings = parse_ratings(ratings_lines, spec, ds)
    # A user rates an item once; a repeat keeps the latest rating, the user's current opinion.
    ratings = mark_duplicates(ratings, [Col.USER_ID, Col.ITEM_ID], [F.col(Col.EVENT_TS).desc()])
    ratings = mark_unknown(ratings, good_items, Col.ITEM_ID, Reason.UNKNOWN_ITEM)
    if users is not None:
        good_users = users.where(F.col(Col.REASON).isNull())
        ratings = mark_unknown(ratings, good_users, Col.USER_ID, Reason.UNKNOWN_USER)
    files[FileKind.RATINGS] = ratings

    if FileKind.TAGS in decoded:
        spec, tags_lines = decoded[FileKind.TAGS]
        tags = parse_tags(tags_lines, spec, ds)
        tags = mark_duplicates(tags, [Col.USER_ID, Col.ITEM_ID, TAG], [F.col(Col.EVENT_TS)])
        files[FileKind.TAGS] = mark_unknown(tags, good_items, Col.ITEM_ID, Reason.UNKNOWN_ITEM)
    return Classified(files)


def _stamp(df: DataFrame, delivery: Delivery) -> DataFrame:
    return df.withColumns(
        {
            Col.SOURCE: F.lit(delivery.source),
            Col.RUN_ID: F.lit(delivery.run_id),
            Col.DS: F.lit(delivery.ds),
        }
    )


def interactions_rows(c: Classified, delivery: Delivery) -> DataFrame:
    """Rows of ``bronze.interactions``."""
    ratings = c.good(FileKind.RATINGS)
    return _stamp(
        ratings.select(
            Col.USER_ID,
            Col.ITEM_ID,
            Col.RATING,
            (F.col(Col.RATING) >= F.lit(delivery.positive_threshold)).alias(Col.IS_POSITIVE),
            Col.EVENT_TS,
        ),
        delivery,
    )


def items_rows(c: Classified, delivery: Delivery) -> DataFrame:
    """Rows of ``bronze.items``: good movies with their distinct tags in first-use order."""
    items = c.good(FileKind.MOVIES).select(Col.ITEM_ID, Col.TITLE, Col.YEAR, Col.GENRES)
    if FileKind.TAGS in c.files:
        ordered = F.array_sort(F.collect_list(F.struct(Col.EVENT_TS, TAG)))
        tag_text = (
            c.good(FileKind.TAGS)
            .groupBy(Col.ITEM_ID)
            .agg(
                F.concat_ws(", ", F.array_distinct(F.transform(ordered, lambda s: s[TAG]))).alias(
                    Col.TAG_TEXT
                )
            )
        )
        items = items.join(tag_text, Col.ITEM_ID, "left")
    else:
        items = items.withColumn(Col.TAG_TEXT, F.lit(None).cast("string"))
    return _stamp(
        items.select(Col.ITEM_ID, Col.TITLE, Col.YEAR, Col.GENRES, Col.TAG_TEXT), delivery
    )


def users_rows(c: Classified, delivery: Delivery) -> DataFrame:
    """Rows of ``bronze.users``: activity from good ratings, demographics when delivered."""
    activity = (
        c.good(FileKind.RATINGS)
        .groupBy(Col.USER_ID)
        .agg(
            F.min(Col.EVENT_TS).alias(Col.FIRST_SEEN_TS),
            F.max(Col.EVENT_TS).alias(Col.LAST_SEEN_TS),
            F.count(F.lit(1)).alias(Col.N_INTERACTIONS),
        )
    )
    demographic = [Col.GENDER, Col.AGE, Col.OCCUPATION, Col.ZIP_CODE]
    if FileKind.USERS in c.files:
        people = c.good(FileKind.USERS).select(Col.USER_ID, *demographic)
        users = people.join(activity, Col.USER_ID, "full").fillna(0, [Col.N_INTERACTIONS])
    else:
        users = activity.select(
            "*",
            F.lit(None).cast("string").alias(Col.GENDER),
            F.lit(None).cast("int").alias(Col.AGE),
            F.lit(None).cast("string").alias(Col.OCCUPATION),
            F.lit(None).cast("string").alias(Col.ZIP_CODE),
        )
    return _stamp(
        users.select(
            Col.USER_ID, Col.FIRST_SEEN_TS, Col.LAST_SEEN_TS, Col.N_INTERACTIONS, *demographic
        ),
        delivery,
    )


def quarantine_rows(c: Classified, delivery: Delivery) -> DataFrame:
    """Rows of ``bronze.quarantine``: every rejected line of every file, with its reason."""
    parts = [
        warehouse_quarantine.quarantine_rows(
            df.where(F.col(Col.REASON).isNotNull()),
            target_table=TARGET_TABLE[kind],
            source_file=F.col(Col.SOURCE_FILE),
            raw_line=F.col(Col.RAW_LINE),
            source=delivery.source,
            run_id=delivery.run_id,
            ds=delivery.ds,
        )
        for kind, df in c.files.items()
    ]
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    return union


def line_counts(c: Classified) -> DataFrame:
    """Per file kind: lines read (header excluded) and lines quarantined."""
    parts = [
        df.groupBy()
        .agg(
            F.count(F.lit(1)).alias(Col.N_READ),
            F.count(F.col(Col.REASON)).alias(Col.N_QUARANTINED),
        )
        .select(F.lit(kind.value).alias(Col.FILE_KIND), Col.N_READ, Col.N_QUARANTINED)
        for kind, df in c.files.items()
    ]
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    return union
