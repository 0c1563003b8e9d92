"""Fused scoring of one batch of users: retrieval, merge, ranking and the popularity set at once.

The body of the ``mapInArrow`` of :mod:`recsys.scoring.fused_spark`, a pure function of one Arrow
record batch (one row per user) and the loaded models, so it is tested without Spark. Per batch:

1. **Retrieval.** Warm users (a non-empty ``history`` in ``features.user_features``) with a
   two-tower vector get the two-tower top ``k`` (inner products with the item matrix); warm users
   with events get SASRec's top ``k`` when a SASRec retriever is given; every other user gets
   the fallback list's top ``k`` (``serve.trending`` or popularity). Known items (train and
   validation) are excluded everywhere. The kernels are those of :mod:`recsys.scoring.retrieval`
   and :mod:`recsys.scoring.sequential`.
2. **Merge** (:func:`merge_sources`): an item proposed by several sources keeps its best
   candidate rank, ties to the source earlier in :data:`recsys.scoring.ranking.SOURCES`: the
   rows ``serve.candidates`` holds.
3. **Ranking** (:func:`recsys.scoring.ranking.rank_kernel`): the ranker's top ``n`` of the merged
   candidates with one place kept for a cold item and an explanation item, with SASRec's user
   vector and the co-visitation votes of the user's recent events when the ranker reads them.
4. **Popularity set**: the ``n`` most popular unseen items of every user who got candidates
   (score = train interactions / the catalogue's maximum).

Only the ranked rows leave the batch (``serve.ranked``); :func:`candidate_batch` stops after
step 2 and returns the merged candidates instead (the optional ``serve.candidates`` sample).
The result equals the two-step path (``jobs.score retrieve`` then ``rank``) up to float rounding:
``tests/jobs/test_score_fused.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa
import torch

from recsys.kernels import NDArray, TopK, list_matrix, list_parts
from recsys.models.device import batch_size_for
from recsys.models.ranker import InteractionRanker
from recsys.models.sasrec import SequentialRecommender
from recsys.scoring.embeddings import history_matrix
from recsys.scoring.rank_inputs import (
    ItemArrays,
    UserBatch,
    uniform_sequence_vector,
    user_dense_dim,
)
from recsys.scoring.ranking import BECAUSE, EXPLAIN_HISTORY, SOURCES, rank_kernel
from recsys.scoring.retrieval import SEEN, score_users
from recsys.scoring.sequential import sasrec_topk
from recsys.training.data import ItemTable
from recsys.training.inference import sasrec_user_vectors
from recsys.warehouse.tables import Col

#: Input columns besides ``user_id, dense, genre_affinity, embedding, history`` and
#: :data:`SEEN`: flags of a warm user (non-empty history), of a ``features.user_features`` row
#: joined with a two-tower vector (the ranker's features), and of a two-tower vector alone.
WARM: Final = "_warm"
HAS_FEATURES: Final = "_has_features"
HAS_EMBEDDING: Final = "_has_embedding"
#: Event sequences as item indices, oldest first: positive train/validation events, and every
#: train/validation event (the co-visitation votes and a SASRec trained on every interaction).
SEQUENCE_POSITIVES: Final = "_sequence_positives"
SEQUENCE_ALL: Final = "_sequence_all"
#: Output column of :func:`score_batch`: 0 = the model set, 1 = the popularity set.
REC_SET_CODE: Final = "_rec_set"
SOURCE_CODE: Final = {s: i for i, s in enumerate(SOURCES)}
POPULAR_CODE: Final = SOURCE_CODE["popular_genre"]

RANKED_FIELDS: Final = (
    pa.field(Col.USER_ID, pa.int64(), nullable=False),
    pa.field(Col.RANK, pa.int32(), nullable=False),
    pa.field(Col.ITEM_ID, pa.int64(), nullable=False),
    pa.field(Col.SCORE, pa.float32(), nullable=False),
    pa.field(Col.SOURCE, pa.int32(), nullable=False),
    pa.field(BECAUSE, pa.int64(), nullable=False),
    pa.field(REC_SET_CODE, pa.int32(), nullable=False),
)
CANDIDATE_FIELDS: Final = (
    pa.field(Col.USER_ID, pa.int64(), nullable=False),
    pa.field(Col.ITEM_ID, pa.int64(), nullable=False),
    pa.field(Col.RETRIEVAL_SCORE, pa.float32(), nullable=False),
    pa.field(Col.CANDIDATE_RANK, pa.int32(), nullable=False),
    pa.field(Col.SOURCE, pa.int32(), nullable=False),
)


@dataclass(frozen=True)
class FusedItems:
    """Item-side inputs of fused scoring (broadcast once; bounded by the catalogue).

    Attributes:
        arrays: The ranker's item arrays; ``arrays.embedding`` is also the two-tower retrieval
            matrix and ``arrays.item_ids`` the SASRec item order.
        fallback_ids: ``(F,)`` ascending item ids of the cold-start list.
        fallback_scores: ``(F, 1)`` float32 their scores (trending score or train count).
        fallback_source: Code in :data:`SOURCES` of the fallback rows.
        popularity_ids: ``(P,)`` ascending item ids of the popularity set.
        popularity_scores: ``(P, 1)`` float32 their train interaction counts.
        popularity_peak: The largest count (>= 1): popularity scores are divided by it.
    """

    arrays: ItemArrays
    fallback_ids: NDArray
    fallback_scores: NDArray
    fallback_source: int
    popularity_ids: NDArray
    popularity_scores: NDArray
    popularity_peak: float

    def __post_init__(self) -> None:
        for name in ("fallback", "popularity"):
            ids, scores = getattr(self, name + "_ids"), getattr(self, name + "_scores")
            if scores.ndim != 2 or scores.shape != (len(ids), 1):
                raise ValueError(f"{name}_scores: expected ({len(ids)}, 1), got {scores.shape}")
            if len(ids) > 1 and not bool((np.diff(ids) > 0).all()):
                raise ValueError(f"{name}_ids: must be ascending and distinct")
        if not 0 <= self.fallback_source < len(SOURCES):
            raise ValueError(f"fallback_source: a code in {SOURCES}, got {self.fallback_source}")
        if self.popularity_peak < 1:
            raise ValueError(f"popularity_peak: must be >= 1, got {self.popularity_peak}")


@dataclass(frozen=True)
class FusedModels:
    """What one Python worker holds for fused scoring: the models (eval mode, on ``device``) and
    the item tensors derived once from :class:`FusedItems` (:meth:`load`).

    ``retriever`` (SASRec candidates, reading ``retriever_column``) and ``sequencer`` (the SASRec
    the ranker reads, on ``sequencer_column``) are each optional and may be the same model.
    """

    items: FusedItems
    ranker: InteractionRanker
    retriever: SequentialRecommender | None
    retriever_column: str | None
    sequencer: SequentialRecommender | None
    sequencer_column: str | None
    device: torch.device
    item_table: ItemTable
    item_emb: torch.Tensor
    item_seq: torch.Tensor | None
    retrieval_items: torch.Tensor
    fallback: torch.Tensor
    popularity: torch.Tensor

    @classmethod
    def load(
        cls,
        items: FusedItems,
        ranker: InteractionRanker,
        device: torch.device,
        *,
        retriever: SequentialRecommender | None = None,
        retriever_column: str | None = None,
        sequencer: SequentialRecommender | None = None,
        sequencer_column: str | None = None,
    ) -> FusedModels:
        """The bundle with its derived tensors; ValueError when a model comes without its
        sequence column (or the reverse) or the ranker's SASRec input does not match."""
        if (retriever is None) != (retriever_column is None):
            raise ValueError("retriever_column: the SASRec retriever and its column come together")
        if (sequencer is None) != (sequencer_column is None):
            raise ValueError("sequencer_column: the ranker's SASRec and its column come together")
        if (sequencer is None) != (items.arrays.sequence is None):
            raise ValueError("sequencer: given exactly when items.arrays.sequence is")
        arrays = items.arrays
        return cls(
            items=items,
            ranker=ranker.to(device).eval(),
            retriever=None if retriever is None else retriever.to(device).eval(),
            retriever_column=retriever_column,
            sequencer=None if sequencer is None else sequencer.to(device).eval(),
            sequencer_column=sequencer_column,
            device=device,
            item_table=arrays.item_table(),
            item_emb=arrays.padded_embedding(),
            item_seq=arrays.padded_sequence(),
            retrieval_items=torch.from_numpy(
                np.ascontiguousarray(arrays.embedding, dtype=np.float32)
            ).to(device),
            fallback=torch.from_numpy(items.fallback_scores.astype(np.float32)).to(device),
            popularity=torch.from_numpy(items.popularity_scores.astype(np.float32)).to(device),
        )


def merge_sources(
    rows: NDArray, items: NDArray, ranks: NDArray, sources: NDArray, scores: NDArray
) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    """One entry per (row, item): the one of lowest candidate rank, ties to the lower source
    code (the order of :data:`SOURCES`). Returns the kept ``(rows, items, ranks, sources,
    scores)`` sorted by row, then rank, then source code, then item id."""
    if not len(rows) == len(items) == len(ranks) == len(sources) == len(scores):
        raise ValueError("rows/items/ranks/sources/scores: must have one length")
    order = np.lexsort((sources, ranks, items, rows))
    r, i = rows[order], items[order]
    first = np.r_[True, (r[1:] != r[:-1]) | (i[1:] != i[:-1])]
    kept = order[first]
    kept = kept[np.lexsort((items[kept], sources[kept], ranks[kept], rows[kept]))]
    return rows[kept], items[kept], ranks[kept], sources[kept], scores[kept]


def _select(mask: NDArray) -> NDArray:
    return np.flatnonzero(mask).astype(np.int64)


def _seen_for(at: NDArray, seen_rows: NDArray, seen_ids: NDArray) -> tuple[NDArray, NDArray]:
    """Seen pairs of the batch rows ``at`` (ascending), rows renumbered ``0..len(at) - 1``."""
    if len(at) == 0 or len(seen_rows) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    lookup = np.full(max(int(at.max()), int(seen_rows.max())) + 1, -1, dtype=np.int64)
    lookup[at] = np.arange(len(at))
    local = lookup[seen_rows]
    keep = local >= 0
    return local[keep], seen_ids[keep]


def _gather(top: TopK, at: NDArray, ids: NDArray, source: int) -> tuple[NDArray, ...]:
    return (
        at[top.rows],
        ids[top.cols],
        top.ranks.astype(np.int64),
        np.full(len(top.rows), source, dtype=np.int64),
        top.scores.astype(np.float32),
    )


def _retrieve(
    batch: pa.RecordBatch,
    models: FusedModels,
    k: int,
    seen_rows: NDArray,
    seen_ids: NDArray,
    sasrec_vectors: dict[str, NDArray] | None = None,
) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    """Merged candidates of the batch's users: ``(rows, item ids, ranks, source codes,
    retrieval scores)`` (:func:`merge_sources`).

    ``sasrec_vectors``, when given and a SASRec retriever runs, receives ``rows`` (batch rows)
    and ``vectors`` (their ``[h, -log Z]`` from the retrieval's forward pass; NaN where none
    was computed)."""
    items = models.items
    warm = _flag(batch, WARM)
    item_ids = items.arrays.item_ids
    parts: list[tuple[NDArray, ...]] = []
    with torch.no_grad():
        at = _select(warm & _flag(batch, HAS_EMBEDDING))
        if len(at):
            dim = int(items.arrays.embedding.shape[1])
            vecs = list_matrix(batch.column(Col.EMBEDDING), dim)[at]
            top = score_users(
                vecs, item_ids, models.retrieval_items, k, *_seen_for(at, seen_rows, seen_ids)
            )
            parts.append(_gather(top, at, item_ids, SOURCE_CODE["two_tower"]))
        if models.retriever is not None and models.retriever_column is not None:
            column = batch.column(models.retriever_column)
            lengths = column.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
            at = _select(warm & (lengths > 0))
            if len(at):
                seqs = history_matrix(column, int(models.retriever.config.max_len))[at]
                vectors = None
                if sasrec_vectors is not None:
                    dim = int(models.retriever.item_emb.weight.shape[1]) + 1
                    vectors = np.full((len(at), dim), np.nan, dtype=np.float32)
                    sasrec_vectors.update(rows=at, vectors=vectors)
                top = sasrec_topk(
                    models.retriever,
                    seqs,
                    item_ids,
                    k,
                    *_seen_for(at, seen_rows, seen_ids),
                    models.device,
                    user_vectors=vectors,
                )
                parts.append(_gather(top, at, item_ids, SOURCE_CODE["sasrec"]))
        at = _select(~warm)
        if len(at):
            ones = np.ones((len(at), 1), dtype=np.float32)
            top = score_users(
                ones, items.fallback_ids, models.fallback, k, *_seen_for(at, seen_rows, seen_ids)
            )
            parts.append(_gather(top, at, items.fallback_ids, items.fallback_source))
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        return z, z.copy(), z.copy(), z.copy(), np.zeros(0, dtype=np.float32)
    cat = [np.concatenate([p[j] for p in parts]) for j in range(5)]
    return merge_sources(*cat)


def _flag(batch: pa.RecordBatch, name: str) -> NDArray:
    column = batch.column(name)
    return np.asarray(column.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _seen(batch: pa.RecordBatch) -> tuple[NDArray, NDArray]:
    rows, ids = list_parts(batch.column(SEEN))
    return rows, ids.astype(np.int64)


def candidate_batch(batch: pa.RecordBatch, models: FusedModels, k: int) -> pa.RecordBatch:
    """The merged candidates of one batch of users (the rows of ``serve.candidates``, source as
    its code in :data:`SOURCES`): :data:`CANDIDATE_FIELDS`."""
    user_ids = batch.column(Col.USER_ID).to_numpy(zero_copy_only=False).astype(np.int64)
    rows, items, ranks, sources, scores = _retrieve(batch, models, k, *_seen(batch))
    return pa.RecordBatch.from_arrays(
        [
            pa.array(user_ids[rows], pa.int64()),
            pa.array(items, pa.int64()),
            pa.array(scores, pa.float32()),
            pa.array(ranks.astype(np.int32), pa.int32()),
            pa.array(sources.astype(np.int32), pa.int32()),
        ],
        schema=pa.schema(CANDIDATE_FIELDS),
    )


def _shares_sasrec(models: FusedModels) -> bool:
    """The retriever and the ranker's sequencer are one model reading one column, so the
    retrieval's forward pass gives the sequence feature too."""
    return (
        models.retriever is not None
        and models.retriever is models.sequencer
        and models.retriever_column == models.sequencer_column
    )


def _sequence_vectors(
    batch: pa.RecordBatch,
    models: FusedModels,
    has: NDArray,
    known: dict[str, NDArray] | None = None,
) -> NDArray | None:
    """SASRec user vectors of the ranker's sequencer for the users with features (``has``) and
    events; the uniform vector for the others (the two-step path joins the vectors onto the
    users with features, and the rest get the default). ``known``: vectors already computed
    for some batch rows by the same model (``rows``, ``vectors``; NaN rows are recomputed)."""
    if models.sequencer is None or models.sequencer_column is None:
        return None
    arrays = models.items.arrays
    out = np.tile(uniform_sequence_vector(arrays), (batch.num_rows, 1))
    column = batch.column(models.sequencer_column)
    lengths = column.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
    wanted = has & (lengths > 0)
    if known is not None and "rows" in known:
        rows, vectors = known["rows"], known["vectors"]
        ready = ~np.isnan(vectors).any(axis=1) & wanted[rows]
        out[rows[ready]] = vectors[ready]
        wanted[rows[ready]] = False
    at = _select(wanted)
    if len(at):
        seqs = torch.from_numpy(history_matrix(column, int(models.sequencer.config.max_len))[at])
        size = batch_size_for("sasrec", models.device, "score")
        with torch.no_grad():
            out[at] = torch.cat(
                [
                    sasrec_user_vectors(models.sequencer, seqs[s : s + size].to(models.device))
                    .float()
                    .cpu()
                    for s in range(0, len(seqs), size)
                ]
            ).numpy()
    return out


def score_batch(batch: pa.RecordBatch, models: FusedModels, k: int, n: int) -> pa.RecordBatch:
    """Ranked top ``n`` (rec set code 0) and popularity top ``n`` (code 1) of every user of the
    batch who got candidates: :data:`RANKED_FIELDS`, sources as codes in :data:`SOURCES`.

    Args:
        batch: One row per distinct user: ``user_id``, :data:`WARM`, :data:`HAS_FEATURES`,
            :data:`HAS_EMBEDDING`, ``dense``, ``genre_affinity``, ``embedding`` (zeros when
            absent), ``history`` (raw ids), :data:`SEEN` (raw ids), and the sequence columns the
            models name (:data:`SEQUENCE_POSITIVES` / :data:`SEQUENCE_ALL`, item indices).
        models: :meth:`FusedModels.load`.
        k: Candidates per user and source, >= 1.
        n: Recommendations per user and set, 1 <= n <= k.
    """
    if not isinstance(k, int) or k < 1 or not isinstance(n, int) or not 1 <= n <= k:
        raise ValueError(f"k, n: need 1 <= n <= k, got k={k!r}, n={n!r}")
    user_ids = batch.column(Col.USER_ID).to_numpy(zero_copy_only=False).astype(np.int64)
    seen_rows, seen_ids = _seen(batch)
    # One SASRec forward pass per user when the retriever is also the ranker's sequencer.
    shared: dict[str, NDArray] | None = {} if _shares_sasrec(models) else None
    rows, items, _, sources, _ = _retrieve(batch, models, k, seen_rows, seen_ids, shared)
    arrays = models.items.arrays
    has = _flag(batch, HAS_FEATURES)
    covisit = arrays.covisit()
    recent = None
    if covisit is not None:
        # Votes of the users with features only, as the two-step path joins them.
        recent = history_matrix(batch.column(SEQUENCE_ALL), covisit[1].last)
        recent[~has] = 0
    ranker_batch = UserBatch(
        user_ids=user_ids,
        feature_user_ids=np.where(has, user_ids, 0),
        dense=list_matrix(
            batch.column(Col.DENSE), user_dense_dim(int(models.ranker.config.n_dense), arrays)
        ),
        affinity=list_matrix(batch.column(Col.GENRE_AFFINITY), int(arrays.genres.shape[1])),
        embedding=list_matrix(batch.column(Col.EMBEDDING), int(arrays.embedding.shape[1])),
        history=history_matrix(batch.column(Col.HISTORY), EXPLAIN_HISTORY),
        cand_rows=rows,
        cand_items=items,
        cand_sources=sources,
        sequence=_sequence_vectors(batch, models, has, shared),
        recent=recent,
    )
    out = rank_kernel(
        models.ranker,
        models.item_table,
        arrays.item_ids,
        models.item_emb,
        ranker_batch,
        n,
        models.device,
        item_seq=models.item_seq,
        covisit=covisit,
    )
    pop = _popularity(models, np.unique(rows), n, seen_rows, seen_ids)
    m = len(out[Col.USER_ID])
    return pa.RecordBatch.from_arrays(
        [
            pa.array(np.concatenate([out[Col.USER_ID], user_ids[pop.rows]]), pa.int64()),
            pa.array(np.concatenate([out[Col.RANK], pop.ranks]).astype(np.int32), pa.int32()),
            pa.array(
                np.concatenate([out[Col.ITEM_ID], models.items.popularity_ids[pop.cols]]),
                pa.int64(),
            ),
            pa.array(np.concatenate([out[Col.SCORE], pop.scores]), pa.float32()),
            pa.array(
                np.concatenate(
                    [out[Col.SOURCE], np.full(len(pop.rows), POPULAR_CODE, dtype=np.int32)]
                ).astype(np.int32),
                pa.int32(),
            ),
            pa.array(np.concatenate([out[BECAUSE], np.zeros(len(pop.rows), np.int64)]), pa.int64()),
            pa.array(
                np.r_[np.zeros(m, dtype=np.int32), np.ones(len(pop.rows), dtype=np.int32)],
                pa.int32(),
            ),
        ],
        schema=pa.schema(RANKED_FIELDS),
    )


def _popularity(
    models: FusedModels, at: NDArray, n: int, seen_rows: NDArray, seen_ids: NDArray
) -> TopK:
    """The popularity top ``n`` of the batch rows ``at``: rows are batch rows, scores divided
    by the peak count (float32, as ``serve.ranked`` stores them)."""
    items = models.items
    ones = np.ones((len(at), 1), dtype=np.float32)
    with torch.no_grad():
        top = score_users(
            ones, items.popularity_ids, models.popularity, n, *_seen_for(at, seen_rows, seen_ids)
        )
    scores = (top.scores.astype(np.float64) / items.popularity_peak).astype(np.float32)
    return TopK(rows=at[top.rows], cols=top.cols, scores=scores, ranks=top.ranks)
