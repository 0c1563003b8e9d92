"""Baselines: most popular items, and Spark MLlib ALS with implicit preferences, lightly tuned.

Both produce score matrices in the column layout of :mod:`recsys.training.inference` (column ``j``
= ``item_index j``), so they are ranked, masked and evaluated exactly like the neural models.

ALS is fitted in Spark on the split's train positives (:func:`als_train_positives`: nothing of
them is collected); only the factors of the users asked for (the evaluation sample) and of every
item come back to the driver, where the sample is scored in blocks like every other model.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd
import torch
from pyspark import StorageLevel
from pyspark.sql import functions as F
from torch import Tensor

from recsys.training.data import TRAIN, table_slice
from recsys.training.samples import counts_by_index
from recsys.warehouse.tables import FEATURES_INTERACTIONS_SPLIT, FEATURES_ITEM_FEATURES, Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: Column names of the ALS input frame (:func:`als_train_positives`).
ALS_USER: Final = "user"
ALS_ITEM: Final = "item"
ALS_RATING: Final = "rating"


def train_positives(pairs: pd.DataFrame) -> pd.DataFrame:
    """Train-role positive (user_id, item_id) pairs, deduplicated."""
    sub = pairs[(pairs[Col.ROLE] == "train") & pairs[Col.IS_POSITIVE]]
    return sub[[Col.USER_ID, Col.ITEM_ID]].drop_duplicates().reset_index(drop=True)


def popularity_counts(train: pd.DataFrame) -> pd.DataFrame:
    """item_id, n_interactions = distinct users per item in ``train``, most popular first.

    Ties are broken by item id (ascending) so the ranking is deterministic.
    """
    counts = (
        train.groupby(Col.ITEM_ID)[Col.USER_ID]
        .nunique()
        .rename(Col.N_INTERACTIONS)
        .reset_index()
        .sort_values([Col.N_INTERACTIONS, Col.ITEM_ID], ascending=[False, True], kind="stable")
    )
    return counts.reset_index(drop=True)


def popularity_scores(train: pd.DataFrame, index_of: Mapping[int, int], n_items: int) -> Tensor:
    """``(n_items + 1,)`` scores: distinct train users per item minus a tiny id tie-break.

    Column 0 is ``-inf``; an item seen by more users always scores higher, and among equals the
    lower item index wins (through the stable sort in :func:`recsys.training.inference.top_k`).
    """
    counts = counts_by_index(popularity_counts(train), index_of, n_items)
    scores = torch.from_numpy(counts).to(torch.float64)
    scores[0] = float("-inf")
    return scores


@dataclass(frozen=True, slots=True)
class ALSConfig:
    """One ALS fit: ``rank`` factors, ``reg_param``, confidence ``alpha``, ``max_iter`` sweeps."""

    rank: int = 64
    reg_param: float = 0.1
    alpha: float = 40.0
    max_iter: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"rank: must be an int >= 1, got {self.rank!r}")
        if not self.reg_param >= 0:
            raise ValueError(f"reg_param: must be >= 0, got {self.reg_param!r}")
        if not self.alpha > 0:
            raise ValueError(f"alpha: must be > 0, got {self.alpha!r}")
        if not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ValueError(f"max_iter: must be an int >= 1, got {self.max_iter!r}")


#: The tuning grid: rank {32, 64} x regParam {0.01, 0.1} x alpha {10, 40}.
ALS_GRID: tuple[tuple[int, float, float], ...] = tuple(
    itertools.product((32, 64), (0.01, 0.1), (10.0, 40.0))
)


@dataclass(frozen=True)
class ALSFactors:
    """Fitted ALS factors: ``users`` rows of the collected users (``user_rows[user_id]``; row 0
    zeros) and ``items`` ``(n_items + 1, rank)``."""

    config: ALSConfig
    user_rows: Mapping[int, int]
    users: Tensor
    items: Tensor

    def scores(self, user_ids: Sequence[int]) -> Tensor:
        """``(U, n_items + 1)`` dot-product scores (unknown users: zeros); column 0 ``-inf``."""
        rows = torch.tensor([self.user_rows.get(int(u), 0) for u in user_ids], dtype=torch.long)
        out = self.users[rows] @ self.items.T
        out[:, 0] = float("-inf")
        return out


def als_train_positives(spark: SparkSession, ds: date, split_id: str) -> DataFrame:
    """The ALS input of one split, in Spark: the distinct train-role positive pairs as
    ``user`` (the user id, BIGINT), ``item`` (its ``item_index``, INT; items outside
    ``features.item_features`` dropped) and ``rating`` 1.0 (FLOAT).

    The same pairs as :func:`train_positives` of every interaction, mapped to item indices, without
    collecting them.
    """
    pos = (
        table_slice(spark, FEATURES_INTERACTIONS_SPLIT, ds, split_id)
        .where((F.col(Col.ROLE) == F.lit(TRAIN)) & F.col(Col.IS_POSITIVE))
        .select(Col.USER_ID, Col.ITEM_ID)
        .distinct()
    )
    items = table_slice(spark, FEATURES_ITEM_FEATURES, ds, split_id).select(
        Col.ITEM_ID, Col.ITEM_INDEX
    )
    return pos.join(items, Col.ITEM_ID).select(
        F.col(Col.USER_ID).cast("long").alias(ALS_USER),
        F.col(Col.ITEM_INDEX).cast("int").alias(ALS_ITEM),
        F.lit(1.0).cast("float").alias(ALS_RATING),
    )


def fit_als(train: DataFrame, n_items: int, config: ALSConfig, users: DataFrame) -> ALSFactors:
    """Fit implicit-preference ALS in Spark on ``train`` (:func:`als_train_positives`) and
    collect the factors of ``users`` (a ``user_id`` frame, e.g. the evaluation sample) and of
    every item; nothing else reaches the driver.

    User ids must fit a 32-bit int (Spark's ALS refuses others). Users of ``users`` without a
    train positive have no factors and score zeros (:meth:`ALSFactors.scores`).
    """
    from pyspark.ml.recommendation import ALS

    als = ALS(
        rank=config.rank,
        regParam=config.reg_param,
        alpha=config.alpha,
        maxIter=config.max_iter,
        implicitPrefs=True,
        userCol=ALS_USER,
        itemCol=ALS_ITEM,
        ratingCol=ALS_RATING,
        coldStartStrategy="drop",
        seed=config.seed,
    )
    model = als.fit(train)
    wanted = users.select(F.col(Col.USER_ID).cast("int").alias("id"))
    uf = model.userFactors.join(wanted, "id", "left_semi").orderBy("id").toPandas()
    itf = model.itemFactors.toPandas()
    user_vecs = np.zeros((len(uf) + 1, config.rank), dtype=np.float32)
    user_rows: dict[int, int] = {}
    for r, (uid, vec) in enumerate(zip(uf["id"], uf["features"], strict=True), start=1):
        user_vecs[r] = vec
        user_rows[int(uid)] = r
    items = np.zeros((n_items + 1, config.rank), dtype=np.float32)
    for iid, vec in zip(itf["id"], itf["features"], strict=True):
        items[int(iid)] = vec
    return ALSFactors(config, user_rows, torch.from_numpy(user_vecs), torch.from_numpy(items))


def tune_als(
    train: DataFrame,
    n_items: int,
    users: DataFrame,
    validate: Callable[[ALSFactors], float],
    grid: Sequence[tuple[int, float, float]] = ALS_GRID,
    max_iter: int = 10,
    seed: int = 0,
) -> tuple[ALSFactors, list[dict[str, float]]]:
    """Fit every grid point on ``train`` (:func:`als_train_positives`; persisted here for the
    grid's fits) with the factors of ``users``; keep the one with the best
    ``validate(factors)`` (NDCG@10).

    Returns:
        The best factors and one record per grid point (rank, reg_param, alpha, ndcg@10, s).
    """
    best: ALSFactors | None = None
    best_score = -1.0
    records: list[dict[str, float]] = []
    train = train.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        for rank, reg, alpha in grid:
            started = time.perf_counter()
            factors = fit_als(train, n_items, ALSConfig(rank, reg, alpha, max_iter, seed), users)
            score = validate(factors)
            seconds = time.perf_counter() - started
            records.append(
                {
                    "rank": rank,
                    "reg_param": reg,
                    "alpha": alpha,
                    "ndcg@10": score,
                    "seconds": seconds,
                }
            )
            log.info(
                "als rank=%d reg=%g alpha=%g: val ndcg@10 %.4f (%.1f s)",
                rank,
                reg,
                alpha,
                score,
                seconds,
            )
            if score > best_score:
                best, best_score = factors, score
    finally:
        train.unpersist()
    if best is None:
        raise ValueError("grid: empty")
    return best, records
