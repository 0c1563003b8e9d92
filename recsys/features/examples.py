"""Ranker examples: positives, popularity-sampled negatives and hard negatives from retrieval.

Each role (train, validation, test) gives its own examples: its positives (label 1) and, per
positive, negatives (label 0). The ranker trains on the validation role (the first positive after
the train window, with inputs from the train role; :data:`READ_ROLES`), and the features job
writes only the roles read unless asked for more (``jobs.features --example-roles``). A
negative is never a positive of the same user known at that role (train: the user's train
positives; validation: train and validation; test: all), so train examples depend on nothing
after the train window.

* ``popular_negative``: ``negatives_per_positive`` items drawn with replacement with probability
  proportional to ``n_train^popularity_exponent`` (0.75 as in word2vec's negative sampling),
  items without train interactions never drawn; draws that hit a known positive are rejected, so
  a positive may get fewer when the user's positives hold most of the popularity mass.
* ``hard_negative``: up to ``hard_negatives_per_positive`` distinct items taken at random from
  the user's ``hard_pool_size`` best-scored retrieval candidates that are not known positives.

Draws are hashes of ``(seed, user, positive item, role, draw number)``: the same inputs give the
same examples whatever the partitioning.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from pyspark.sql import Column, Window
from pyspark.sql import functions as F

from recsys.features.split import ROLE_ORDER, Role
from recsys.validation import check_ints
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_POS_ITEM: Final = "_pos_item"
_RANK: Final = "_role_rank"
_KNOWN_USER: Final = "_known_user"
_KNOWN_ITEM: Final = "_known_item"
_KNOWN_RANK: Final = "_known_rank"
_DRAW: Final = "_draw"
_U: Final = "_u"
_W: Final = "_w"
_LO: Final = "_lo"
_HI: Final = "_hi"
_TOTAL: Final = "_total"
_N: Final = "_n_items"
_MAX_BUCKET: Final = "_max_bucket"
_BUCKET: Final = "_bucket"
_ORDER: Final = "_order"
_POOL_RANK: Final = "_pool_rank"
_TWO_POW_53: Final = float(2**53)
#: The roles ``features.ranker_examples`` is read for: ``jobs.train``'s ranker trains and stops
#: early on the validation role (:func:`recsys.training.trainers.train_ranker`); no job reads
#: the train or test roles. The features job writes only these by default.
READ_ROLES: Final[tuple[str, ...]] = (Role.VALIDATION.value,)


class ExampleKind(StrEnum):
    """Why a row is in ``features.ranker_examples`` (its ``kind``)."""

    POSITIVE = "positive"
    POPULAR_NEGATIVE = "popular_negative"
    HARD_NEGATIVE = "hard_negative"


@dataclass(frozen=True, slots=True)
class ExampleConfig:
    """How :func:`ranker_examples` samples negatives.

    Attributes:
        negatives_per_positive: Popularity-sampled negatives per positive, >= 0.
        popularity_exponent: Sampling weight is ``n_train ** exponent``, finite and >= 0
            (0: uniform over items with train interactions; 1: proportional to popularity).
        hard_negatives_per_positive: Hard negatives per positive when candidates are given, >= 0.
        hard_pool_size: Best-scored candidates per user to draw hard negatives from, >= 1.
        seed: Seed of every draw (any int).
    """

    negatives_per_positive: int = 4
    popularity_exponent: float = 0.75
    hard_negatives_per_positive: int = 2
    hard_pool_size: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        check_ints(
            self,
            {"negatives_per_positive": 0, "hard_negatives_per_positive": 0, "hard_pool_size": 1},
        )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed: must be an int, got {self.seed!r}")
        e = self.popularity_exponent
        if (
            not isinstance(e, int | float)
            or isinstance(e, bool)
            or not (math.isfinite(e) and e >= 0)
        ):
            raise ValueError(f"popularity_exponent: must be finite and >= 0, got {e!r}")

    @property
    def draws_per_positive(self) -> int:
        """Draws made per positive before rejecting known positives (oversampled)."""
        return 2 * self.negatives_per_positive + 8


def check_roles(name: str, roles: object) -> tuple[str, ...]:
    """``roles`` as a non-empty tuple of distinct :class:`recsys.features.split.Role` values, in
    time order; ValueError naming ``name`` otherwise."""
    valid = [r.value for r in ROLE_ORDER]
    if isinstance(roles, str) or not isinstance(roles, Collection):
        raise ValueError(f"{name}: expected a collection of roles {valid}, got {roles!r}")
    items = list(roles)
    if not items or any(r not in valid for r in items) or len(set(items)) != len(items):
        raise ValueError(f"{name}: expected distinct roles of {valid}, got {roles!r}")
    return tuple(r for r in valid if r in items)


def role_rank(role: Column) -> Column:
    """Position of a role in time (train 0, validation 1, test 2)."""
    pairs = [F.lit(x) for r, rank in ROLE_ORDER.items() for x in (r.value, rank)]
    return F.create_map(*pairs)[role]


def uniform(seed: int, salt: str, *keys: Column) -> Column:
    """Deterministic draw, uniform in [0, 1), from a 64-bit hash of ``seed``, ``salt``, ``keys``."""
    h = F.xxhash64(F.lit(seed), F.lit(salt), *keys)
    return F.shiftrightunsigned(h, 11).cast("double") / F.lit(_TWO_POW_53)


def _positives(split_df: DataFrame) -> DataFrame:
    return split_df.where(F.col(Col.IS_POSITIVE)).select(
        Col.USER_ID,
        F.col(Col.ITEM_ID).alias(_POS_ITEM),
        Col.ROLE,
        role_rank(F.col(Col.ROLE)).alias(_RANK),
    )


def _drop_known(rows: DataFrame, positives: DataFrame) -> DataFrame:
    """Rows whose item_id is not a positive of the user known at the row's role."""
    known = positives.select(
        F.col(Col.USER_ID).alias(_KNOWN_USER),
        F.col(_POS_ITEM).alias(_KNOWN_ITEM),
        F.col(_RANK).alias(_KNOWN_RANK),
    )
    cond = (
        (F.col(Col.USER_ID) == F.col(_KNOWN_USER))
        & (F.col(Col.ITEM_ID) == F.col(_KNOWN_ITEM))
        & (F.col(_KNOWN_RANK) <= F.col(_RANK))
    )
    return rows.join(known, cond, "left_anti")


def _first_per_positive(rows: DataFrame, order: Column, n: int) -> DataFrame:
    window = Window.partitionBy(Col.USER_ID, _POS_ITEM, Col.ROLE).orderBy(order)
    return rows.withColumn(_ORDER, F.row_number().over(window)).where(F.col(_ORDER) <= n)


def _sampling_table(item_counts: DataFrame, exponent: float) -> DataFrame:
    """Items with train interactions as intervals [lo, hi) of the cumulative weight, by bucket.

    A draw ``x = u * total`` picks the item whose interval holds it (inverse-CDF sampling). To
    make that lookup an equi-join, [0, total) is cut into ``n_items`` equal buckets and each item
    is listed under every bucket its interval touches (one spare bucket either side absorbs
    rounding); on average two rows per item.
    """
    weights = item_counts.where(F.col(Col.N_INTERACTIONS) > 0).select(
        Col.ITEM_ID, F.pow(F.col(Col.N_INTERACTIONS).cast("double"), F.lit(exponent)).alias(_W)
    )
    # A running sum over all items: a single partition on purpose (items are few).
    in_order = Window.orderBy(Col.ITEM_ID)
    running = in_order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    cum = weights.withColumn(_HI, F.sum(_W).over(running))
    # lo is the previous item's hi itself, not hi - w, so adjacent intervals share exact bounds.
    cum = cum.withColumn(_LO, F.coalesce(F.lag(_HI).over(in_order), F.lit(0.0)))
    totals = weights.agg(F.sum(_W).alias(_TOTAL), F.count(F.lit(1)).alias(_N))
    scale = F.col(_N) / F.col(_TOTAL)
    first = F.greatest(F.floor(F.col(_LO) * scale) - 1, F.lit(0))
    last = F.least(F.floor(F.col(_HI) * scale) + 1, F.col(_N) - 1)
    return cum.crossJoin(F.broadcast(totals)).select(
        Col.ITEM_ID, _LO, _HI, F.explode(F.sequence(first, last)).alias(_BUCKET)
    )


def _popular_negatives(
    drawn: DataFrame, positives: DataFrame, item_counts: DataFrame, config: ExampleConfig
) -> DataFrame:
    """Negatives of the positives ``drawn``, none a positive of ``positives`` known then."""
    table = _sampling_table(item_counts, config.popularity_exponent)
    totals = table.agg(F.max(_HI).alias(_TOTAL), F.max(_BUCKET).alias(_MAX_BUCKET))
    draws = drawn.withColumn(
        _DRAW, F.explode(F.sequence(F.lit(0), F.lit(config.draws_per_positive - 1)))
    )
    u = uniform(
        config.seed, "popular", F.col(Col.USER_ID), F.col(_POS_ITEM), F.col(Col.ROLE), F.col(_DRAW)
    )
    draws = draws.crossJoin(F.broadcast(totals)).select(
        *draws.columns,
        (u * F.col(_TOTAL)).alias(_U),
        F.least(F.floor(u * (F.col(_MAX_BUCKET) + 1)), F.col(_MAX_BUCKET)).alias(_BUCKET),
    )
    picked = draws.join(table, _BUCKET).where((F.col(_LO) <= F.col(_U)) & (F.col(_U) < F.col(_HI)))
    picked = _drop_known(picked, positives)
    return _first_per_positive(picked, F.col(_DRAW), config.negatives_per_positive)


def _hard_negatives(
    drawn: DataFrame, positives: DataFrame, candidates: DataFrame, config: ExampleConfig
) -> DataFrame:
    """Hard negatives of the positives ``drawn``, none a positive of ``positives`` known then."""
    best = candidates.groupBy(Col.USER_ID, Col.ITEM_ID).agg(F.max(Col.SCORE).alias(Col.SCORE))
    # What is known depends on the user and role only, so the pool is built per (user, role).
    user_roles = drawn.select(Col.USER_ID, Col.ROLE, _RANK).distinct()
    allowed = _drop_known(best.join(user_roles, Col.USER_ID), positives)
    by_score = Window.partitionBy(Col.USER_ID, Col.ROLE).orderBy(
        F.col(Col.SCORE).desc(), Col.ITEM_ID
    )
    pool = (
        allowed.withColumn(_POOL_RANK, F.row_number().over(by_score))
        .where(F.col(_POOL_RANK) <= config.hard_pool_size)
        .select(Col.USER_ID, Col.ROLE, Col.ITEM_ID)
    )
    rows = drawn.join(pool, [Col.USER_ID, Col.ROLE])
    order = uniform(
        config.seed,
        "hard",
        F.col(Col.USER_ID),
        F.col(_POS_ITEM),
        F.col(Col.ROLE),
        F.col(Col.ITEM_ID),
    )
    return _first_per_positive(rows, order, config.hard_negatives_per_positive)


def _labelled(rows: DataFrame, item: str, label: float, kind: ExampleKind) -> DataFrame:
    return rows.select(
        Col.USER_ID,
        F.col(item).alias(Col.ITEM_ID),
        F.lit(label).cast("float").alias(Col.LABEL),
        F.lit(kind.value).alias(Col.KIND),
        Col.ROLE,
    )


def ranker_examples(
    split_df: DataFrame,
    item_counts: DataFrame,
    config: ExampleConfig | None = None,
    candidates: DataFrame | None = None,
    roles: Collection[str] | None = None,
) -> DataFrame:
    """Labelled (user, item) examples of every role, or of ``roles`` only.

    Args:
        split_df: Output of :func:`recsys.features.split.split_interactions`.
        item_counts: item_id and n_interactions (train interactions per item, e.g. from
            ``features.item_features``): the popularity negatives are drawn by.
        config: Sampling sizes, exponent and seed.
        candidates: Retrieval output (user_id, item_id, score; higher is better) to draw hard
            negatives from, or None for none.
        roles: The roles to write examples for (values of
            :class:`recsys.features.split.Role`); None for every role. A role's rows are the
            same whichever other roles are asked for (negatives still avoid the positives of
            every earlier role, and every draw is a hash of its own keys).

    Returns:
        user_id, item_id, label (FLOAT 1/0), kind (:class:`ExampleKind` value), role.
    """
    config = config or ExampleConfig()
    positives = _positives(split_df)
    drawn = positives
    if roles is not None:
        roles = check_roles("roles", roles)
        drawn = positives.where(F.col(Col.ROLE).isin(list(roles)))
    parts = [_labelled(drawn, _POS_ITEM, 1.0, ExampleKind.POSITIVE)]
    if config.negatives_per_positive > 0:
        negatives = _popular_negatives(drawn, positives, item_counts, config)
        parts.append(_labelled(negatives, Col.ITEM_ID, 0.0, ExampleKind.POPULAR_NEGATIVE))
    if candidates is not None and config.hard_negatives_per_positive > 0:
        hard = _hard_negatives(drawn, positives, candidates, config)
        parts.append(_labelled(hard, Col.ITEM_ID, 0.0, ExampleKind.HARD_NEGATIVE))
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out
