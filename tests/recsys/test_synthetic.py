"""The synthetic generator: valid rows, determinism by seed, and the statistics it promises."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from recsys.synthetic import (
    GENRES,
    SyntheticConfig,
    cluster_preferences,
    genre_sizes,
    synthetic_interactions,
    synthetic_items,
    synthetic_users,
    user_profiles,
)
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark

TINY = SyntheticConfig(n_users=200, n_items=50, n_interactions=5_000, seed=7, partitions=2)
#: Big enough for a catalogue's top 1% (20 items) and tail to mean something; still seconds.
SMALL = SyntheticConfig(
    n_users=500,
    n_items=2_000,
    n_interactions=20_000,
    seed=11,
    start=datetime(2020, 1, 1, tzinfo=UTC),
    end=datetime(2021, 1, 1, tzinfo=UTC),
)


@dataclass(frozen=True)
class Data:
    items: list[dict[str, Any]]
    interactions: list[dict[str, Any]]
    users: list[dict[str, Any]]
    preferred: dict[int, set[str]]

    @property
    def primary(self) -> dict[int, str]:
        return {r[Col.ITEM_ID]: r[Col.GENRES][0] for r in self.items}


def rows(df: DataFrame) -> list[dict[str, Any]]:
    return [r.asDict() for r in df.collect()]


@pytest.fixture(scope="module")
def data(spark: SparkSession) -> Data:
    interactions = synthetic_interactions(spark, SMALL)
    return Data(
        items=rows(synthetic_items(spark, SMALL)),
        interactions=rows(interactions),
        users=rows(synthetic_users(spark, SMALL, interactions)),
        preferred={
            r[Col.USER_ID]: set(r["preferred_genres"])
            for r in user_profiles(spark, SMALL).collect()
        },
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_users", 0),
        ("n_items", 5),
        ("n_interactions", 0),
        ("n_genres", 1),
        ("n_genres", 20),
        ("n_clusters", 0),
        ("popularity_exponent", -0.5),
        ("taste_strength", 1.5),
        ("user_activity_exponent", float("nan")),
        ("seed", -1),
        ("partitions", 0),
        ("start", datetime(2020, 1, 1)),
        ("end", datetime(2010, 1, 1, tzinfo=UTC)),
    ],
)
def test_config_rejects_bad_values_naming_them(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        SyntheticConfig(**{field: value})  # type: ignore[arg-type]


def test_genre_sizes_and_cluster_preferences() -> None:
    for config in (TINY, SMALL, SyntheticConfig(n_items=3, n_genres=3)):
        sizes = genre_sizes(config)
        assert len(sizes) == config.n_genres
        assert sum(sizes) == config.n_items
        assert min(sizes) >= 1
        prefs = cluster_preferences(config)
        assert len(prefs) == config.n_clusters
        for p in prefs:
            assert len(set(p)) == len(p)
            assert 2 <= len(p) <= min(3, config.n_genres - 1)
            assert all(0 <= g < config.n_genres for g in p)
    assert genre_sizes(SMALL)[GENRES.index("Drama")] > genre_sizes(SMALL)[GENRES.index("War")]


def test_items_have_unique_ids_genres_titles_and_text(data: Data) -> None:
    ids = [r[Col.ITEM_ID] for r in data.items]
    assert sorted(ids) == list(range(1, SMALL.n_items + 1))
    for r in data.items:
        genres = r[Col.GENRES]
        assert 1 <= len(genres) <= 3
        assert len(set(genres)) == len(genres)
        assert set(genres) <= set(GENRES)
        assert r[Col.TITLE].strip() == r[Col.TITLE] != ""
        assert 1950 <= r[Col.YEAR] <= 2025
        assert genres[0].lower() in r[Col.TAG_TEXT].split(", ")
    counts = Counter(len(r[Col.GENRES]) for r in data.items)
    assert set(counts) == {1, 2, 3}
    by_genre = Counter(data.primary.values())
    assert [by_genre[g] for g in GENRES] == list(genre_sizes(SMALL))
    assert any("," in r[Col.TITLE] for r in data.items)
    assert any('"' in r[Col.TITLE] for r in data.items)
    assert len({r[Col.TITLE] for r in data.items}) > 0.8 * SMALL.n_items


def test_interactions_are_valid_and_unique_per_pair(data: Data) -> None:
    xs = data.interactions
    assert 0.5 * SMALL.n_interactions < len(xs) <= SMALL.n_interactions
    assert len({(r[Col.USER_ID], r[Col.ITEM_ID]) for r in xs}) == len(xs)
    for r in xs:
        assert 1 <= r[Col.USER_ID] <= SMALL.n_users
        assert 1 <= r[Col.ITEM_ID] <= SMALL.n_items
        assert r[Col.RATING] in {k / 2 for k in range(1, 11)}
        assert r[Col.IS_POSITIVE] == (r[Col.RATING] >= 4.0)
        # collect() gives naive local times; timestamp() reads them back in the same zone.
        assert SMALL.start.timestamp() <= r[Col.EVENT_TS].timestamp() < SMALL.end.timestamp()
    ratings = Counter(r[Col.RATING] for r in xs)
    assert len(ratings) == 10
    assert 3.2 < sum(r[Col.RATING] for r in xs) / len(xs) < 3.8  # MovieLens: about 3.5


def test_users_cover_every_id_with_activity_from_interactions(data: Data) -> None:
    assert sorted(r[Col.USER_ID] for r in data.users) == list(range(1, SMALL.n_users + 1))
    per_user = Counter(r[Col.USER_ID] for r in data.interactions)
    for r in data.users:
        assert r[Col.N_INTERACTIONS] == per_user[r[Col.USER_ID]]
        assert r[Col.GENDER] is r[Col.AGE] is r[Col.OCCUPATION] is r[Col.ZIP_CODE] is None
        if r[Col.N_INTERACTIONS]:
            assert r[Col.FIRST_SEEN_TS] <= r[Col.LAST_SEEN_TS]
        else:
            assert r[Col.FIRST_SEEN_TS] is r[Col.LAST_SEEN_TS] is None


def test_item_popularity_follows_a_power_law(data: Data) -> None:
    per_item = Counter(r[Col.ITEM_ID] for r in data.interactions)
    top = sum(n for _, n in per_item.most_common(SMALL.n_items // 100))
    assert top / len(data.interactions) > 0.10  # the top 1% of items: > 10x their share
    # ... while the catalogue still has a long tail that is reached.
    assert len(per_item) > 0.5 * SMALL.n_items


def test_user_activity_is_skewed_and_heavy_users_are_spread_over_ids(data: Data) -> None:
    per_user = Counter(r[Col.USER_ID] for r in data.interactions)
    top = per_user.most_common(SMALL.n_users // 100)
    assert sum(n for _, n in top) / len(data.interactions) > 0.03  # 1% of users, > 3x share
    heaviest = [u for u, _ in per_user.most_common(10)]
    assert max(heaviest) > SMALL.n_users // 2


def test_users_concentrate_on_their_cluster_genres(data: Data) -> None:
    xs, primary = data.interactions, data.primary
    observed = sum(primary[r[Col.ITEM_ID]] in data.preferred[r[Col.USER_ID]] for r in xs) / len(xs)
    # Chance level: the share the user's preferred genres would get if users picked genres
    # independently of their cluster, i.e. from the overall genre mix of the interactions.
    share = Counter(primary[r[Col.ITEM_ID]] for r in xs)
    chance = sum(sum(share[g] for g in data.preferred[r[Col.USER_ID]]) / len(xs) for r in xs) / len(
        xs
    )
    assert observed > 0.7
    assert observed > 2 * chance
    liked = [r[Col.RATING] for r in xs if primary[r[Col.ITEM_ID]] in data.preferred[r[Col.USER_ID]]]
    other = [
        r[Col.RATING] for r in xs if primary[r[Col.ITEM_ID]] not in data.preferred[r[Col.USER_ID]]
    ]
    assert sum(liked) / len(liked) > sum(other) / len(other) + 0.3


def _sorted_rows(df: DataFrame) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in df.collect())


def test_same_seed_same_rows_whatever_the_partitioning(spark: SparkSession) -> None:
    again = replace(TINY, partitions=3)
    first = _sorted_rows(synthetic_interactions(spark, TINY))
    assert first == _sorted_rows(synthetic_interactions(spark, again))
    assert _sorted_rows(synthetic_items(spark, TINY)) == _sorted_rows(synthetic_items(spark, again))
    other = replace(TINY, seed=TINY.seed + 1)
    assert first != _sorted_rows(synthetic_interactions(spark, other))
    assert _sorted_rows(synthetic_items(spark, TINY)) != _sorted_rows(synthetic_items(spark, other))
