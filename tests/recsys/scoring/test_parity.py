"""Parity: Spark-scored output equals single-process scoring of the same model and inputs."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from pyspark.sql import types as T

from recsys.models.ranker import InteractionRanker, RankerConfig
from recsys.models.sasrec import SASRecConfig, SequentialRecommender
from recsys.scoring.ranking import (
    RECENT_ITEMS,
    SEQUENCE_VECTOR,
    SOURCES,
    rank_input,
    rank_local,
    rank_spark,
)
from recsys.scoring.retrieval import retrieve_local, retrieve_spark
from recsys.scoring.runtime import ModelPayload
from recsys.scoring.sequential import SEQUENCE, sasrec_vectors_spark
from recsys.training.covisit import CovisitConfig, covisit_matrix
from recsys.training.inference import sasrec_user_vectors
from recsys.training.loops import config_dict
from recsys.warehouse.tables import Col
from tests.helpers.scoring import random_item_arrays

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

CPU = torch.device("cpu")
FLOATS = T.ArrayType(T.FloatType(), False)


def _vectors(spark: SparkSession, ids: Any, vecs: Any, key: str) -> object:
    schema = T.StructType(
        [T.StructField(key, T.LongType(), False), T.StructField(Col.EMBEDDING, FLOATS, False)]
    )
    rows = [(int(i), [float(x) for x in v]) for i, v in zip(ids, vecs, strict=True)]
    return spark.createDataFrame(rows, schema).repartition(3)


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def test_retrieval_spark_equals_local(spark: SparkSession) -> None:
    rng = np.random.default_rng(0)
    n_users, n_items, dim, k = 120, 90, 8, 25
    user_ids = rng.choice(10_000, n_users, replace=False)
    item_ids = rng.choice(10_000, n_items, replace=False)
    uv = rng.normal(size=(n_users, dim)).astype(np.float32)
    iv = rng.normal(size=(n_items, dim)).astype(np.float32)
    iv /= np.linalg.norm(iv, axis=1, keepdims=True)
    seen = pd.DataFrame(
        {
            Col.USER_ID: np.repeat(user_ids, 70),
            Col.ITEM_ID: np.concatenate(
                [rng.choice(item_ids, 70, replace=False) for _ in user_ids]
            ),
        }
    )
    seen = seen[seen.index % 3 != 0]  # some users keep fewer than k unseen items, some more
    local = retrieve_local(uv, user_ids, iv, item_ids, k, seen, device=CPU)
    out = retrieve_spark(
        _vectors(spark, user_ids, uv, Col.USER_ID),  # type: ignore[arg-type]
        _vectors(spark, item_ids, iv, Col.ITEM_ID),  # type: ignore[arg-type]
        k,
        spark.createDataFrame(seen),
    ).toPandas()
    keys = [Col.USER_ID, Col.CANDIDATE_RANK]
    got, want = _sorted(out, keys), _sorted(local, keys)
    assert len(got) == len(want) > 0
    assert got[Col.USER_ID].tolist() == want[Col.USER_ID].tolist()
    assert got[Col.ITEM_ID].tolist() == want[Col.ITEM_ID].tolist()
    assert got[Col.CANDIDATE_RANK].tolist() == want[Col.CANDIDATE_RANK].tolist()
    np.testing.assert_allclose(got[Col.RETRIEVAL_SCORE], want[Col.RETRIEVAL_SCORE], atol=1e-5)
    seen_pairs = set(zip(seen[Col.USER_ID], seen[Col.ITEM_ID], strict=True))
    assert not seen_pairs & set(zip(got[Col.USER_ID], got[Col.ITEM_ID], strict=True))


@pytest.mark.parametrize(
    ("with_sequence", "with_covisit"), [(False, False), (True, False), (True, True)]
)
def test_ranking_spark_equals_local(
    spark: SparkSession, with_sequence: bool, with_covisit: bool
) -> None:
    rng = np.random.default_rng(1)
    torch.manual_seed(0)
    n_users, n_items, dim, n_genres, dense_dim, n, seq_dim = 30, 40, 6, 5, 7, 8, 5
    config = RankerConfig(
        n_user_buckets=64,
        n_item_buckets=64,
        n_dense=dense_dim + 4 + int(with_sequence) + int(with_covisit),
        deep_dims=(16,),
        linear_columns=tuple(range(dense_dim + 4, dense_dim + 4 + with_sequence + with_covisit)),
    )
    ranker = InteractionRanker(config).eval()
    if ranker.linear_weight is not None:
        torch.nn.init.constant_(ranker.linear_weight, 2.0)
    # The worker caches models by version: one per parametrisation.
    version = f"v-test-{with_sequence}-{with_covisit}"
    payload = ModelPayload.from_module("ranker", version, config_dict(config), ranker)
    item_ids = np.sort(rng.choice(1000, n_items, replace=False)) + 1
    emb = rng.normal(size=(n_items, dim)).astype(np.float32)
    seq_items = np.hstack([rng.normal(size=(n_items, seq_dim - 1)), np.ones((n_items, 1))]).astype(
        np.float32
    )
    items = random_item_arrays(
        rng, item_ids, emb, n_genres, sequence=seq_items if with_sequence else None
    )
    if with_covisit:  # the co-visitation matrix is drawn after the item arrays
        items = replace(
            items,
            covisit_matrix=_random_covisit(rng, n_items),
            covisit_config=CovisitConfig(last=3),
        )
    user_ids = np.arange(1, n_users + 1)
    cands = pd.DataFrame(
        [
            (int(u), int(i), SOURCES[int(rng.integers(0, 4))])
            for u in user_ids
            for i in rng.choice(item_ids, int(rng.integers(3, 20)), replace=False)
        ],
        columns=[Col.USER_ID, Col.ITEM_ID, Col.SOURCE],
    )
    with_feats = user_ids[user_ids % 5 != 0]  # every 5th user has no features (cold)
    users = pd.DataFrame(
        {
            Col.USER_ID: with_feats,
            Col.DENSE: [rng.normal(size=dense_dim).astype(np.float32).tolist() for _ in with_feats],
            Col.GENRE_AFFINITY: [
                rng.random(n_genres).astype(np.float32).tolist() for _ in with_feats
            ],
            Col.EMBEDDING: [rng.normal(size=dim).astype(np.float32).tolist() for _ in with_feats],
            Col.HISTORY: [rng.choice(item_ids, 4).tolist() for _ in with_feats],
        }
    )
    fields = [
        T.StructField(Col.USER_ID, T.LongType(), False),
        T.StructField(Col.DENSE, FLOATS, False),
        T.StructField(Col.GENRE_AFFINITY, FLOATS, False),
        T.StructField(Col.EMBEDDING, FLOATS, False),
        T.StructField(Col.HISTORY, T.ArrayType(T.LongType(), False), False),
    ]
    if with_sequence:
        users[SEQUENCE_VECTOR] = [
            rng.normal(size=seq_dim).astype(np.float32).tolist() for _ in with_feats
        ]
        fields.append(T.StructField(SEQUENCE_VECTOR, FLOATS, False))
        if with_covisit:
            users[RECENT_ITEMS] = [
                rng.integers(1, n_items + 1, size=int(rng.integers(0, 6))).tolist()
                for _ in with_feats
            ]
            fields.append(T.StructField(RECENT_ITEMS, T.ArrayType(T.LongType(), False), False))
            with pytest.raises(ValueError, match=RECENT_ITEMS):
                rank_local(ranker, cands, users.drop(columns=RECENT_ITEMS), items, n, device=CPU)
            no_votes = users.copy()
            no_votes[RECENT_ITEMS] = [[] for _ in with_feats]
            quiet = rank_local(ranker, cands, no_votes, items, n, device=CPU)
            loud = rank_local(ranker, cands, users, items, n, device=CPU)
            assert not np.allclose(quiet[Col.SCORE], loud[Col.SCORE])
        with pytest.raises(ValueError, match=SEQUENCE_VECTOR):
            rank_local(ranker, cands, users.drop(columns=SEQUENCE_VECTOR), items, n, device=CPU)
        # The SASRec input counts: other user vectors, other scores.
        other = users.copy()
        other[SEQUENCE_VECTOR] = [[0.0] * seq_dim] * len(users)
        moved = rank_local(ranker, cands, other, items, n, device=CPU)
        base = rank_local(ranker, cands, users, items, n, device=CPU)
        assert not np.allclose(moved[Col.SCORE], base[Col.SCORE])
    local = rank_local(ranker, cands, users, items, n, device=CPU)
    users_schema = T.StructType(fields)
    users_df = spark.createDataFrame(
        [tuple(r) for r in users.itertuples(index=False)], users_schema
    )
    out = rank_spark(spark.createDataFrame(cands), users_df, items, payload, n).toPandas()
    keys = [Col.USER_ID, Col.RANK]
    got, want = _sorted(out, keys), _sorted(local, keys)
    assert len(got) == len(want) > 0
    for col in (Col.USER_ID, Col.RANK, Col.ITEM_ID, Col.SOURCE, "because_item_id"):
        assert got[col].tolist() == want[col].tolist(), col
    np.testing.assert_allclose(got[Col.SCORE], want[Col.SCORE], atol=1e-5)
    assert ((got[Col.SCORE] >= 0) & (got[Col.SCORE] <= 1)).all()
    assert got.groupby(Col.USER_ID).size().max() <= n
    # COLD_SLOTS: a user offered a cold candidate gets at least one cold item in the list.
    cold_ids = set(item_ids[items.is_cold].tolist())
    offered = set(cands.loc[cands[Col.ITEM_ID].isin(cold_ids), Col.USER_ID])
    shown = set(got.loc[got[Col.ITEM_ID].isin(cold_ids), Col.USER_ID])
    assert offered
    assert offered == shown


def test_rank_input_packs_candidates_and_rejects_unknown_sources(spark: SparkSession) -> None:
    big = (1 << 40) + 3
    cands = spark.createDataFrame(
        [(1, big, SOURCES[3]), (1, 5, SOURCES[0]), (2, 7, SOURCES[1])],
        [Col.USER_ID, Col.ITEM_ID, Col.SOURCE],
    )
    users = spark.createDataFrame(
        [(1, [0.5], [0.25], [1.0], [5])],
        f"{Col.USER_ID} BIGINT, {Col.DENSE} ARRAY<FLOAT>, {Col.GENRE_AFFINITY} ARRAY<FLOAT>, "
        f"{Col.EMBEDDING} ARRAY<FLOAT>, {Col.HISTORY} ARRAY<BIGINT>",
    )
    rows = {r[Col.USER_ID]: r for r in rank_input(cands, users, 1, 1, 1, 2).collect()}
    decoded = {u: sorted((p >> 2, p & 3) for p in r["_cands"]) for u, r in rows.items()}
    assert decoded == {1: [(5, 0), (big, 3)], 2: [(7, 1)]}
    assert rows[1]["_has_features"]
    assert not rows[2]["_has_features"]
    assert list(rows[2][Col.DENSE]) == [0.0]
    assert list(rows[2][Col.HISTORY]) == []
    bad = spark.createDataFrame([(1, 5, "editorial")], [Col.USER_ID, Col.ITEM_ID, Col.SOURCE])
    with pytest.raises(Exception, match="not one of"):
        rank_input(bad, users, 1, 1, 1, 2).collect()


def _random_covisit(rng: np.random.Generator, n_items: int) -> sp.csr_matrix:
    seqs = {u: rng.integers(1, n_items + 1, size=12).tolist() for u in range(20)}
    return covisit_matrix(seqs, n_items, CovisitConfig(window=3, top_n=5))


def test_sasrec_vectors_spark_equal_local(spark: SparkSession) -> None:
    torch.manual_seed(0)
    config = SASRecConfig(n_items=20, max_len=6, d_model=8, dropout=0.0)
    model = SequentialRecommender(config).eval()
    payload = ModelPayload.from_module("sasrec", "v-seq", config_dict(config), model)
    rows = [(1, [3, 1, 4, 1, 5, 9, 2, 6]), (2, [7]), (3, [])]
    schema = T.StructType(
        [
            T.StructField(Col.USER_ID, T.LongType(), False),
            T.StructField(SEQUENCE, T.ArrayType(T.LongType(), False), False),
        ]
    )
    got = (
        sasrec_vectors_spark(spark.createDataFrame(rows, schema).repartition(2), payload)
        .toPandas()
        .sort_values(Col.USER_ID)
    )
    seq = torch.tensor([[4, 1, 5, 9, 2, 6], [0, 0, 0, 0, 0, 7], [0] * 6])
    want = sasrec_user_vectors(model, seq).numpy()
    assert got[Col.USER_ID].tolist() == [1, 2, 3]
    np.testing.assert_allclose(np.stack(got[SEQUENCE_VECTOR].to_list()), want, atol=1e-5)
    assert want[2, -1] == pytest.approx(-np.log(20), abs=1e-5)  # empty: uniform
