"""The Spark co-visitation twin agrees with the numpy one; the stored table and recent items."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
import torch
from pyspark.sql import functions as F

from recsys.training.covisit import CovisitConfig, covisit_matrix, matrix_from_ids
from recsys.training.covisit_spark import (
    RECENT_ITEM_IDS,
    collect_recent_items,
    covisit_rows,
    covisit_spark,
    covisit_table_rows,
    load_covisit_matrix,
    recent_items_spark,
    stored_day,
)
from recsys.training.data import ItemTable
from recsys.training.inference import serving_covisit_matrix
from recsys.warehouse.io import replace_rows
from recsys.warehouse.tables import (
    FEATURES_COVISIT,
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_ITEM_FEATURES,
    Col,
)
from tests.helpers.tiny_features import write_tiny_features

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark

START = datetime(2021, 1, 1, tzinfo=UTC)
SPLIT = "leave_last_out"


def _events(seed: int, n_users: int, n_items: int, ties: bool) -> pd.DataFrame:
    """Random events; with ``ties`` many share a second (the item id orders them)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        for _ in range(int(rng.integers(0, 30))):
            second = int(rng.integers(0, 8 if ties else 10**6))
            rows.append(
                (u, int(rng.integers(1, n_items + 1)) * 7, START + timedelta(seconds=second))
            )
    # One heavy user: many events, so the window (not the square) bounds their pairs.
    rows += [
        (n_users + 1, int(i) * 7, START + timedelta(seconds=k))
        for k, i in enumerate(rng.integers(1, n_items + 1, size=400))
    ]
    return pd.DataFrame(rows, columns=[Col.USER_ID, Col.ITEM_ID, Col.EVENT_TS])


def _sequences(events: pd.DataFrame, index_of: dict[int, int]) -> dict[int, list[int]]:
    """As recsys.training.data.event_sequences: by (event_ts, item_id), unknown items dropped."""
    ordered = events.sort_values([Col.USER_ID, Col.EVENT_TS, Col.ITEM_ID])
    out: dict[int, list[int]] = {}
    for u, i in zip(
        ordered[Col.USER_ID].to_numpy(np.int64),
        ordered[Col.ITEM_ID].to_numpy(np.int64),
        strict=True,
    ):
        if int(i) in index_of:
            out.setdefault(int(u), []).append(index_of[int(i)])
    return out


def _frame(spark: SparkSession, events: pd.DataFrame) -> DataFrame:
    return spark.createDataFrame(
        events, f"{Col.USER_ID} BIGINT, {Col.ITEM_ID} BIGINT, {Col.EVENT_TS} TIMESTAMP"
    )


@pytest.mark.parametrize(
    ("seed", "config"),
    [
        (0, CovisitConfig(window=3, step_decay=0.5, top_n=4)),
        (1, CovisitConfig(window=20, step_decay=0.9, top_n=7)),
        (2, CovisitConfig(window=1, step_decay=1.0, top_n=1)),
        (3, CovisitConfig(window=5, step_decay=0.8, top_n=10_000)),
    ],
)
def test_spark_matrix_equals_numpy(spark: SparkSession, seed: int, config: CovisitConfig) -> None:
    n_items = 25
    events = _events(seed, 40, n_items, ties=seed % 2 == 0)
    ids = np.arange(1, n_items + 1) * 7
    index_of = {int(v): i + 1 for i, v in enumerate(ids)}
    want = covisit_matrix(_sequences(events, index_of), n_items, config)
    rows = covisit_spark(_frame(spark, events), config).toPandas()
    got = matrix_from_ids(
        rows[Col.ITEM_ID].to_numpy(),
        rows[Col.NEXT_ITEM_ID].to_numpy(),
        rows[Col.WEIGHT].to_numpy(),
        ids,
    )
    assert got.nnz == want.nnz == len(rows)
    # The same top-n sets, the same values.
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.data, want.data, rtol=0, atol=1e-6)
    assert int(rows.groupby(Col.ITEM_ID).size().max()) <= config.top_n
    # rank: 1.. per row, by weight descending then the lower next item.
    for _, g in rows.groupby(Col.ITEM_ID):
        g = g.sort_values(Col.RANK)
        assert g[Col.RANK].tolist() == list(range(1, len(g) + 1))
        keys = list(zip(-g[Col.WEIGHT], g[Col.NEXT_ITEM_ID], strict=True))
        assert keys == sorted(keys)


def _write_split(spark: SparkSession, ds: date, events: pd.DataFrame, roles: list[str]) -> None:
    frame = events.copy()
    frame[Col.RATING], frame[Col.IS_POSITIVE], frame[Col.ROLE] = 4.0, True, roles
    frame[Col.SPLIT_ID], frame[Col.DS] = SPLIT, ds
    schema = spark.table(FEATURES_INTERACTIONS_SPLIT.qualified_name).schema
    df = spark.createDataFrame(frame[[f.name for f in schema.fields]], schema)
    replace_rows(
        df,
        FEATURES_INTERACTIONS_SPLIT,
        (F.col(Col.DS) == F.lit(ds)) & (F.col(Col.SPLIT_ID) == F.lit(SPLIT)),
    )


def _store(spark: SparkSession, ds: date, config: CovisitConfig) -> None:
    where = (F.col(Col.DS) == F.lit(ds)) & (F.col(Col.SPLIT_ID) == F.lit(SPLIT))
    split = spark.table(FEATURES_INTERACTIONS_SPLIT.qualified_name).where(where)
    items = spark.table(FEATURES_ITEM_FEATURES.qualified_name).where(where)
    schema = spark.table(FEATURES_COVISIT.qualified_name).schema
    rows = covisit_table_rows(split, items, config).withColumns(
        {Col.SPLIT_ID: F.lit(SPLIT), Col.DS: F.lit(ds)}
    )
    replace_rows(
        rows.select(*[F.col(f.name).cast(f.dataType) for f in schema.fields]),
        FEATURES_COVISIT,
        where,
    )


def test_stored_table_reader_and_recent_items(spark: SparkSession) -> None:
    ds = date(2027, 3, 4)
    write_tiny_features(spark, ds, SPLIT, n_items=30)  # items 1..30 in item_features
    rng = np.random.default_rng(5)
    events = _events(5, 30, 32, ties=True)
    events[Col.ITEM_ID] = events[Col.ITEM_ID] // 7  # items 31, 32: not in the catalogue
    roles = [str(r) for r in rng.choice(["train", "train", "validation", "test"], len(events))]
    _write_split(spark, ds, events, roles)
    ids = np.arange(1, 31)
    index_of = {int(v): i + 1 for i, v in enumerate(ids)}
    train = events[np.asarray(roles) == "train"]
    config = CovisitConfig(window=4, top_n=6, last=5)
    want = covisit_matrix(_sequences(train, index_of), 30, config)

    # No stored rows yet: built from the split by the same function (warning logged).
    built = load_covisit_matrix(spark, ds, SPLIT, ids, config, chunk_rows=13)
    np.testing.assert_array_equal(built.indices, want.indices)
    np.testing.assert_allclose(built.toarray(), want.toarray(), atol=1e-6)

    _store(spark, ds, config)
    stored = load_covisit_matrix(spark, ds, SPLIT, ids, config, chunk_rows=13)
    np.testing.assert_array_equal(stored.indptr, want.indptr)
    np.testing.assert_allclose(stored.toarray(), want.toarray(), atol=1e-6)
    # A smaller top_n is a cut of the stored rows; other settings are refused.
    three = CovisitConfig(window=4, top_n=3, last=5)
    cut = load_covisit_matrix(spark, ds, SPLIT, ids, three)
    np.testing.assert_allclose(
        cut.toarray(), covisit_matrix(_sequences(train, index_of), 30, three).toarray(), atol=1e-6
    )
    for bad in (CovisitConfig(window=5, top_n=6), CovisitConfig(window=4, top_n=7)):
        with pytest.raises(ValueError, match=r"^config:"):
            covisit_rows(spark, ds, SPLIT, bad)

    # A later day without its own matrix (the DAG rebuilds it on training days only) finds this
    # one for compatible settings: the same window and decay, a top_n no larger.
    later = ds + timedelta(days=3)
    assert stored_day(spark, later, SPLIT, config) == ds
    assert stored_day(spark, later, SPLIT, three) == ds
    assert stored_day(spark, ds, SPLIT, config) == ds
    for bad in (CovisitConfig(window=5, top_n=6), CovisitConfig(window=4, top_n=7)):
        assert stored_day(spark, later, SPLIT, bad) != ds
    assert stored_day(spark, later, "no_such_split", config) is None
    assert stored_day(spark, ds - timedelta(days=1), "no_such_split", config) is None
    # Scoring on the later day reads that matrix over its own catalogue.
    n = len(ids)
    catalogue = ItemTable(
        item_ids=torch.from_numpy(np.r_[0, ids]),
        genres=torch.zeros(n + 1, 1),
        year=torch.zeros(n + 1),
        content=torch.zeros(n + 1, 0),
        is_cold=torch.zeros(n + 1, dtype=torch.bool),
        log_count=torch.zeros(n + 1),
    )
    served = serving_covisit_matrix(spark, later, SPLIT, catalogue, config)
    np.testing.assert_allclose(served.toarray(), want.toarray(), atol=1e-6)

    # Recent items: the last `last` train + validation events, as the offline sequences.
    roles_kept = events[np.isin(np.asarray(roles), ["train", "validation"])]
    seqs = _sequences(roles_kept, index_of)
    users = [1, 2, 3, 31, 999]
    got = collect_recent_items(spark, ds, SPLIT, ("train", "validation"), users, config.last)
    want_recent = {u: [int(ids[i - 1]) for i in seqs[u][-5:]] for u in users if seqs.get(u)}
    assert got == want_recent
    assert collect_recent_items(spark, ds, SPLIT, ("train",), [], 5) == {}
    every = recent_items_spark(spark, ds, SPLIT, ("train", "validation"), None, 5)
    assert every.count() == len(seqs)
    assert every.agg(F.max(F.size(RECENT_ITEM_IDS))).first()[0] == 5  # type: ignore[index]
    with pytest.raises(ValueError, match=r"^last:"):
        recent_items_spark(spark, ds, SPLIT, ("train",), None, 0)
