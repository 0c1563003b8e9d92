"""Trending items overall and per genre, as native Spark expressions (no Python UDF).

The score and its units are documented in :mod:`recsys.surfaces.trending_formula`, which also
holds the configuration and the pure pandas twin :func:`trending_pandas` that tests hold this
module equal to.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from pyspark.sql import Window
from pyspark.sql import functions as F

from recsys.surfaces.trending_formula import (
    MICROS_PER_DAY,
    SUPPORT,
    TRENDING_COLUMNS,
    TrendingConfig,
    as_utc,
    micros,
    trending_pandas,
)
from recsys.validation import check_int
from recsys.warehouse.tables import TRENDING_ALL_GENRES, Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = [
    "TRENDING_COLUMNS",
    "TrendingConfig",
    "default_as_of",
    "end_of_day",
    "item_growth",
    "trending",
    "trending_lists",
    "trending_pandas",
    "widen_windows",
]

_AGE = "_age_days"
_RECENT = "_is_recent"
_WEIGHT = "_weight"


def end_of_day(ds: date) -> datetime:
    """The first instant after day ``ds`` (UTC): windows "as of the end of ds" end before it."""
    return as_utc(datetime.combine(ds + timedelta(days=1), time()))


def default_as_of(interactions: DataFrame, ds: date) -> datetime | None:
    """The latest ``event_ts`` before the end of day ``ds`` (UTC), or None without any event.

    MovieLens timestamps end years before any realistic ``ds``; anchoring the windows at the data
    keeps them populated (documented in :mod:`recsys.surfaces.trending_formula`).
    """
    cutoff = end_of_day(ds)
    row = (
        interactions.where(F.col(Col.EVENT_TS) < F.lit(cutoff))
        .agg(F.max(Col.EVENT_TS).alias(Col.EVENT_TS))
        .first()
    )
    value = None if row is None else row[Col.EVENT_TS]
    return None if value is None else as_utc(value)


def item_growth(interactions: DataFrame, as_of: datetime, config: TrendingConfig) -> DataFrame:
    """Per item with enough support: ``item_id, score, recent_count, baseline_count`` (DOUBLE).

    Args:
        interactions: Rows with ``user_id``, ``item_id`` and ``event_ts`` (TIMESTAMP).
        as_of: The instant both windows end at (naive = UTC); later events are ignored.
        config: Windows, decay, support and prior.
    """
    r_days = float(config.recent_days)
    age = (F.lit(micros(as_of)) - F.unix_micros(F.col(Col.EVENT_TS))) / F.lit(MICROS_PER_DAY)
    events = (
        interactions.select(Col.ITEM_ID, Col.USER_ID, age.alias(_AGE))
        .where((F.col(_AGE) >= 0) & (F.col(_AGE) < F.lit(r_days + float(config.baseline_days))))
        .withColumn(_RECENT, F.col(_AGE) < F.lit(r_days))
    )
    window_age = F.when(F.col(_RECENT), F.col(_AGE)).otherwise(F.col(_AGE) - F.lit(r_days))
    events = events.withColumn(
        _WEIGHT, F.pow(F.lit(0.5), window_age / F.lit(float(config.half_life)))
    )
    recent = F.col(_RECENT)
    growth = (
        events.groupBy(Col.ITEM_ID)
        .agg(
            F.sum(F.when(recent, F.col(_WEIGHT)).otherwise(F.lit(0.0))).alias(Col.RECENT_COUNT),
            (
                F.sum(F.when(recent, F.lit(0.0)).otherwise(F.col(_WEIGHT)))
                * F.lit(config.baseline_scale)
            ).alias(Col.BASELINE_COUNT),
            F.count_distinct(F.when(recent, F.col(Col.USER_ID))).alias(SUPPORT),
        )
        .where(F.col(SUPPORT) >= F.lit(config.min_support))
    )
    score = (F.col(Col.RECENT_COUNT) - F.col(Col.BASELINE_COUNT)) / F.sqrt(
        F.col(Col.BASELINE_COUNT) + F.lit(float(config.prior))
    )
    return growth.select(Col.ITEM_ID, score.alias(Col.SCORE), Col.RECENT_COUNT, Col.BASELINE_COUNT)


def widen_windows(
    interactions: DataFrame,
    as_of: datetime,
    config: TrendingConfig,
    min_items: int,
    max_doublings: int = 5,
) -> TrendingConfig:
    """The first of ``config``, ``config.scaled(2)``, ``config.scaled(4)`` ... whose overall list
    would hold at least ``min_items`` items; the widest tried when none does.

    For sparse data (MovieLens' last weeks hold a handful of users): one Spark aggregation per
    try, at most ``max_doublings + 1`` tries.

    Args:
        interactions: As for :func:`item_growth`.
        as_of: End of the windows.
        config: The narrowest windows to try.
        min_items: Items wanted in the overall list, >= 0 (0: ``config`` as is).
        max_doublings: Most doublings, >= 0.

    Raises:
        ValueError: ``min_items`` or ``max_doublings`` is not an int >= 0.
    """
    check_int("min_items", min_items, 0)
    check_int("max_doublings", max_doublings, 0)
    current = config
    for step in range(max_doublings + 1):
        if min_items == 0 or step == max_doublings:
            return current
        if item_growth(interactions, as_of, current).count() >= min_items:
            return current
        current = current.scaled(2.0)
    return current


def trending_lists(growth: DataFrame, items: DataFrame, top_k: int) -> DataFrame:
    """The overall list and one list per genre from :func:`item_growth`; :data:`TRENDING_COLUMNS`.

    Args:
        growth: Output of :func:`item_growth`.
        items: ``item_id`` and ``genres`` (ARRAY<STRING>), one row per item.
        top_k: Items kept per list, >= 1.
    """
    check_int("top_k", top_k, 1)
    genres = items.select(
        Col.ITEM_ID, F.explode(F.array_distinct(F.col(Col.GENRES))).alias(Col.GENRE)
    )
    overall = growth.withColumn(Col.GENRE, F.lit(TRENDING_ALL_GENRES))
    per_genre = growth.join(genres, Col.ITEM_ID)
    order = Window.partitionBy(Col.GENRE).orderBy(
        F.col(Col.SCORE).desc(), F.col(Col.RECENT_COUNT).desc(), F.col(Col.ITEM_ID).asc()
    )
    ranked = overall.unionByName(per_genre).withColumn(
        Col.RANK, F.row_number().over(order).cast("int")
    )
    return ranked.where(F.col(Col.RANK) <= F.lit(top_k)).select(*TRENDING_COLUMNS)


def trending(
    interactions: DataFrame, items: DataFrame, as_of: datetime, config: TrendingConfig
) -> DataFrame:
    """Trending lists as of ``as_of``: :func:`item_growth` then :func:`trending_lists`."""
    return trending_lists(item_growth(interactions, as_of, config), items, config.top_k)
