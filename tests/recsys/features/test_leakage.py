"""No feature may see data after the train window.

Planted post-cutoff interactions (an extreme rating, a positive on a never-seen item, a user who
only appears later) must leave every user feature, item feature and train example unchanged. A
control computes the features with the roles erased and checks that the planted rows would be
visible, so the comparison cannot pass vacuously.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pyspark.sql import functions as F

from recsys.features.examples import ExampleConfig, ranker_examples
from recsys.features.item_features import item_features
from recsys.features.split import LeaveLastOut, Split, TimeCutoff, as_of, split_interactions
from recsys.features.user_features import user_features
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from tests.recsys.features.conftest import LiteralData

pytestmark = pytest.mark.spark

ITEMS = [(i, f"Item {i}", 1990 + i, ["Drama"] if i % 2 else ["Comedy"], None) for i in range(1, 9)]
# Users 1-4 rate items 1-7 (user 4 not item 5) on days 1.1-4.7; each has >= 3 positives.
BASE = [
    (u, i, 5.0 if (u + i) % 3 else 1.5, u + i / 10)
    for u in range(1, 5)
    for i in range(1, 8)
    if (u, i) != (4, 5)
]
# Day 20 and later: after the cutoff of day 15 and after every base event.
PLANTED: list[tuple[int, int, float, float]] = [
    (1, 8, 0.5, 20),  # extreme rating on item 8, which has no earlier interaction
    (2, 8, 5.0, 21),  # a positive on it
    (9, 1, 5.0, 22),  # a user seen only after the cutoff
    (3, 1, 0.5, 23),
    (4, 5, 5.0, 24),  # a later positive on a popular item: no train negative may know of it
]


def features(
    lit: LiteralData, split_df: DataFrame, split: Split, with_examples: bool = True
) -> tuple[list[dict[str, object]], ...]:
    """User features, item features and (optionally) train examples, as sorted row tuples."""
    ts = as_of(split_df, split)
    items = item_features(lit.items(ITEMS), split_df, ts).cache()
    users = user_features(split_df, items, ts, history_len=3)
    out = [lit.rows(users, Col.USER_ID), lit.rows(items, Col.ITEM_ID)]
    if with_examples:
        config = ExampleConfig(negatives_per_positive=2, seed=3)
        train = ranker_examples(split_df, items, config).where(F.col(Col.ROLE) == "train")
        out.append(lit.rows(train, Col.USER_ID, Col.ITEM_ID, Col.KIND))
    items.unpersist()
    return tuple(out)


def test_post_cutoff_interactions_change_no_feature(lit: LiteralData) -> None:
    split = TimeCutoff(lit.day(15))
    clean = features(lit, split_interactions(lit.interactions(BASE), split), split)
    planted_df = split_interactions(lit.interactions(BASE + PLANTED), split)
    assert features(lit, planted_df, split) == clean
    # Control: with every row counted as train the planted rows show in users and items.
    leaky = features(lit, planted_df.withColumn(Col.ROLE, F.lit("train")), split, False)
    assert leaky[0] != clean[0]
    assert leaky[1] != clean[1]


def test_leave_last_out_features_ignore_held_out_rows(lit: LiteralData) -> None:
    split = LeaveLastOut()
    split_df = split_interactions(lit.interactions(BASE), split)
    clean = features(lit, split_df, split, with_examples=False)
    # Deleting every held-out row changes nothing: features read the train role only.
    train_only = split_df.where(F.col(Col.ROLE) == "train")
    assert features(lit, train_only, split, with_examples=False) == clean
    held_out = {
        (r[Col.USER_ID], r[Col.ITEM_ID])
        for r in split_df.where(F.col(Col.ROLE) != "train").collect()
    }
    in_history = {(u[Col.USER_ID], i) for u in clean[0] for i in u[Col.HISTORY]}  # type: ignore[attr-defined]
    # Each of the 4 users holds out a validation and a test positive (and what followed them).
    assert len(held_out) >= 8
    assert in_history
    assert not in_history & held_out
