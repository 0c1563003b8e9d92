"""Ranking: the InteractionRanker re-scores each user's candidates; top-N with an explanation item.

Public API (also used by ``bench/``):

- :func:`rank_local`: the single-process reference (pandas in, pandas out).
- :func:`rank_spark`: the same kernel in Spark's Python workers through ``mapInArrow``.

Inputs of both: candidates ``(user_id, item_id, source)``, per-user features ``(user_id, dense,
genre_affinity, embedding, history)`` (users without a row score with zero features and user id
0, as offline), an :class:`ItemArrays` bundle (broadcast), a ranker :class:`ModelPayload`, and
N. The ranker's dense input is :func:`recsys.training.inference.ranker_dense` with the two-tower
cosine of user and item embeddings as the retrieval feature, exactly as in training and offline
evaluation, whatever the candidate's source. A ranker trained with SASRec also reads SASRec's
next-item log-probability: the dot product of the user's :data:`SEQUENCE_VECTOR` and the item's
``ItemArrays.sequence`` row (:func:`recsys.training.inference.sasrec_user_vectors`), both given
or neither; one trained with co-visitation reads :func:`recsys.training.covisit.pair_scores` of
the user's :data:`RECENT_ITEMS` against ``ItemArrays.covisit_matrix`` (each user's vote
weights times the truncated matrix, per Arrow batch).

Output: ``user_id, rank (1..N), item_id, score (sigmoid probability, float32), source,
because_item_id`` where ``because_item_id`` is the user's history item with the highest cosine to
the recommended item (ties: the most recent), 0 when the user has no known history item. Order
within a user: ranker logit descending, ties by lower item id.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
import torch
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys.kernels import (
    NDArray,
    explain_items,
    group_ranks,
    list_matrix,
    list_parts,
    positions,
    reserve_slots,
)
from recsys.models.device import batch_size_for, pick_device
from recsys.models.ranker import InteractionRanker
from recsys.scoring.embeddings import history_matrix
from recsys.scoring.rank_inputs import (
    ItemArrays,
    UserBatch,
    uniform_sequence_vector,
    user_dense_dim,
)
from recsys.scoring.runtime import (
    ModelPayload,
    cached,
    shuffle_slots,
    worker_model,
    worker_threads,
)
from recsys.training.covisit import CovisitConfig, recent_weights
from recsys.training.data import ItemTable, UserTable
from recsys.training.inference import CovisitScores, SequenceScores, ranker_dense
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.broadcast import Broadcast
    from pyspark.sql import DataFrame

#: Candidate sources, in the order of their integer codes inside the kernel.
SOURCES: Final = ("two_tower", "sasrec", "trending", "popular_genre")
#: Low bits of a packed candidate that hold its source code (index in :data:`SOURCES`).
_SOURCE_BITS: Final = max(1, (len(SOURCES) - 1).bit_length())
#: Output column: the history item that explains a recommendation (0 = none).
BECAUSE: Final = "because_item_id"
#: History items compared for an explanation (most recent kept).
EXPLAIN_HISTORY: Final = 50
_CANDS: Final = "_cands"
#: Places per user list kept for cold items (never interacted with), so that new items are
#: shown and can earn data: a ranker trained on what users consume next learns to bury them.
COLD_SLOTS: Final = 1
_HAS_FEATURES: Final = "_has_features"
#: Optional users column: SASRec user vectors ``[h, -log Z]`` (ARRAY<FLOAT>, width d + 1).
SEQUENCE_VECTOR: Final = "sequence_vector"
#: Optional users column: the user's events as item indices, oldest first (ARRAY<BIGINT>).
RECENT_ITEMS: Final = "recent_items"

RANKED_SCHEMA: Final = T.StructType(
    [
        T.StructField(Col.USER_ID, T.LongType(), False),
        T.StructField(Col.RANK, T.IntegerType(), False),
        T.StructField(Col.ITEM_ID, T.LongType(), False),
        T.StructField(Col.SCORE, T.FloatType(), False),
        T.StructField(Col.SOURCE, T.IntegerType(), False),
        T.StructField(BECAUSE, T.LongType(), False),
    ]
)


def rank_kernel(
    ranker: InteractionRanker,
    items: ItemTable,
    item_ids: NDArray,
    item_emb: torch.Tensor,
    batch: UserBatch,
    n: int,
    device: torch.device,
    cold_slots: int = COLD_SLOTS,
    item_seq: torch.Tensor | None = None,
    covisit: tuple[sp.csr_matrix, CovisitConfig] | None = None,
) -> dict[str, NDArray]:
    """Score, cut to top ``n`` and explain one batch; returns the output columns as arrays.

    At least ``cold_slots`` of each user's ``n`` places go to cold items (no train interactions)
    when the candidates hold some: see :func:`recsys.kernels.reserve_slots`.
    ``item_seq`` (``ItemArrays.padded_sequence``) and ``batch.sequence`` come together, and so
    do ``covisit`` (``ItemArrays.covisit_matrix`` and its config) and ``batch.recent``.
    """
    if (item_seq is None) != (batch.sequence is None):
        raise ValueError("item_seq: SASRec item and user vectors must be given together")
    if (covisit is None) != (batch.recent is None):
        raise ValueError("covisit: the co-visitation matrix and recent items come together")
    pos = positions(item_ids, batch.cand_items)
    known = pos >= 0
    rows_np, idx_np = batch.cand_rows[known], pos[known] + 1
    src_np = batch.cand_sources[known]
    rows, idx = torch.from_numpy(rows_np), torch.from_numpy(idx_np)
    b = len(batch.user_ids)
    users = UserTable(
        rows={},
        user_ids=torch.from_numpy(batch.feature_user_ids.astype(np.int64)),
        dense=torch.from_numpy(batch.dense),
        history=torch.zeros(b, 0, dtype=torch.long),
        affinity=torch.from_numpy(batch.affinity),
        n_train=torch.zeros(b, dtype=torch.long),
    )
    uemb = torch.from_numpy(batch.embedding)
    # The offline scorers, so serving's SASRec and co-visitation inputs are those of training.
    seq_scores = None
    if batch.sequence is not None and item_seq is not None:
        seq_scores = SequenceScores(torch.from_numpy(batch.sequence), item_seq)
    cov_scores = None
    if covisit is not None and batch.recent is not None:
        votes = recent_weights(batch.recent, covisit[0].shape[0] - 1, covisit[1])
        cov_scores = CovisitScores(votes, covisit[0])
    size = batch_size_for("ranker", device, "score")
    logits = []
    with torch.no_grad():
        for s in range(0, len(rows), size):
            r, i = rows[s : s + size], idx[s : s + size]
            retrieval = (uemb[r] * item_emb[i]).sum(-1)
            seq = None if seq_scores is None else seq_scores.log_prob(r, i)
            cov = None if cov_scores is None else cov_scores.feature(r, i)
            dense = ranker_dense(users, items, r, i, retrieval, seq, cov)
            logits.append(
                ranker(users.user_ids[r].to(device), items.item_ids[i].to(device), dense.to(device))
                .float()
                .cpu()
            )
    logit = torch.cat(logits).numpy() if logits else np.zeros(0, dtype=np.float32)
    raw_items = item_ids[idx_np - 1]
    order = np.lexsort((raw_items, -logit, rows_np))
    cold = items.is_cold[torch.from_numpy(idx_np[order])].numpy()
    keep = order[reserve_slots(rows_np[order], cold, n, cold_slots)]
    ranks = group_ranks(rows_np[keep])
    score = torch.sigmoid(torch.from_numpy(logit[keep])).numpy().astype(np.float32)
    because = explain_items(item_ids, item_emb, batch.history, rows_np[keep], idx_np[keep], n)
    return {
        Col.USER_ID: batch.user_ids[rows_np[keep]],
        Col.RANK: ranks.astype(np.int32),
        Col.ITEM_ID: raw_items[keep],
        Col.SCORE: score,
        Col.SOURCE: src_np[keep].astype(np.int32),
        BECAUSE: because,
    }


def _check_n(n: object) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n: must be an int >= 1, got {n!r}")
    return n


def rank_local(
    ranker: InteractionRanker,
    candidates: pd.DataFrame,
    users: pd.DataFrame,
    items: ItemArrays,
    n: int,
    device: torch.device | None = None,
) -> pd.DataFrame:
    """Single-process ranking (the reference of :func:`rank_spark`).

    Args:
        ranker: The model (eval mode is set here).
        candidates: ``user_id, item_id, source`` (source one of :data:`SOURCES`).
        users: ``user_id, dense, genre_affinity, embedding, history`` (lists per row), and
            :data:`SEQUENCE_VECTOR` when ``items.sequence`` is given; users of ``candidates``
            missing here score with zero features, user id 0 and a uniform SASRec score.
        items: Item-side arrays.
        n: Recommendations per user, >= 1.
        device: Where to score; :func:`pick_device` when None.

    Returns:
        ``user_id, rank, item_id, score, source, because_item_id`` sorted by user and rank.
    """
    n = _check_n(n)
    dev = device or pick_device()
    ranker = ranker.to(dev).eval()
    user_ids = np.unique(candidates[Col.USER_ID].to_numpy(np.int64))
    feats = users.set_index(Col.USER_ID).reindex(user_ids)
    has = feats[Col.DENSE].notna().to_numpy()
    dense_dim = user_dense_dim(int(ranker.config.n_dense), items)
    n_genres, dim = items.genres.shape[1], items.embedding.shape[1]

    def stack(col: str, width: int, default: NDArray | None = None) -> NDArray:
        out = np.zeros((len(user_ids), width), dtype=np.float32)
        if default is not None:
            out[:] = default
        for r, v in enumerate(feats[col].tolist()):
            if has[r]:
                out[r] = np.asarray(v, dtype=np.float32)
        return out

    sequence = None
    if items.sequence is not None:
        if SEQUENCE_VECTOR not in users.columns:
            raise ValueError(f"users: needs a {SEQUENCE_VECTOR!r} column with items.sequence")
        sequence = stack(SEQUENCE_VECTOR, items.sequence_dim, uniform_sequence_vector(items))
    recent = None
    if items.covisit_config is not None:
        if RECENT_ITEMS not in users.columns:
            raise ValueError(f"users: needs a {RECENT_ITEMS!r} column with items.covisit_matrix")
        lists = [list(v) if has[r] else [] for r, v in enumerate(feats[RECENT_ITEMS])]
        recent = history_matrix(pa.array(lists, pa.list_(pa.int64())), items.covisit_config.last)

    hist_col = pa.array([list(v) if has[r] else [] for r, v in enumerate(feats[Col.HISTORY])])
    code = {s: i for i, s in enumerate(SOURCES)}
    cand_src = candidates[Col.SOURCE].map(code)
    if cand_src.isna().any():
        raise ValueError(f"candidates: source must be one of {SOURCES}")
    batch = UserBatch(
        user_ids=user_ids,
        feature_user_ids=np.where(has, user_ids, 0),
        dense=stack(Col.DENSE, dense_dim),
        affinity=stack(Col.GENRE_AFFINITY, n_genres),
        embedding=stack(Col.EMBEDDING, dim),
        history=history_matrix(pa.array(hist_col, pa.list_(pa.int64())), EXPLAIN_HISTORY),
        cand_rows=np.searchsorted(user_ids, candidates[Col.USER_ID].to_numpy(np.int64)),
        cand_items=candidates[Col.ITEM_ID].to_numpy(np.int64),
        cand_sources=cand_src.to_numpy(np.int64),
        sequence=sequence,
        recent=recent,
    )
    out = rank_kernel(
        ranker,
        items.item_table(),
        items.item_ids,
        items.padded_embedding(),
        batch,
        n,
        dev,
        item_seq=items.padded_sequence(),
        covisit=items.covisit(),
    )
    frame = pd.DataFrame(out)
    frame[Col.SOURCE] = np.asarray(SOURCES, dtype=object)[frame[Col.SOURCE].to_numpy()]
    return frame.sort_values([Col.USER_ID, Col.RANK], kind="stable").reset_index(drop=True)


def _rank_batches(
    batches: Iterator[pa.RecordBatch],
    *,
    model_bc: Broadcast[ModelPayload],
    items_bc: Broadcast[ItemArrays],
    key: str,
    items_key: str,
    n: int,
    dense_dim: int,
    threads: int,
) -> Iterator[pa.RecordBatch]:
    model, device = worker_model(model_bc, key, threads)
    arrays = cached(items_key, lambda: items_bc.value)
    table = cached(items_key + "/table", arrays.item_table)
    emb = cached(items_key + "/emb", arrays.padded_embedding)
    item_seq = cached(items_key + "/seq", arrays.padded_sequence)
    n_genres, dim = arrays.genres.shape[1], arrays.embedding.shape[1]
    for rb in batches:
        if rb.num_rows == 0:
            continue
        cand_rows, packed = list_parts(rb.column(_CANDS))
        user_ids = rb.column(Col.USER_ID).to_numpy(zero_copy_only=False).astype(np.int64)
        has = rb.column(_HAS_FEATURES).to_numpy(zero_copy_only=False).astype(bool)
        batch = UserBatch(
            user_ids=user_ids,
            feature_user_ids=np.where(has, user_ids, 0),
            dense=list_matrix(rb.column(Col.DENSE), dense_dim),
            affinity=list_matrix(rb.column(Col.GENRE_AFFINITY), n_genres),
            embedding=list_matrix(rb.column(Col.EMBEDDING), dim),
            history=history_matrix(rb.column(Col.HISTORY), EXPLAIN_HISTORY),
            cand_rows=cand_rows,
            cand_items=packed >> _SOURCE_BITS,
            cand_sources=packed & ((1 << _SOURCE_BITS) - 1),
            sequence=None
            if item_seq is None
            else list_matrix(rb.column(SEQUENCE_VECTOR), arrays.sequence_dim),
            recent=None
            if arrays.covisit_config is None
            else history_matrix(rb.column(RECENT_ITEMS), arrays.covisit_config.last),
        )
        out = rank_kernel(
            model,  # type: ignore[arg-type]
            table,
            arrays.item_ids,
            emb,
            batch,
            n,
            device,
            item_seq=item_seq,
            covisit=arrays.covisit(),
        )
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(out[Col.USER_ID], pa.int64()),
                pa.array(out[Col.RANK], pa.int32()),
                pa.array(out[Col.ITEM_ID], pa.int64()),
                pa.array(out[Col.SCORE], pa.float32()),
                pa.array(out[Col.SOURCE], pa.int32()),
                pa.array(out[BECAUSE], pa.int64()),
            ],
            names=[f.name for f in RANKED_SCHEMA.fields],
        )


def _zeros(width: int) -> Any:
    return F.array_repeat(F.lit(0.0).cast("float"), width)


def rank_input(
    candidates: DataFrame,
    users: DataFrame,
    dense_dim: int,
    n_genres: int,
    dim: int,
    partitions: int,
    sequence_default: NDArray | None = None,
    recent: bool = False,
) -> DataFrame:
    """One row per user of ``candidates`` in ``partitions`` partitions: packed candidates and
    features (zeros when absent); with ``sequence_default`` also :data:`SEQUENCE_VECTOR`
    (that vector when absent), with ``recent`` also :data:`RECENT_ITEMS` (empty when absent)."""
    # One BIGINT per candidate, item_id * 4 + source code: a primitive array through the
    # aggregation and Arrow instead of an array of structs.
    code: Any = F.raise_error(F.concat(F.lit(f"source: not one of {SOURCES}: "), F.col(Col.SOURCE)))
    for i, source in reversed(list(enumerate(SOURCES))):
        code = F.when(F.col(Col.SOURCE) == source, F.lit(i)).otherwise(code)
    cand = F.shiftleft(F.col(Col.ITEM_ID).cast("long"), _SOURCE_BITS) + code.cast("long")
    user = F.col(Col.USER_ID).cast("long").alias(Col.USER_ID)
    grouped = (
        candidates.select(user, cand.alias(_CANDS))
        .repartition(partitions, Col.USER_ID)
        .groupBy(Col.USER_ID)
        .agg(F.collect_list(_CANDS).alias(_CANDS))
    )
    feats = users.select(
        F.col(Col.USER_ID).cast("long").alias(Col.USER_ID),
        Col.DENSE,
        Col.GENRE_AFFINITY,
        Col.EMBEDDING,
        Col.HISTORY,
        *([] if sequence_default is None else [SEQUENCE_VECTOR]),
        *([RECENT_ITEMS] if recent else []),
        F.lit(True).alias(_HAS_FEATURES),
    )
    extra = []
    if sequence_default is not None:
        default = F.array(*[F.lit(float(v)).cast("float") for v in sequence_default])
        extra.append(F.coalesce(F.col(SEQUENCE_VECTOR), default).alias(SEQUENCE_VECTOR))
    if recent:
        empty = F.array().cast("array<bigint>")
        extra.append(F.coalesce(F.col(RECENT_ITEMS), empty).alias(RECENT_ITEMS))
    return grouped.join(feats, Col.USER_ID, "left").select(
        Col.USER_ID,
        _CANDS,
        F.coalesce(F.col(_HAS_FEATURES), F.lit(False)).alias(_HAS_FEATURES),
        F.coalesce(F.col(Col.DENSE), _zeros(dense_dim)).alias(Col.DENSE),
        F.coalesce(F.col(Col.GENRE_AFFINITY), _zeros(n_genres)).alias(Col.GENRE_AFFINITY),
        F.coalesce(F.col(Col.EMBEDDING), _zeros(dim)).alias(Col.EMBEDDING),
        F.coalesce(F.col(Col.HISTORY), F.array().cast("array<bigint>")).alias(Col.HISTORY),
        *extra,
    )


def rank_spark(
    candidates: DataFrame,
    users: DataFrame,
    items: ItemArrays,
    payload: ModelPayload,
    n: int,
    *,
    threads: int | None = None,
) -> DataFrame:
    """Ranked top-``n`` of every user in ``candidates`` in Spark (lazy).

    Args:
        candidates: ``user_id, item_id, source`` (source one of :data:`SOURCES`).
        users: ``user_id, dense ARRAY<FLOAT>, genre_affinity ARRAY<FLOAT>, embedding
            ARRAY<FLOAT>, history ARRAY<BIGINT>``, and :data:`SEQUENCE_VECTOR` ARRAY<FLOAT>
            when ``items.sequence`` is given; one row per user at most.
        items: Item-side arrays (broadcast; ``N x (n_genres + d + d_s + 3)`` floats).
        payload: The ranker.
        n: Recommendations per user, >= 1.
        threads: torch threads per Python worker.

    Returns:
        ``user_id BIGINT, rank INT, item_id BIGINT, score FLOAT, source STRING,
        because_item_id BIGINT`` as :func:`rank_local`; unordered.
    """
    n = _check_n(n)
    if payload.model_name != "ranker":
        raise ValueError(f"payload: expected a ranker model, got {payload.model_name!r}")
    spark = candidates.sparkSession
    dense_dim = user_dense_dim(int(payload.config["n_dense"]), items)
    n_genres, dim = int(items.genres.shape[1]), int(items.embedding.shape[1])
    default = None if items.sequence is None else uniform_sequence_vector(items)
    if default is not None and SEQUENCE_VECTOR not in users.columns:
        raise ValueError(f"users: needs a {SEQUENCE_VECTOR!r} column with items.sequence")
    recent = items.covisit_matrix is not None
    if recent and RECENT_ITEMS not in users.columns:
        raise ValueError(f"users: needs a {RECENT_ITEMS!r} column with items.covisit_matrix")
    frame = rank_input(
        candidates, users, dense_dim, n_genres, dim, shuffle_slots(spark), default, recent
    )
    body = functools.partial(
        _rank_batches,
        model_bc=spark.sparkContext.broadcast(payload),
        items_bc=spark.sparkContext.broadcast(items),
        key=payload.key,
        items_key="rank-items/" + uuid.uuid4().hex,
        n=n,
        dense_dim=dense_dim,
        threads=threads or worker_threads(spark),
    )
    out = frame.mapInArrow(body, RANKED_SCHEMA)
    codes = F.array(*[F.lit(s) for s in SOURCES])
    return out.withColumn(Col.SOURCE, F.element_at(codes, F.col(Col.SOURCE) + 1))
