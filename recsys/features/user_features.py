"""User features from the train role: activity, recency, ratings, genre affinity, last N items.

``history`` is what the two-tower user tower and SASRec read: the user's last ``history_len``
train positives, oldest first, as raw item ids and as ``item_index`` values. ``dense`` is the
two-tower ``user_dense`` input: the scalars of :data:`USER_DENSE_COLUMNS`, standardised over the
users of the same table (train data only), followed by ``genre_affinity``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

from pyspark.sql import Column, Window
from pyspark.sql import functions as F

from recsys.features.item_features import GENRES, N_GENRES
from recsys.features.split import train_rows
from recsys.validation import check_int
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_SECONDS_PER_DAY: Final = 86_400.0
_LAST_TS: Final = "_last_ts"
_RANK: Final = "_rank"
_ENTRY: Final = "_entry"
_SEQ: Final = "_seq"

#: Layout of ``user_features.dense``: five standardised scalars, then the genre affinity.
USER_DENSE_COLUMNS: Final[tuple[str, ...]] = (
    "z_log1p_n_interactions",
    "z_log1p_n_positive",
    "z_log1p_days_since_last",
    "z_mean_rating",
    "z_std_rating",
    *("genre_affinity:" + g for g in GENRES),
)
#: Width of ``user_features.dense`` (``TwoTowerConfig.user_dense_dim``).
USER_DENSE_DIM: Final = len(USER_DENSE_COLUMNS)


def _check_history_len(history_len: int) -> None:
    check_int("history_len", history_len, 1)


def _history(train: DataFrame, history_len: int) -> DataFrame:
    """Per user with a train positive: last ``history_len`` positives, oldest first."""
    newest_first = Window.partitionBy(Col.USER_ID).orderBy(
        F.col(Col.EVENT_TS).desc(), F.col(Col.ITEM_ID).desc()
    )
    recent = (
        train.where(F.col(Col.IS_POSITIVE))
        .withColumn(_RANK, F.row_number().over(newest_first))
        .where(F.col(_RANK) <= history_len)
    )
    entry = F.struct(
        F.col(Col.EVENT_TS),
        F.col(Col.ITEM_ID),
        F.coalesce(F.col(Col.ITEM_INDEX), F.lit(0)).alias(Col.ITEM_INDEX),
    )
    seq = recent.groupBy(Col.USER_ID).agg(F.sort_array(F.collect_list(entry)).alias(_SEQ))
    return seq.select(
        Col.USER_ID,
        F.transform(_SEQ, lambda e: e[Col.ITEM_ID]).alias(Col.HISTORY),
        F.transform(_SEQ, lambda e: e[Col.ITEM_INDEX].cast("int")).alias(Col.HISTORY_INDEX),
    )


def _with_zscores(df: DataFrame, columns: dict[str, Column]) -> tuple[DataFrame, list[Column]]:
    """``df`` joined with its column statistics, and the standardised columns over its rows.

    A standardised value is 0 where the input is NULL or the column has no spread.
    """
    stats = df.agg(
        *[F.avg(c).alias("_m_" + name) for name, c in columns.items()],
        *[F.stddev_pop(c).alias("_s_" + name) for name, c in columns.items()],
    )
    z = [
        F.when(
            F.col("_s_" + name) > 0,
            F.coalesce((c - F.col("_m_" + name)) / F.col("_s_" + name), F.lit(0.0)),
        )
        .otherwise(F.lit(0.0))
        .cast("float")
        for name, c in columns.items()
    ]
    return df.crossJoin(F.broadcast(stats)), z


def user_features(
    split_df: DataFrame, items: DataFrame, as_of_ts: datetime, history_len: int = 50
) -> DataFrame:
    """One row per user with a train interaction.

    Args:
        split_df: Output of :func:`recsys.features.split.split_interactions`; only its train role
            is read.
        items: Item features with item_id, item_index and genres_multi_hot (the output of
            :func:`recsys.features.item_features.item_features` for the same split).
        as_of_ts: End of the train window (timezone-aware); ``days_since_last`` is measured to it.
        history_len: Most items kept in ``history``, >= 1.

    Returns:
        user_id, n_interactions, n_positive, days_since_last, mean_rating, std_rating,
        genre_affinity, history, history_index, dense, as_of_ts.
    """
    _check_history_len(history_len)
    train = train_rows(split_df).join(
        items.select(Col.ITEM_ID, Col.ITEM_INDEX, Col.GENRES_MULTI_HOT), Col.ITEM_ID, "left"
    )
    positive = F.col(Col.IS_POSITIVE)
    genre_sums = [
        F.sum(
            F.when(positive, F.coalesce(F.col(Col.GENRES_MULTI_HOT)[i], F.lit(0.0))).otherwise(0.0)
        )
        for i in range(N_GENRES)
    ]
    stats = train.groupBy(Col.USER_ID).agg(
        F.count(F.lit(1)).alias(Col.N_INTERACTIONS),
        F.sum(positive.cast("bigint")).alias(Col.N_POSITIVE),
        F.max(Col.EVENT_TS).alias(_LAST_TS),
        F.avg(Col.RATING).alias(Col.MEAN_RATING),
        F.stddev_pop(Col.RATING).alias(Col.STD_RATING),
        F.array(*genre_sums).alias(Col.GENRE_AFFINITY),
    )
    days = (F.lit(as_of_ts).cast("double") - F.col(_LAST_TS).cast("double")) / F.lit(
        _SECONDS_PER_DAY
    )
    share = F.greatest(F.col(Col.N_POSITIVE), F.lit(1)).cast("double")
    base = stats.select(
        Col.USER_ID,
        Col.N_INTERACTIONS,
        Col.N_POSITIVE,
        F.greatest(days, F.lit(0.0)).alias(Col.DAYS_SINCE_LAST),
        Col.MEAN_RATING,
        Col.STD_RATING,
        F.transform(Col.GENRE_AFFINITY, lambda s: (s / share).cast("float")).alias(
            Col.GENRE_AFFINITY
        ),
    )
    history = _history(train, history_len)
    empty_ids = F.array().cast("array<bigint>")
    empty_index = F.array().cast("array<int>")
    with_history = base.join(history, Col.USER_ID, "left").select(
        *base.columns,
        F.coalesce(F.col(Col.HISTORY), empty_ids).alias(Col.HISTORY),
        F.coalesce(F.col(Col.HISTORY_INDEX), empty_index).alias(Col.HISTORY_INDEX),
    )
    scalars = {
        USER_DENSE_COLUMNS[0]: F.log1p(Col.N_INTERACTIONS),
        USER_DENSE_COLUMNS[1]: F.log1p(Col.N_POSITIVE),
        USER_DENSE_COLUMNS[2]: F.log1p(Col.DAYS_SINCE_LAST),
        USER_DENSE_COLUMNS[3]: F.col(Col.MEAN_RATING),
        USER_DENSE_COLUMNS[4]: F.col(Col.STD_RATING),
    }
    joined, z = _with_zscores(with_history, scalars)
    dense = F.concat(F.array(*z), F.col(Col.GENRE_AFFINITY))
    return joined.select(
        *with_history.columns, dense.alias(Col.DENSE), F.lit(as_of_ts).alias(Col.AS_OF_TS)
    )
