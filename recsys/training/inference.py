"""Inference with the trained models, shared by training, evaluation and serving: full-catalogue
score matrices, known-item masking, top-K lists, quick NDCG, model vectors and reranking.

Every scorer returns a ``(n_users, n_items + 1)`` float matrix whose column ``j`` is
``item_index = j`` (column 0 is padding and always ``-inf``) for the users it is given; callers
give it one block of users at a time (:mod:`recsys.training.blocks`), never every user.
:func:`top_k` masks the items each user already knows and cuts the list (the dense reference;
:func:`recsys.training.blocks.top_k_fast` gives the same lists faster).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import Tensor

from recsys.kernels import reserve_slots
from recsys.models.ranker import InteractionRanker
from recsys.models.sasrec import SequentialRecommender
from recsys.models.two_tower import TwoTower
from recsys.training.blocks import top_k_fast
from recsys.training.covisit import (
    CovisitConfig,
    covisit_feature,
    pair_scores,
    recent_weights,
)
from recsys.training.covisit_spark import collect_recent_items, load_covisit_matrix, stored_day
from recsys.training.data import ItemTable, UserTable
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

RANK = "rank"
CHUNK = 512


def known_mask(
    users: Sequence[int], known: Mapping[int, set[int]], index_of: Mapping[int, int], n: int
) -> Tensor:
    """``(len(users), n + 1)`` bool, True where the user already knows the item (and column 0)."""
    mask = torch.zeros(len(users), n + 1, dtype=torch.bool)
    mask[:, 0] = True
    for row, user in enumerate(users):
        cols = [index_of[i] for i in known.get(int(user), ()) if i in index_of]
        if cols:
            mask[row, cols] = True
    return mask


def top_k(scores: Tensor, mask: Tensor, k: int) -> Tensor:
    """Indices ``(U, k)`` of the best unmasked columns, best first (ties: lower index first)."""
    s = scores.masked_fill(mask, float("-inf"))
    k = min(k, s.shape[1])
    # Stable descending sort: equal scores keep column order, so results are deterministic.
    return torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k]


def recs_frame(users: Sequence[int], top: Tensor, items: ItemTable) -> pd.DataFrame:
    """Long recommendations frame (user_id, item_id, rank 1..n) from top-K item indices.

    Entries 0 (padding: known items removed by :func:`recsys.training.blocks.drop_known`, or
    a list shorter than K) are dropped; ranks count only the kept entries.
    """
    keep = top != 0
    ranks = keep.long().cumsum(1)
    user_col = torch.tensor(list(users), dtype=torch.long).unsqueeze(1).expand_as(top)
    return pd.DataFrame(
        {
            Col.USER_ID: user_col[keep].numpy(),
            Col.ITEM_ID: items.item_ids[top[keep]].numpy(),
            RANK: ranks[keep].numpy(),
        }
    )


def ndcg_at(top: Tensor, targets: Sequence[set[int]], k: int = 10) -> float:
    """Mean binary NDCG@k of top-K item indices against each user's target index set."""
    total = 0.0
    for row, target in zip(top[:, :k].tolist(), targets, strict=True):
        if not target:
            continue
        dcg = sum(1.0 / math.log2(r + 2) for r, i in enumerate(row) if i in target)
        idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(target), k)))
        total += dcg / idcg
    return total / max(1, sum(1 for t in targets if t))


@torch.no_grad()
def item_vectors(model: TwoTower, items: ItemTable, device: torch.device) -> Tensor:
    """``(n + 1, out_dim)`` item embeddings; cold items use id 0 (content-only). Row 0 zero."""
    model.eval()
    ids = torch.where(items.is_cold, torch.zeros_like(items.item_ids), items.item_ids)
    out = []
    for s in range(0, ids.shape[0], 4096):
        sl = slice(s, s + 4096)
        out.append(
            model.item_embedding(
                ids[sl].to(device),
                items.content[sl].to(device),
                items.genres[sl].to(device),
                items.year[sl].to(device),
            ).cpu()
        )
    vecs = torch.cat(out)
    vecs[0] = 0.0
    return vecs


@torch.no_grad()
def user_vectors(model: TwoTower, users: UserTable, rows: Tensor, device: torch.device) -> Tensor:
    """``(len(rows), out_dim)`` user embeddings of user-table rows."""
    model.eval()
    out = []
    for s in range(0, rows.shape[0], 4096):
        r = rows[s : s + 4096]
        out.append(
            model.user_embedding(
                users.user_ids[r].to(device), users.dense[r].to(device), users.history[r].to(device)
            ).cpu()
        )
    return torch.cat(out) if out else torch.zeros(0, model.config.out_dim)


def two_tower_scorer(
    model: TwoTower, users: UserTable, items: ItemTable, device: torch.device
) -> Callable[[Sequence[int]], Tensor]:
    """Item vectors computed once; the returned function gives the cosine scores
    ``(U, n + 1)`` of raw user ids (rows of ``users``) against every item, column 0 ``-inf``."""
    ivec = item_vectors(model, items, device)

    def scores(user_ids: Sequence[int]) -> Tensor:
        u = user_vectors(model, users, users.row_of(np.asarray(user_ids)), device)
        out = u @ ivec.T
        out[:, 0] = float("-inf")
        return out

    return scores


def two_tower_scores(
    model: TwoTower,
    users: UserTable,
    items: ItemTable,
    user_ids: Sequence[int],
    device: torch.device,
) -> Tensor:
    """Cosine scores ``(U, n + 1)`` of the given raw user ids against every item."""
    return two_tower_scorer(model, users, items, device)(user_ids)


def _sequence_batch(
    sequences: Mapping[int, list[int]], user_ids: Sequence[int], max_len: int
) -> Tensor:
    """``(U, max_len)`` int64: each user's last ``max_len`` item indices, 0-padded in front."""
    seq = torch.zeros(len(user_ids), max_len, dtype=torch.long)
    for row, user in enumerate(user_ids):
        tail = sequences.get(int(user), [])[-max_len:]
        if tail:
            seq[row, -len(tail) :] = torch.tensor(tail, dtype=torch.long)
    return seq


@torch.no_grad()
def sasrec_scores(
    model: SequentialRecommender,
    sequences: Mapping[int, list[int]],
    user_ids: Sequence[int],
    device: torch.device,
) -> Tensor:
    """Next-item scores ``(U, n + 1)`` from each user's last ``max_len`` item indices."""
    model.eval()
    seq = _sequence_batch(sequences, user_ids, model.config.max_len)
    out = []
    for s in range(0, seq.shape[0], 256):
        out.append(model.next_item_scores(seq[s : s + 256].to(device)).cpu())
    return torch.cat(out)


@torch.no_grad()
def sasrec_user_vectors(model: SequentialRecommender, seq: Tensor) -> Tensor:
    """``(B, d + 1)`` SASRec user vectors ``[h, -log Z]`` of sequences ``(B, max_len)``: ``h`` the
    state after the last item, ``log Z`` the log-sum-exp of its scores over items 1..n, so that
    ``user · [e_i, 1]`` (see :func:`sasrec_item_vectors`) is ``log p(i | sequence)``, the model's
    full-softmax next-item log-probability. An all-padding row gives ``[0, ..., -log n]``."""
    model.eval()
    h = model.user_representation(seq)
    log_z = torch.logsumexp(h @ model.item_emb.weight[1:].T, dim=1, keepdim=True)
    return torch.cat([h, -log_z], dim=1)


def sasrec_item_vectors(model: SequentialRecommender) -> Tensor:
    """``(n + 1, d + 1)`` SASRec item vectors ``[e_i, 1]`` (row 0 the padding item)."""
    emb = model.item_emb.weight.detach()
    return torch.cat([emb, torch.ones(emb.shape[0], 1, dtype=emb.dtype, device=emb.device)], 1)


@dataclass(frozen=True)
class SequenceScores:
    """SASRec's next-item log-probability of any (user-table row, item index) pair, kept as one
    vector per user (``(R, d + 1)``) instead of an ``(R, n)`` matrix: ``log p(i | row) =
    users[row] · items[i]`` (:func:`sasrec_user_vectors`, :func:`sasrec_item_vectors`; serving
    computes the same dot product). Users without a sequence (and row 0): ``-log n`` for every
    item.
    """

    users: Tensor  #: (R, d + 1) float32, one per user-table row
    items: Tensor  #: (n + 1, d + 1) float32, row 0 padding

    def log_prob(self, rows: Tensor, items: Tensor) -> Tensor:
        """``(B,)`` log-probabilities of pairs ``rows[b]``, ``items[b]`` (items >= 1)."""
        return (self.users[rows] * self.items[items]).sum(-1)

    def matrix(self, rows: Tensor) -> Tensor:
        """``(len(rows), n + 1)`` log-probabilities of every item; column 0 ``-inf``."""
        out = self.users[rows] @ self.items.T
        out[:, 0] = float("-inf")
        return out


@torch.no_grad()
def sequence_scores(
    model: SequentialRecommender,
    sequences: Mapping[int, list[int]],
    users: UserTable,
    device: torch.device,
) -> SequenceScores:
    """:class:`SequenceScores` of every row of ``users`` from their ``sequences`` (by user id)."""
    seq = _sequence_batch(sequences, users.user_ids.tolist(), model.config.max_len)
    out = [
        sasrec_user_vectors(model, seq[s : s + 256].to(device)).cpu()
        for s in range(0, seq.shape[0], 256)
    ]
    return SequenceScores(torch.cat(out), sasrec_item_vectors(model).cpu())


@dataclass(frozen=True)
class CovisitScores:
    """Co-visitation ranker input of any (user-table row, item index) pair
    (:mod:`recsys.training.covisit`): the rows' recent-item vote weights and the truncated
    matrix ``M`` (at most ``n · top_n`` non-zeros)."""

    weights: sp.csr_matrix  #: (R, n + 1), one row per user-table row
    matrix: sp.csr_matrix  #: (n + 1, n + 1), the co-visitation matrix, rows = preceding item

    def feature(self, rows: Tensor, items: Tensor) -> Tensor:
        """``(B,)`` float32 :func:`recsys.training.covisit.covisit_feature` of the pairs."""
        raw = pair_scores(self.weights, self.matrix, rows.numpy(), items.numpy())
        return torch.from_numpy(covisit_feature(raw))


def train_covisit_matrix(
    spark: SparkSession, ds: date, split_id: str, items: ItemTable, config: CovisitConfig
) -> sp.csr_matrix:
    """The co-visitation matrix of a split's train-role events over ``items``' indices, as
    ``features.covisit`` stores it (built once by the features job in Spark, cut to
    ``config.top_n`` per item): the one matrix training, evaluation and serving all read
    (:func:`recsys.training.covisit_spark.load_covisit_matrix`)."""
    return load_covisit_matrix(spark, ds, split_id, items.item_ids[1:].numpy(), config)


def serving_covisit_matrix(
    spark: SparkSession, ds: date, split_id: str, items: ItemTable, config: CovisitConfig
) -> sp.csr_matrix:
    """:func:`train_covisit_matrix` of the newest day on or before ``ds`` stored with
    ``config``'s settings (:func:`recsys.training.covisit_spark.stored_day`; ``ds`` itself
    without one), over today's ``items``: the daily DAG rebuilds the matrix on training days
    only, and scoring days read the one the champion ranker was trained with."""
    day = stored_day(spark, ds, split_id, config)
    if day is not None and day != ds:
        log.info("features.covisit: scoring ds=%s reads the matrix of ds=%s", ds, day)
    return train_covisit_matrix(spark, ds if day is None else day, split_id, items, config)


def covisit_scores(
    users: UserTable,
    recent: Mapping[int, list[int]],
    matrix: sp.csr_matrix,
    config: CovisitConfig,
) -> CovisitScores:
    """:class:`CovisitScores` of every row of ``users`` from their event sequences ``recent``
    (by user id, item indices oldest first; users without an entry do not vote) and a
    co-visitation matrix (:func:`train_covisit_matrix`)."""
    lists = [recent.get(int(u), []) for u in users.user_ids.tolist()]
    weights = recent_weights(lists, matrix.shape[0] - 1, config)
    return CovisitScores(weights, sp.csr_matrix(matrix))


def covisit_scores_spark(
    spark: SparkSession,
    ds: date,
    split_id: str,
    items: ItemTable,
    users: UserTable,
    roles: tuple[str, ...],
    config: CovisitConfig,
    user_ids: Sequence[int] | None = None,
) -> CovisitScores:
    """:func:`covisit_scores` from Spark: the stored matrix (:func:`train_covisit_matrix`) and
    the last ``config.last`` events of ``roles`` of the users ``user_ids`` (default: every user
    of ``users``), collected for those users only
    (:func:`recsys.training.covisit_spark.collect_recent_items`); other rows do not vote."""
    matrix = train_covisit_matrix(spark, ds, split_id, items, config)
    wanted = list(users.rows) if user_ids is None else list(user_ids)
    recent = collect_recent_items(spark, ds, split_id, roles, wanted, config.last)
    index_of = items.index_of()
    by_index = {u: [index_of[i] for i in ids if i in index_of] for u, ids in recent.items()}
    return covisit_scores(users, by_index, matrix, config)


def merge_candidates(first: Tensor, second: Tensor, width: int) -> Tensor:
    """Merge two retrievers' ranked lists ``(U, C1)``, ``(U, C2)`` into ``(U, width)`` item
    indices without repeats: items in order of their best rank in either list (``first`` wins
    ties). With ``width = C1 + C2`` this is the union serving ranks (two-tower and SASRec
    candidates, ``serve.candidates``), topped up with the next best of either list where they
    overlap. Rows with fewer distinct items than ``width`` raise ``ValueError``.
    """
    if first.shape[0] != second.shape[0]:
        raise ValueError(f"second: {second.shape[0]} rows, first has {first.shape[0]}")
    u = first.shape[0]
    c = max(first.shape[1], second.shape[1])
    # Interleave rank by rank: first[0], second[0], first[1], ... = order of best rank.
    pad = torch.full((u, c), -1, dtype=torch.long)
    a, b = pad.clone(), pad.clone()
    a[:, : first.shape[1]], b[:, : second.shape[1]] = first, second
    inter = torch.stack([a, b], dim=2).reshape(u, 2 * c).numpy()
    out = np.empty((u, width), dtype=np.int64)
    for row in range(u):
        vals = inter[row][inter[row] >= 0]
        _, at = np.unique(vals, return_index=True)
        if len(at) < width:
            raise ValueError(f"width: {width} but row {row} has only {len(at)} distinct items")
        out[row] = vals[np.sort(at)[:width]]
    return torch.from_numpy(out)


def merged_pool(first: Tensor, second: Tensor, mask: Tensor, per_source: int) -> Tensor:
    """The ranker's pool from two score matrices ``(U, n + 1)``: each one's top ``per_source``
    unmasked items, merged by :func:`merge_candidates` to ``2 * per_source`` items (fewer when
    the catalogue is smaller)."""
    width = min(2 * per_source, first.shape[1])
    return merge_candidates(top_k_fast(first, mask, width), top_k_fast(second, mask, width), width)


#: Scale of the SASRec log-probability in the ranker input (log p of 1/10k items is -9.2).
SEQUENCE_SCALE = 0.1


def ranker_dense(
    users: UserTable,
    items: ItemTable,
    user_rows: Tensor,
    item_index: Tensor,
    retrieval: Tensor,
    sequence: Tensor | None = None,
    covisit: Tensor | None = None,
) -> Tensor:
    """Ranker dense input ``(B, dense_dim + 4 + [sequence given] + [covisit given])``.

    user dense ‖ genre match (item genres · user genre affinity) ‖ item log_count ‖ is_cold ‖
    two-tower retrieval score (cosine) ‖ SASRec next-item log-probability (when given; ``(B,)``,
    see :class:`SequenceScores`; ``log(1/n)`` for cold items) ‖ co-visitation input (when
    given; ``(B,)``, already :func:`recsys.training.covisit.covisit_feature`). The retrieval
    score is column ``dense_dim + 3``.
    """
    match = (items.genres[item_index] * users.affinity[user_rows]).sum(-1, keepdim=True)
    parts = [
        users.dense[user_rows],
        match,
        items.log_count[item_index].unsqueeze(-1) / 5.0,
        items.is_cold[item_index].float().unsqueeze(-1),
        retrieval.unsqueeze(-1) * 5.0,
    ]
    if sequence is not None:
        # SASRec never saw a cold item (its embedding was only ever pushed down as a softmax
        # negative), so its score there is noise: cold items get the no-information value
        # log(1/n) and are ordered among themselves by the two-tower's content score.
        cold = items.is_cold[item_index]
        uninformed = torch.full_like(sequence, -math.log(max(1, items.item_ids.shape[0] - 1)))
        parts.append(torch.where(cold, uninformed, sequence).unsqueeze(-1) * SEQUENCE_SCALE)
    if covisit is not None:
        parts.append(covisit.unsqueeze(-1))
    return torch.cat(parts, dim=-1)


@torch.no_grad()
def rerank(
    ranker: InteractionRanker,
    users: UserTable,
    items: ItemTable,
    user_ids: Sequence[int],
    candidates: Tensor,
    retrieval: Tensor,
    device: torch.device,
    sequence: SequenceScores | None = None,
    covisit: CovisitScores | None = None,
) -> Tensor:
    """Re-order ``candidates`` ``(U, C)`` item indices by ranker logit; returns ``(U, C)``.

    ``retrieval`` is ``(U, C)``: the two-tower score of each candidate (gathered from the score
    block the candidates came from); ``sequence`` and ``covisit`` the SASRec and co-visitation
    scores of a ranker trained with them (rows of ``users``).
    """
    if retrieval.shape != candidates.shape:
        raise ValueError(
            f"retrieval: shape {tuple(retrieval.shape)}, candidates {tuple(candidates.shape)}"
        )
    ranker.eval()
    rows = users.row_of(np.asarray(user_ids))
    n_u, n_c = candidates.shape
    flat_rows = rows.repeat_interleave(n_c)
    flat_items = candidates.reshape(-1)
    flat_ret = retrieval.reshape(-1)
    logits = []
    for s in range(0, flat_items.shape[0], 8192):
        sl = slice(s, s + 8192)
        seq = None if sequence is None else sequence.log_prob(flat_rows[sl], flat_items[sl])
        cov = None if covisit is None else covisit.feature(flat_rows[sl], flat_items[sl])
        dense = ranker_dense(users, items, flat_rows[sl], flat_items[sl], flat_ret[sl], seq, cov)
        logits.append(
            ranker(
                users.user_ids[flat_rows[sl]].to(device),
                items.item_ids[flat_items[sl]].to(device),
                dense.to(device),
            ).cpu()
        )
    order = torch.sort(torch.cat(logits).reshape(n_u, n_c), dim=1, descending=True, stable=True)
    return candidates.gather(1, order.indices)


def reserve_cold(ordered: Tensor, is_cold: Tensor, n: int, slots: int) -> Tensor:
    """Cut ranked lists ``(U, C)`` of item indices to ``(U, min(n, C))``, keeping at least
    ``slots`` cold items per row where the row has them (as serving does: see
    :func:`recsys.kernels.reserve_slots`). ``is_cold`` is ``(n_items + 1,)`` bool."""
    u, c = ordered.shape
    width = min(n, c)
    rows = np.repeat(np.arange(u), c)
    keep = reserve_slots(rows, is_cold[ordered].reshape(-1).numpy(), width, slots)
    return ordered.reshape(-1)[torch.from_numpy(keep)].reshape(u, width)
