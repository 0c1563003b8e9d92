"""Seeded user samples and the per-sample inputs that validation and evaluation read.

Evaluation (``jobs.evaluate``) and per-epoch validation (``jobs.train``) score a deterministic
sample of the split's users instead of every user: :func:`sample_users` keeps the ``size``
users with the smallest ``xxhash64(seed, user_id)`` (ties by user id), so the set is exact in
size, the same on every run and in every job, and a smaller sample of the same seed is a subset
of a larger one (the validation sample lies inside the evaluation sample). When ``size`` is at
least the number of users, the sample is every user and the results are those of a full run.

Only the sample reaches the driver: its user ids (at most ``size``), its interactions
(:func:`sample_pairs`, a semi-join with the sample before the collect) and its user features
(:func:`recsys.training.data.load_users` with ``users``). Whole-split statistics the metrics
need (items' train users, the number of train users, the median train count per user) are
aggregated in Spark and come back as one row per item or one number (:func:`train_item_users`,
:func:`train_user_stats`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from pyspark.sql import functions as F

from recsys.training.data import TRAIN, table_slice
from recsys.validation import check_int
from recsys.warehouse.tables import (
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_USER_FEATURES,
    Col,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Seed of every user sample: one fixed seed, so every job and run draws the same users.
SAMPLE_SEED: Final = 0
#: Seed of the training sample (``jobs.train --train-users``): another seed than
#: :data:`SAMPLE_SEED`, so the training sample is independent of the validation and evaluation
#: samples. Serving scores every user, trained on or not; an evaluation sample drawn
#: independently holds trained users in the same share as the population does, where a nested
#: one (same seed) would hold only trained users once the training sample is the larger.
TRAIN_SAMPLE_SEED: Final = 1
#: Default evaluation sample (``jobs.evaluate --eval-users``): every user of ml-latest-small.
EVAL_USERS: Final = 100_000
#: Default validation sample (``jobs.train --validation-users``).
VALIDATION_USERS: Final = 10_000
_ORDER: Final = "_sample_order"


def check_sample_size(name: str, value: object) -> int:
    """``value`` as a sample size (an int >= 1); ValueError naming ``name`` otherwise."""
    return check_int(name, value, 1)


def sample_users(users: DataFrame, size: int, seed: int = SAMPLE_SEED) -> DataFrame:
    """The ``size`` distinct users of ``users`` (a frame with ``user_id``) of smallest
    ``xxhash64(seed, user_id)``, ties by user id: exactly ``min(size, distinct users)`` rows of
    one column ``user_id`` (BIGINT), the same set on every run.

    The ordering is a total order, so the limit is deterministic; Spark computes it as a
    distributed top-``size`` (nothing reaches the driver until the caller collects).
    """
    size = check_sample_size("size", size)
    ids = users.select(F.col(Col.USER_ID).cast("long").alias(Col.USER_ID)).distinct()
    order = F.xxhash64(F.lit(seed), F.col(Col.USER_ID))
    return (
        ids.withColumn(_ORDER, order).orderBy(_ORDER, Col.USER_ID).limit(size).select(Col.USER_ID)
    )


def split_users(spark: SparkSession, ds: date, split_id: str) -> DataFrame:
    """Every user with an interaction (any role) in the split: the population samples come from."""
    return table_slice(spark, FEATURES_INTERACTIONS_SPLIT, ds, split_id).select(Col.USER_ID)


def training_users(
    spark: SparkSession, ds: date, split_id: str, size: int | None
) -> DataFrame | None:
    """The training sample: :func:`sample_users` of the split's users with
    :data:`TRAIN_SAMPLE_SEED`, as a lazy Spark frame (never collected: the row builders of
    :mod:`recsys.training.data` semi-join it). ``size`` None: None, meaning every user."""
    if size is None:
        return None
    return sample_users(split_users(spark, ds, split_id), size, TRAIN_SAMPLE_SEED)


@dataclass(frozen=True)
class UserSample:
    """A drawn sample: its user ids on the driver and the same ids as a small Spark frame.

    Attributes:
        ids: ``(n,)`` int64 user ids, ascending, ``n <= size``.
        frame: One column ``user_id`` (BIGINT) holding ``ids``, for semi-joins in Spark.
        size: The size asked for.
        seed: The hash seed.
    """

    ids: np.ndarray  # type: ignore[type-arg]
    frame: DataFrame
    size: int
    seed: int


def draw_sample(
    spark: SparkSession, ds: date, split_id: str, size: int, seed: int = SAMPLE_SEED
) -> UserSample:
    """:func:`sample_users` of the split's users, collected (at most ``size`` ids)."""
    drawn = sample_users(split_users(spark, ds, split_id), size, seed)
    ids = np.sort(drawn.toPandas()[Col.USER_ID].to_numpy(np.int64))
    frame = spark.createDataFrame(pd.DataFrame({Col.USER_ID: ids}), f"{Col.USER_ID} BIGINT")
    return UserSample(ids=ids, frame=frame, size=size, seed=seed)


def sample_pairs(spark: SparkSession, ds: date, split_id: str, users: DataFrame) -> pd.DataFrame:
    """The interactions of ``users`` (a ``user_id`` frame) in the split, every role: user_id,
    item_id, is_positive, event_ts, role (the columns of
    :func:`recsys.training.data.split_pairs`), joined with the sample before the collect."""
    return (
        table_slice(spark, FEATURES_INTERACTIONS_SPLIT, ds, split_id)
        .join(users, Col.USER_ID, "left_semi")
        .select(Col.USER_ID, Col.ITEM_ID, Col.IS_POSITIVE, Col.EVENT_TS, Col.ROLE)
        .toPandas()
    )


def count_users(spark: SparkSession, ds: date, split_id: str) -> int:
    """Rows of ``features.user_features`` of the split (users with a train interaction)."""
    return int(table_slice(spark, FEATURES_USER_FEATURES, ds, split_id).count())


def train_item_counts(
    spark: SparkSession, ds: date, split_id: str, *, positives_only: bool, distinct_users: bool
) -> pd.DataFrame:
    """One row per item of the train role: ``item_id``, ``n_interactions`` = its train rows
    (or distinct train users with ``distinct_users``), over positives only when asked."""
    train = table_slice(spark, FEATURES_INTERACTIONS_SPLIT, ds, split_id).where(
        F.col(Col.ROLE) == F.lit(TRAIN)
    )
    if positives_only:
        train = train.where(F.col(Col.IS_POSITIVE))
    n = F.countDistinct(Col.USER_ID) if distinct_users else F.count(F.lit(1))
    return (
        train.groupBy(Col.ITEM_ID)
        .agg(n.cast("long").alias(Col.N_INTERACTIONS))
        .orderBy(Col.ITEM_ID)
        .toPandas()
    )


def counts_by_index(
    counts: pd.DataFrame, index_of: Mapping[int, int], n_items: int
) -> npt.NDArray[np.int64]:
    """``(n_items + 1,)`` int64: each item's ``n_interactions`` of ``counts`` (one row per
    ``item_id``, e.g. :func:`train_item_counts`) at its item index; 0 for padding (index 0) and
    items without a row; rows of items without an index are dropped."""
    out = np.zeros(n_items + 1, dtype=np.int64)
    for item, n in zip(counts[Col.ITEM_ID], counts[Col.N_INTERACTIONS], strict=True):
        if int(item) in index_of:
            out[index_of[int(item)]] = int(n)
    return out


@dataclass(frozen=True, slots=True)
class TrainUserStats:
    """Whole-split train statistics per user, aggregated in Spark.

    Attributes:
        n_users: Distinct users with a train interaction.
        median: Median of their train interaction counts (the mean of the two middle values
            for an even count, as pandas' median); 0.0 without train users.
    """

    n_users: int
    median: float


def train_user_stats(spark: SparkSession, ds: date, split_id: str) -> TrainUserStats:
    """:class:`TrainUserStats` of the split's train role (one row comes back)."""
    per_user = (
        table_slice(spark, FEATURES_INTERACTIONS_SPLIT, ds, split_id)
        .where(F.col(Col.ROLE) == F.lit(TRAIN))
        .groupBy(Col.USER_ID)
        .agg(F.count(F.lit(1)).alias("_n"))
    )
    row = per_user.agg(
        F.count(F.lit(1)).alias("users"), F.percentile(F.col("_n"), F.lit(0.5)).alias("median")
    ).first()
    if row is None or not row["users"]:
        return TrainUserStats(0, 0.0)
    return TrainUserStats(int(row["users"]), float(row["median"]))
