"""Seeded user samples: exact in size, deterministic, nested; per-sample inputs from Spark."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from recsys.training import data as D
from recsys.training import samples as S
from recsys.training.trainers import load_split
from recsys.warehouse.tables import FEATURES_RANKER_EXAMPLES, Col
from tests.helpers.tiny_features import write_tiny_features

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark

DS = date(2026, 3, 9)
SPLIT = "leave_last_out"


@pytest.fixture(scope="module")
def tiny(spark: SparkSession) -> None:
    write_tiny_features(spark, DS, n_users=60)


def _ids(df: object) -> list[int]:
    return sorted(int(r[Col.USER_ID]) for r in df.collect())  # type: ignore[attr-defined]


def test_sample_is_exact_deterministic_and_nested(spark: SparkSession) -> None:
    users = spark.range(1, 5001).withColumnRenamed("id", Col.USER_ID)
    a = _ids(S.sample_users(users, 300, seed=7))
    assert len(a) == 300
    # Same set from another partitioning and with duplicate rows.
    shuffled = users.union(users).repartition(7, F.rand(seed=1))
    assert _ids(S.sample_users(shuffled, 300, seed=7)) == a
    # A smaller sample of the same seed lies inside; another seed draws other users.
    small = _ids(S.sample_users(users, 50, seed=7))
    assert len(small) == 50
    assert set(small) <= set(a)
    assert _ids(S.sample_users(users, 300, seed=8)) != a
    # Not the lowest ids: a hash order, spread over the whole range.
    assert max(a) > 2500
    # At least as large as the population: every user.
    assert _ids(S.sample_users(users, 10_000, seed=7)) == list(range(1, 5001))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_sample_size_is_checked(spark: SparkSession, bad: object) -> None:
    users = spark.range(3).withColumnRenamed("id", Col.USER_ID)
    with pytest.raises(ValueError, match=r"^size: must be an int >= 1"):
        S.sample_users(users, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^eval_users: "):
        S.check_sample_size("eval_users", bad)


@pytest.mark.usefixtures("tiny")
def test_split_data_holds_only_the_sample(spark: SparkSession) -> None:
    split = load_split(spark, DS, SPLIT, history_len=5, sample_size=17)
    ids = split.sample.ids.tolist()
    assert len(ids) == 17
    assert ids == sorted(ids)
    again = load_split(spark, DS, SPLIT, history_len=5, sample_size=17)
    assert again.sample.ids.tolist() == ids
    assert set(split.sample_pairs[Col.USER_ID]) == set(ids)
    everything = D.split_pairs(spark, DS, SPLIT)
    mine = everything[everything[Col.USER_ID].isin(ids)]
    assert len(split.sample_pairs) == len(mine)
    assert split.users.rows.keys() == set(ids)  # every tiny user has train features
    assert split.n_users == 60
    task = split.eval_task(D.TEST)
    assert task.users == ids  # every tiny user has one test positive
    # Every user: the pairs of the full split.
    full = load_split(spark, DS, SPLIT, history_len=5, sample_size=1000)
    assert len(full.sample.ids) == 60
    assert len(full.sample_pairs) == len(everything)


@pytest.mark.usefixtures("tiny")
def test_whole_split_statistics_match_pandas(spark: SparkSession) -> None:
    pairs = D.split_pairs(spark, DS, SPLIT)
    train = pairs[pairs[Col.ROLE] == D.TRAIN]
    per_user = train.groupby(Col.USER_ID).size()
    stats = S.train_user_stats(spark, DS, SPLIT)
    assert stats == S.TrainUserStats(int(train[Col.USER_ID].nunique()), float(per_user.median()))
    counts = S.train_item_counts(spark, DS, SPLIT, positives_only=False, distinct_users=True)
    want = train.groupby(Col.ITEM_ID)[Col.USER_ID].nunique()
    assert dict(zip(counts[Col.ITEM_ID], counts[Col.N_INTERACTIONS], strict=True)) == want.to_dict()
    rows = S.train_item_counts(spark, DS, SPLIT, positives_only=True, distinct_users=False)
    pos = train[train[Col.IS_POSITIVE]].groupby(Col.ITEM_ID).size()
    assert dict(zip(rows[Col.ITEM_ID], rows[Col.N_INTERACTIONS], strict=True)) == pos.to_dict()


@pytest.mark.usefixtures("tiny")
@pytest.mark.parametrize("history_len", [4, 10])  # cut (6 train items) and 0-padded
def test_two_tower_rows_carry_the_users_features(spark: SparkSession, history_len: int) -> None:
    rows = D.two_tower_rows(spark, DS, SPLIT, seed=0, history_len=history_len).toPandas()
    plain = D.two_tower_rows(spark, DS, SPLIT, seed=0).toPandas()
    # The same rows in the same order, with the features added.
    assert rows[[Col.USER_ID, Col.ITEM_ID]].equals(plain[[Col.USER_ID, Col.ITEM_ID]])
    users = D.load_users(spark, DS, SPLIT, history_len=history_len)
    for _, r in rows.iterrows():
        row = users.rows[int(r[Col.USER_ID])]
        assert list(r[Col.HISTORY]) == users.history[row].tolist()
        assert list(r[Col.DENSE]) == users.dense[row].tolist()


def _tuples(df: object) -> list[tuple[object, ...]]:
    """Rows in order, array cells as tuples."""
    return [
        tuple(tuple(v) if isinstance(v, list | tuple) else v for v in r)
        for r in df.collect()  # type: ignore[attr-defined]
    ]


def test_the_training_sample_is_drawn_apart_from_the_evaluation_sample(
    spark: SparkSession,
) -> None:
    users = spark.range(1, 4001).withColumnRenamed("id", Col.USER_ID)
    evaluated = set(_ids(S.sample_users(users, 1000)))
    trained = set(_ids(S.sample_users(users, 1000, S.TRAIN_SAMPLE_SEED)))
    # Independent draws share about 1000 * 1000 / 4000 = 250 users (sd about 14); a sample of
    # the evaluation seed would share all 1000.
    assert 150 < len(evaluated & trained) < 350


@pytest.mark.usefixtures("tiny")
def test_training_rows_come_only_from_the_training_sample(spark: SparkSession) -> None:
    assert S.training_users(spark, DS, SPLIT, None) is None
    sample = S.training_users(spark, DS, SPLIT, 15)
    assert sample is not None
    ids = _ids(sample)
    assert len(ids) == 15
    users = S.split_users(spark, DS, SPLIT)
    assert ids == _ids(S.sample_users(users, 15, S.TRAIN_SAMPLE_SEED))
    assert ids != _ids(S.sample_users(users, 15))  # not the validation/evaluation sample

    def two_tower(only: DataFrame | None) -> DataFrame:
        return D.two_tower_rows(spark, DS, SPLIT, 3, history_len=4, users=only)

    def sasrec(only: DataFrame | None) -> DataFrame:
        return D.sasrec_rows(spark, DS, SPLIT, 4, 3, False, True, users=only)

    for name, build in (("two_tower", two_tower), ("sasrec", sasrec)):
        every = build(None)
        kept = _tuples(build(sample))
        # Exactly every user's rows of the sampled users, in the same order.
        assert kept == _tuples(every.where(F.col(Col.USER_ID).isin(ids))), name
        assert {r[0] for r in kept} == set(ids), name
        assert len(kept) < every.count(), name


@pytest.mark.usefixtures("tiny")
def test_ranker_rows_read_only_their_role_with_the_filter_in_the_scan(
    spark: SparkSession,
) -> None:
    rows = D.ranker_rows(spark, DS, SPLIT, D.VALIDATION, seed=0)
    plan = rows._jdf.queryExecution().executedPlan().toString()
    # The role predicate reaches the Parquet scan of features.ranker_examples (row groups and,
    # with Delta's statistics, files of other roles are skipped), not a filter after a full read.
    assert "EqualTo(role,validation)" in plan, plan
    validation = (
        D.table_slice(spark, FEATURES_RANKER_EXAMPLES, DS, SPLIT)
        .where(F.col(Col.ROLE) == D.VALIDATION)
        .count()
    )
    assert 0 < rows.count() == validation


def test_counts_by_index_places_each_count_at_its_item_index() -> None:
    counts = pd.DataFrame({Col.ITEM_ID: [10, 30, 99], Col.N_INTERACTIONS: [4, 1, 7]})
    got = S.counts_by_index(counts, {10: 2, 20: 1, 30: 3}, n_items=3)
    # index 0 is padding; item 20 has no row; item 99 has no index and is dropped.
    assert got.dtype == np.int64
    assert got.tolist() == [0, 0, 4, 1]
