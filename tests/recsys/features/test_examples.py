"""Ranker examples: positives per role, popularity-shaped negatives, hard negatives, seeds."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import pytest

from recsys.features.examples import READ_ROLES, ExampleConfig, check_roles, ranker_examples
from recsys.training import data as D
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from tests.recsys.features.conftest import LiteralData

pytestmark = pytest.mark.spark

#: Train interactions per item: weights 16^0.75 = 8, 1 and 81^0.75 = 27. Item 9 has none.
COUNTS = {1: 16, 2: 1, 3: 81}
N_USERS = 60


def split_rows(lit: LiteralData) -> DataFrame:
    """Users 1-60 each have a train positive on item 9; users 1-10 also on item 3. User 20 has a
    validation positive on item 1 and a test positive on item 2; user 2 a train negative on 1."""
    rows = [(u, 9, 5.0, True, "train") for u in range(1, N_USERS + 1)]
    rows += [(u, 3, 4.0, True, "train") for u in range(1, 11)]
    rows += [
        (20, 1, 5.0, True, "validation"),
        (20, 2, 4.5, True, "test"),
        (2, 1, 1.0, False, "train"),
    ]
    data = [(u, i, r, p, lit.day(0), role) for u, i, r, p, role in rows]
    ddl = (
        "user_id BIGINT, item_id BIGINT, rating DOUBLE, is_positive BOOLEAN, event_ts TIMESTAMP, "
        "role STRING"
    )
    return lit.spark.createDataFrame(data, ddl)


def counts(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(list(COUNTS.items()), "item_id BIGINT, n_interactions BIGINT")


def known_positives(split_df: DataFrame) -> dict[tuple[int, str], set[int]]:
    """Per (user, role): positives known at that role (its own and earlier roles)."""
    order = {"train": 0, "validation": 1, "test": 2}
    rows = [r for r in split_df.collect() if r[Col.IS_POSITIVE]]
    return {
        (u, role): {
            r[Col.ITEM_ID] for r in rows if r[Col.USER_ID] == u and order[r[Col.ROLE]] <= rank
        }
        for u in {r[Col.USER_ID] for r in rows}
        for role, rank in order.items()
    }


def test_positives_and_popular_negatives(lit: LiteralData) -> None:
    split_df = split_rows(lit)
    config = ExampleConfig(negatives_per_positive=10, seed=7)
    rows = ranker_examples(split_df, counts(lit.spark), config).collect()
    positives = {(r[Col.USER_ID], r[Col.ITEM_ID], r[Col.ROLE]) for r in rows if r[Col.LABEL] == 1.0}
    expected = {
        (r[Col.USER_ID], r[Col.ITEM_ID], r[Col.ROLE])
        for r in split_df.collect()
        if r[Col.IS_POSITIVE]
    }
    assert positives == expected
    assert {r[Col.KIND] for r in rows if r[Col.LABEL] == 1.0} == {"positive"}
    negatives = [r for r in rows if r[Col.LABEL] == 0.0]
    assert {r[Col.KIND] for r in negatives} == {"popular_negative"}
    known = known_positives(split_df)
    for r in negatives:
        assert r[Col.ITEM_ID] not in known[(r[Col.USER_ID], r[Col.ROLE])], r
    assert {r[Col.ITEM_ID] for r in negatives} <= set(COUNTS)  # item 9 has no train popularity
    # Every positive got its 10 negatives (enough popularity mass is never a positive).
    per_positive = Counter((r[Col.USER_ID], r[Col.ROLE]) for r in negatives)
    assert per_positive[(11, "train")] == 10
    assert per_positive[(20, "test")] == 10
    drawn = {
        key: {r[Col.ITEM_ID] for r in negatives if (r[Col.USER_ID], r[Col.ROLE]) == key}
        for key in ((20, "train"), (20, "test"))
    }
    # User 20's test negatives can only be item 3 (items 1 and 2 are its known positives then);
    # its train negatives may be items it only likes later.
    assert drawn[(20, "test")] == {3}
    assert 1 in drawn[(20, "train")]


def frequencies(lit: LiteralData, exponent: float) -> dict[int, float]:
    config = ExampleConfig(negatives_per_positive=10, popularity_exponent=exponent, seed=11)
    rows = ranker_examples(split_rows(lit), counts(lit.spark), config).where(
        "label = 0 AND role = 'train' AND user_id > 10"
    )
    drawn = Counter(r[Col.ITEM_ID] for r in rows.collect())
    total = sum(drawn.values())
    assert total == 10 * (N_USERS - 10)
    return {i: drawn[i] / total for i in COUNTS}


@pytest.mark.parametrize(("exponent", "weights"), [(0.75, (8, 1, 27)), (0.0, (1, 1, 1))])
def test_negatives_follow_popularity(
    lit: LiteralData, exponent: float, weights: tuple[int, ...]
) -> None:
    got = frequencies(lit, exponent)
    n = 10 * (N_USERS - 10)
    for item, w in zip(COUNTS, weights, strict=True):
        p = w / sum(weights)
        # Four binomial standard deviations of a share estimated from n draws.
        assert abs(got[item] - p) < 4 * (p * (1 - p) / n) ** 0.5, (item, got, p)


def test_hard_negatives_come_from_the_best_allowed_candidates(lit: LiteralData) -> None:
    split_df = split_rows(lit)
    scores = [(1, 0.9), (3, 0.8), (2, 0.7), (4, 0.6), (5, 0.1), (3, 0.2)]
    candidates = lit.spark.createDataFrame(
        [(20, i, s) for i, s in scores], "user_id BIGINT, item_id BIGINT, score DOUBLE"
    )
    config = ExampleConfig(
        negatives_per_positive=0, hard_negatives_per_positive=2, hard_pool_size=3, seed=5
    )
    rows = ranker_examples(split_df, counts(lit.spark), config, candidates).collect()
    hard = [r for r in rows if r[Col.KIND] == "hard_negative"]
    assert {r[Col.LABEL] for r in hard} == {0.0}
    assert {r[Col.USER_ID] for r in hard} == {20}
    by_role: dict[str, list[int]] = {}
    for r in hard:
        by_role.setdefault(r[Col.ROLE], []).append(r[Col.ITEM_ID])
    # The best three candidates that are not known positives at the role, two drawn per positive:
    # train knows item 9; validation also 1; test also 2. Item 3 is listed twice (best 0.8).
    pools = {"train": {1, 3, 2}, "validation": {3, 2, 4}, "test": {3, 4, 5}}
    assert set(by_role) == set(pools)
    for role, picked in by_role.items():
        assert set(picked) <= pools[role], (role, picked)
        assert len(set(picked)) == len(picked) == 2  # one positive per role: distinct picks


def test_train_hard_negatives_skip_train_positives(lit: LiteralData) -> None:
    candidates = lit.spark.createDataFrame(
        [(11, 9, 1.0), (11, 3, 0.9), (11, 2, 0.5)], "user_id BIGINT, item_id BIGINT, score DOUBLE"
    )
    config = ExampleConfig(negatives_per_positive=0, hard_negatives_per_positive=2)
    rows = ranker_examples(split_rows(lit), counts(lit.spark), config, candidates).collect()
    hard = [(r[Col.USER_ID], r[Col.ITEM_ID]) for r in rows if r[Col.KIND] == "hard_negative"]
    assert sorted(hard) == [(11, 2), (11, 3)]  # item 9 is a train positive of user 11


def test_same_seed_same_examples(lit: LiteralData) -> None:
    split_df = split_rows(lit)

    def draw(seed: int) -> list[tuple[object, ...]]:
        config = ExampleConfig(negatives_per_positive=3, seed=seed)
        return sorted(
            tuple(r) for r in ranker_examples(split_df, counts(lit.spark), config).collect()
        )

    first = draw(1)
    assert draw(1) == first
    assert draw(2) != first


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"negatives_per_positive": -1}, "negatives_per_positive"),
        ({"popularity_exponent": float("nan")}, "popularity_exponent"),
        ({"hard_pool_size": 0}, "hard_pool_size"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_example_configs_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ExampleConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("roles", [("validation",), ("train", "test"), ("test",)])
def test_examples_of_some_roles_are_those_roles_rows_of_every_role(
    lit: LiteralData, roles: tuple[str, ...]
) -> None:
    """Asking for fewer roles drops the others and changes no row of those kept: negatives still
    avoid every earlier role's positives (user 20's test negatives avoid its validation item)."""
    split_df = split_rows(lit)
    candidates = lit.spark.createDataFrame(
        [(20, i, 1.0 / i) for i in (1, 2, 3, 4, 5)] + [(11, 3, 0.9), (11, 2, 0.5)],
        "user_id BIGINT, item_id BIGINT, score DOUBLE",
    )
    config = ExampleConfig(negatives_per_positive=3, hard_negatives_per_positive=2, seed=4)

    def rows(df: DataFrame) -> list[tuple[object, ...]]:
        return sorted(tuple(r) for r in df.collect())

    every = ranker_examples(split_df, counts(lit.spark), config, candidates)
    some = ranker_examples(split_df, counts(lit.spark), config, candidates, roles=roles)
    wanted = rows(every.where(every[Col.ROLE].isin(list(roles))))
    assert rows(some) == wanted
    assert {r[4] for r in wanted} == set(roles)  # the test covers each role asked for
    assert len(wanted) < every.count()


def test_the_roles_written_by_default_are_the_roles_the_ranker_reads() -> None:
    # recsys.training.trainers.train_ranker reads ranker_rows(..., D.VALIDATION, ...).
    assert READ_ROLES == (D.VALIDATION,)


@pytest.mark.parametrize("bad", [(), ("nope",), "validation", ("train", "train"), None, 3])
def test_bad_roles_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^roles: "):
        check_roles("roles", bad)


def test_roles_come_back_in_time_order() -> None:
    assert check_roles("roles", ["test", "train"]) == ("train", "test")
