"""Fused scoring of one Arrow batch (no Spark) equals the two-step references composed:
retrieval per source, merge, ranking, popularity."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from recsys.models.ranker import InteractionRanker, RankerConfig
from recsys.models.sasrec import SASRecConfig, SequentialRecommender
from recsys.scoring.embeddings import history_matrix
from recsys.scoring.fused import (
    HAS_EMBEDDING,
    HAS_FEATURES,
    REC_SET_CODE,
    SEQUENCE_ALL,
    SEQUENCE_POSITIVES,
    WARM,
    FusedItems,
    FusedModels,
    candidate_batch,
    merge_sources,
    score_batch,
)
from recsys.scoring.rank_inputs import uniform_sequence_vector
from recsys.scoring.ranking import BECAUSE, RECENT_ITEMS, SEQUENCE_VECTOR, SOURCES, rank_local
from recsys.scoring.retrieval import SEEN, retrieve_local
from recsys.scoring.sequential import sasrec_topk
from recsys.training.covisit import CovisitConfig, covisit_matrix
from recsys.training.inference import sasrec_item_vectors, sasrec_user_vectors
from recsys.warehouse.tables import Col
from tests.helpers.scoring import random_item_arrays

CPU = torch.device("cpu")
N_ITEMS, DIM, N_GENRES, DENSE, K, N = 40, 6, 5, 3, 8, 5
FLOATS = pa.list_(pa.float32())
IDS = pa.list_(pa.int64())


def test_merge_sources_keeps_best_rank_then_source() -> None:
    rows = np.array([0, 0, 0, 1, 1, 0])
    items = np.array([7, 7, 9, 7, 8, 8])
    ranks = np.array([2, 2, 1, 1, 3, 1])
    sources = np.array([1, 0, 1, 2, 3, 3])
    scores = np.arange(6, dtype=np.float32)
    r, i, k, s, v = merge_sources(rows, items, ranks, sources, scores)
    # Row 0: item 7 twice at rank 2 -> source 0 (earlier in SOURCES) wins.
    assert list(zip(r, i, k, s, v, strict=True)) == [
        (0, 9, 1, 1, 2.0),
        (0, 8, 1, 3, 5.0),
        (0, 7, 2, 0, 1.0),
        (1, 7, 1, 2, 3.0),
        (1, 8, 3, 3, 4.0),
    ]
    with pytest.raises(ValueError, match="one length"):
        merge_sources(rows, items[:2], ranks, sources, scores)


def _setup() -> tuple[FusedModels, pa.RecordBatch, dict[str, Any]]:
    rng = np.random.default_rng(3)
    torch.manual_seed(0)
    item_ids = np.sort(rng.choice(500, N_ITEMS, replace=False)) + 1
    sasrec = SequentialRecommender(
        SASRecConfig(n_items=N_ITEMS, max_len=6, d_model=8, dropout=0.0)
    ).eval()
    emb = rng.normal(size=(N_ITEMS, DIM)).astype(np.float32)
    seqs_for_cov = {u: rng.integers(1, N_ITEMS + 1, size=10).tolist() for u in range(15)}
    cov_config = CovisitConfig(window=3, top_n=5, last=3)
    arrays = random_item_arrays(
        rng,
        item_ids,
        emb,
        N_GENRES,
        sequence=sasrec_item_vectors(sasrec)[1:].numpy(),
        covisit_matrix=covisit_matrix(seqs_for_cov, N_ITEMS, cov_config),
        covisit_config=cov_config,
    )
    config = RankerConfig(
        n_user_buckets=64,
        n_item_buckets=64,
        n_dense=DENSE + 6,
        deep_dims=(16,),
        linear_columns=(DENSE + 4, DENSE + 5),
    )
    ranker = InteractionRanker(config).eval()
    assert ranker.linear_weight is not None
    torch.nn.init.constant_(ranker.linear_weight, 2.0)
    fb_ids = np.sort(rng.choice(item_ids, 15, replace=False))
    pop = rng.integers(0, 50, N_ITEMS).astype(np.float32)
    items = FusedItems(
        arrays=arrays,
        fallback_ids=fb_ids,
        fallback_scores=rng.random((15, 1)).astype(np.float32),
        fallback_source=SOURCES.index("trending"),
        popularity_ids=item_ids,
        popularity_scores=pop[:, None],
        popularity_peak=float(pop.max()),
    )
    models = FusedModels.load(
        items,
        ranker,
        CPU,
        retriever=sasrec,
        retriever_column=SEQUENCE_POSITIVES,
        sequencer=sasrec,
        sequencer_column=SEQUENCE_ALL,
    )
    # 14 users: warm with features; features but no history (cold); no features at all (cold,
    # some with events); one warm user without a two-tower vector.
    n_users = 14
    user_ids = np.arange(101, 101 + n_users)
    has_f = np.array([True] * 10 + [False] * 4)
    has_e = has_f.copy()
    has_e[9] = False
    history = [rng.choice(item_ids, int(rng.integers(1, 6))).tolist() for _ in range(n_users)]
    for r in (7, 8):  # features, empty history
        history[r] = []
    warm = has_f & np.array([len(h) > 0 for h in history])
    seq_pos = [rng.integers(1, N_ITEMS + 1, int(rng.integers(0, 9))).tolist() for _ in user_ids]
    seq_all = [s + rng.integers(1, N_ITEMS + 1, size=2).tolist() for s in seq_pos]
    seen = [rng.choice(item_ids, int(rng.integers(0, 30)), False).tolist() for _ in user_ids]
    seen[3] = [int(i) for i in item_ids[:-3]]  # fewer than K unseen items
    feats = has_f & has_e
    dense = [
        rng.normal(size=DENSE).astype(np.float32) if feats[r] else np.zeros(DENSE, np.float32)
        for r in range(n_users)
    ]
    aff = [
        rng.random(N_GENRES).astype(np.float32) if feats[r] else np.zeros(N_GENRES, np.float32)
        for r in range(n_users)
    ]
    uemb = [
        rng.normal(size=DIM).astype(np.float32) if feats[r] else np.zeros(DIM, np.float32)
        for r in range(n_users)
    ]
    hist_in = [h if feats[r] else [] for r, h in enumerate(history)]
    batch = pa.RecordBatch.from_pydict(
        {
            Col.USER_ID: pa.array(user_ids, pa.int64()),
            WARM: pa.array(warm),
            HAS_FEATURES: pa.array(feats),
            HAS_EMBEDDING: pa.array(has_e),
            Col.DENSE: pa.array([d.tolist() for d in dense], FLOATS),
            Col.GENRE_AFFINITY: pa.array([a.tolist() for a in aff], FLOATS),
            Col.EMBEDDING: pa.array([e.tolist() for e in uemb], FLOATS),
            Col.HISTORY: pa.array(hist_in, IDS),
            SEEN: pa.array(seen, IDS),
            SEQUENCE_POSITIVES: pa.array(seq_pos, IDS),
            SEQUENCE_ALL: pa.array(seq_all, IDS),
        }
    )
    ctx = {
        "user_ids": user_ids,
        "warm": warm,
        "feats": feats,
        "has_e": has_e,
        "seen": seen,
        "seq_pos": seq_pos,
        "seq_all": seq_all,
        "dense": dense,
        "aff": aff,
        "uemb": uemb,
        "hist": hist_in,
        "sasrec": sasrec,
        "ranker": ranker,
    }
    return models, batch, ctx


def _reference_candidates(models: FusedModels, c: dict[str, Any]) -> pd.DataFrame:
    """What ``jobs.score retrieve`` writes: each source's top K, merged by the Spark window's
    rule (best rank, then source order)."""
    items = models.items
    ids = items.arrays.item_ids
    seen = pd.DataFrame(
        [(int(u), int(i)) for u, s in zip(c["user_ids"], c["seen"], strict=True) for i in s],
        columns=[Col.USER_ID, Col.ITEM_ID],
    )
    parts = []
    tt = c["warm"] & c["has_e"]
    tt_cands = retrieve_local(
        np.stack(c["uemb"])[tt], c["user_ids"][tt], items.arrays.embedding, ids, K, seen, CPU
    )
    parts.append(tt_cands.assign(**{Col.SOURCE: "two_tower"}))
    lengths = np.array([len(s) for s in c["seq_pos"]])
    at = np.flatnonzero(c["warm"] & (lengths > 0))
    seqs = history_matrix(pa.array([c["seq_pos"][r] for r in at], IDS), 6)
    seen_rows = np.concatenate([np.full(len(c["seen"][r]), j) for j, r in enumerate(at)])
    seen_ids = np.concatenate([np.asarray(c["seen"][r], np.int64) for r in at])
    top = sasrec_topk(c["sasrec"], seqs, ids, K, seen_rows.astype(np.int64), seen_ids, CPU)
    parts.append(
        pd.DataFrame(
            {
                Col.USER_ID: c["user_ids"][at][top.rows],
                Col.ITEM_ID: ids[top.cols],
                Col.RETRIEVAL_SCORE: top.scores,
                Col.CANDIDATE_RANK: top.ranks,
                Col.SOURCE: "sasrec",
            }
        )
    )
    cold = ~c["warm"]
    fb = retrieve_local(
        np.ones((int(cold.sum()), 1)),
        c["user_ids"][cold],
        items.fallback_scores,
        items.fallback_ids,
        K,
        seen,
        CPU,
    )
    parts.append(fb.assign(**{Col.SOURCE: "trending"}))
    cands = pd.concat(parts, ignore_index=True)
    cands["_p"] = cands[Col.SOURCE].map(SOURCES.index)
    cands = cands.sort_values([Col.USER_ID, Col.ITEM_ID, Col.CANDIDATE_RANK, "_p"])
    return cands.drop_duplicates([Col.USER_ID, Col.ITEM_ID]).drop(columns="_p")


def test_fused_batch_equals_two_step_references() -> None:
    models, batch, c = _setup()
    arrays = models.items.arrays
    cands = _reference_candidates(models, c)
    assert set(cands[Col.SOURCE]) == {"two_tower", "sasrec", "trending"}
    assert cands.duplicated([Col.USER_ID, Col.ITEM_ID]).sum() == 0

    got_c = candidate_batch(batch, models, K).to_pandas()
    got_c[Col.SOURCE] = np.asarray(SOURCES)[got_c[Col.SOURCE]]
    keys = [Col.USER_ID, Col.ITEM_ID]
    want_c = cands.sort_values(keys).reset_index(drop=True)
    got_c = got_c.sort_values(keys).reset_index(drop=True)
    for col in (Col.USER_ID, Col.ITEM_ID, Col.CANDIDATE_RANK, Col.SOURCE):
        assert got_c[col].tolist() == want_c[col].tolist(), col
    np.testing.assert_allclose(got_c[Col.RETRIEVAL_SCORE], want_c[Col.RETRIEVAL_SCORE], atol=1e-5)

    # Ranking as rank_spark is fed: features, SASRec vector and recent items of the users with
    # features; the others score with zeros and the uniform vector.
    feats = c["feats"]
    rows = np.flatnonzero(feats)
    seq_all = c["seq_all"]
    vectors = [
        sasrec_user_vectors(
            c["sasrec"], torch.from_numpy(history_matrix(pa.array([seq_all[r]], IDS), 6))
        )[0].numpy()
        if len(seq_all[r])
        else uniform_sequence_vector(arrays)
        for r in rows
    ]
    users = pd.DataFrame(
        {
            Col.USER_ID: c["user_ids"][rows],
            Col.DENSE: [c["dense"][r] for r in rows],
            Col.GENRE_AFFINITY: [c["aff"][r] for r in rows],
            Col.EMBEDDING: [c["uemb"][r] for r in rows],
            Col.HISTORY: [c["hist"][r] for r in rows],
            SEQUENCE_VECTOR: vectors,
            RECENT_ITEMS: [seq_all[r] for r in rows],
        }
    )
    ranked = rank_local(c["ranker"], cands, users, arrays, N, device=CPU)
    pop_users = np.unique(cands[Col.USER_ID])
    seen = pd.DataFrame(
        [(int(u), int(i)) for u, s in zip(c["user_ids"], c["seen"], strict=True) for i in s],
        columns=[Col.USER_ID, Col.ITEM_ID],
    )
    pop = retrieve_local(
        np.ones((len(pop_users), 1)),
        pop_users,
        models.items.popularity_scores,
        models.items.popularity_ids,
        N,
        seen,
        CPU,
    )
    got = score_batch(batch, models, K, N).to_pandas()
    got[Col.SOURCE] = np.asarray(SOURCES)[got[Col.SOURCE]]
    model = got[got[REC_SET_CODE] == 0].sort_values([Col.USER_ID, Col.RANK])
    model = model.reset_index(drop=True)
    assert len(model) == len(ranked) > 0
    for col in (Col.USER_ID, Col.RANK, Col.ITEM_ID, Col.SOURCE, BECAUSE):
        assert model[col].tolist() == ranked[col].tolist(), col
    np.testing.assert_allclose(model[Col.SCORE], ranked[Col.SCORE], atol=1e-5)
    popular = got[got[REC_SET_CODE] == 1].sort_values([Col.USER_ID, Col.RANK])
    popular = popular.reset_index(drop=True)
    assert popular[Col.USER_ID].tolist() == pop[Col.USER_ID].tolist()
    assert popular[Col.ITEM_ID].tolist() == pop[Col.ITEM_ID].tolist()
    assert popular[Col.RANK].tolist() == pop[Col.CANDIDATE_RANK].tolist()
    want_pop = pop[Col.RETRIEVAL_SCORE].to_numpy(np.float64) / models.items.popularity_peak
    np.testing.assert_allclose(popular[Col.SCORE], want_pop.astype(np.float32), rtol=1e-6)
    assert set(popular[Col.SOURCE]) == {"popular_genre"}
    assert (popular[BECAUSE] == 0).all()
    # Every user got candidates here, so every user has both sets.
    assert set(model[Col.USER_ID]) == set(popular[Col.USER_ID]) == set(c["user_ids"])


def test_fused_models_refuse_mismatched_inputs() -> None:
    models, _, c = _setup()
    with pytest.raises(ValueError, match="retriever_column"):
        FusedModels.load(models.items, c["ranker"], CPU, retriever=c["sasrec"])
    with pytest.raises(ValueError, match="sequencer"):
        FusedModels.load(models.items, c["ranker"], CPU)  # the arrays carry SASRec vectors
    with pytest.raises(ValueError, match="fallback_scores"):
        FusedItems(
            arrays=models.items.arrays,
            fallback_ids=np.array([1, 2]),
            fallback_scores=np.ones((3, 1), np.float32),
            fallback_source=2,
            popularity_ids=np.array([1]),
            popularity_scores=np.ones((1, 1), np.float32),
            popularity_peak=1.0,
        )
    _, batch, _ = _setup()
    with pytest.raises(ValueError, match="n <= k"):
        score_batch(batch, models, 3, 4)


def test_sasrec_topk_hands_back_the_user_vectors_of_its_forward_pass() -> None:
    _, _, c = _setup()
    model = c["sasrec"]
    seqs = history_matrix(pa.array([s for s in c["seq_pos"] if s], IDS), 6)
    ids = np.arange(1, N_ITEMS + 1)
    vectors = np.full((len(seqs), int(model.item_emb.weight.shape[1]) + 1), np.nan, np.float32)
    with_vectors = sasrec_topk(model, seqs, ids, K, None, None, CPU, user_vectors=vectors)
    plain = sasrec_topk(model, seqs, ids, K, None, None, CPU)
    assert with_vectors.cols.tolist() == plain.cols.tolist()
    want = sasrec_user_vectors(model, torch.from_numpy(seqs.astype(np.int64))).numpy()
    np.testing.assert_allclose(vectors, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="user_vectors"):
        sasrec_topk(model, seqs, ids, K, None, None, CPU, user_vectors=vectors[:1])


def test_one_sasrec_for_retrieval_and_ranking_runs_once_and_scores_the_same() -> None:
    """The retriever and the sequencer one model on one column: the retrieval's forward pass
    serves the ranker's sequence feature (one transformer pass per user instead of two), and
    the lists equal those of two separate copies of the model (no sharing)."""
    models, batch, c = _setup()

    def with_sequencer(sequencer: SequentialRecommender) -> FusedModels:
        """The SASRec retriever on the positives with ``sequencer`` on the same column."""
        return FusedModels.load(
            models.items,
            c["ranker"],
            CPU,
            retriever=c["sasrec"],
            retriever_column=SEQUENCE_POSITIVES,
            sequencer=sequencer,
            sequencer_column=SEQUENCE_POSITIVES,
        )

    shared = with_sequencer(c["sasrec"])
    copy = SequentialRecommender(c["sasrec"].config)
    copy.load_state_dict(c["sasrec"].state_dict())
    separate = with_sequencer(copy)
    model = shared.retriever
    assert model is not None
    # Every transformer pass (the full forward or the representation's) starts by embedding.
    embed, rows_forwarded = model._embed, []

    def counting(seq: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        rows_forwarded.append(int(seq.shape[0]))
        return embed(seq, *args, **kwargs)

    model._embed = counting  # type: ignore[method-assign]
    got = score_batch(batch, shared, K, N).to_pandas()
    model._embed = embed  # type: ignore[method-assign]
    want = score_batch(batch, separate, K, N).to_pandas()
    # Each user with events runs through the transformer once: the warm ones for retrieval
    # (their vectors reused by the ranker), the cold ones with features only for the ranker.
    events = np.array([len(s) > 0 for s in c["seq_pos"]])
    retrieved = c["warm"] & events
    assert sum(rows_forwarded) == int(retrieved.sum() + (c["feats"] & events & ~retrieved).sum())
    keys = [REC_SET_CODE, Col.USER_ID, Col.RANK]
    got, want = (
        got.sort_values(keys).reset_index(drop=True),
        want.sort_values(keys).reset_index(drop=True),
    )
    for col in (Col.USER_ID, Col.RANK, Col.ITEM_ID, Col.SOURCE, BECAUSE, REC_SET_CODE):
        assert got[col].tolist() == want[col].tolist(), col
    np.testing.assert_allclose(got[Col.SCORE], want[Col.SCORE], atol=1e-5)
