"""The sized replay's pure parts and its two arms on literal data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bench.replay_power import arms, speed_for

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def test_speed_puts_the_future_inside_the_window() -> None:
    assert speed_for(730) == 105  # 7 replay days = 735 data days >= 730
    assert speed_for(365) * 7 >= 365
    assert speed_for(3) == 1
    with pytest.raises(ValueError, match="future_days"):
        speed_for(0)


@pytest.mark.spark
def test_arms_exclude_known_items_and_follow_the_users_genres(spark: SparkSession) -> None:
    # Items 1-3 Drama (1 the most consumed), 4-6 Comedy (once each); user 10 watches Comedy only.
    items = spark.createDataFrame(
        [(1, ["Drama"]), (2, ["Drama"]), (3, ["Drama"]), (4, ["Comedy"]), (5, ["Comedy"]),
         (6, ["Comedy"])],
        "item_id bigint, genres array<string>",
    )  # fmt: skip
    train = spark.createDataFrame(
        [(u, 1) for u in range(20, 26)]
        + [(u, 2) for u in range(20, 25)]
        + [(u, 3) for u in range(20, 24)]
        + [(10, 4), (20, 5), (25, 6)],
        "user_id bigint, item_id bigint",
    )
    users = spark.createDataFrame([(10,), (20,)], "user_id bigint")
    ranked: dict[tuple[str, int], list[int]] = {}
    for r in sorted(arms(train, items, users, 2).collect(), key=lambda r: r.rank):
        ranked.setdefault((r.rec_set, r.user_id), []).append(r.item_id)
    assert ranked[("popularity", 10)] == [1, 2]  # the most consumed, item 4 is known
    assert ranked[("popularity", 20)] == [4, 6]  # 1, 2, 3 and 5 are known
    assert ranked[("model", 10)] == [5, 6]  # Comedy, what the user watches; 4 is known
    # User 20's genres: Drama (all known) and Comedy: only the unknown Comedy items are left.
    assert ranked[("model", 20)] == [4, 6]
