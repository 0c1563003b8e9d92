"""Sequential co-visitation: how often item ``j`` follows item ``i`` within a few events.

A count model, not a network: ``M[i, j]`` sums ``step_decay ** (d - 1)`` over every user
sequence in which ``j`` comes ``d <= window`` events after ``i``, divided by ``1 + Σ_j M[i, j]``
(a smoothed estimate of "what comes soon after ``i``"). A user's score of item ``j`` is
``Σ_k recency_decay ** k · M[s_k, j]`` over their last ``last`` events ``s_0`` (newest),
``s_1``, ...; the ranker reads its log (:func:`covisit_feature`). On ml-latest-small this score
alone reaches test NDCG@10 0.076 (SASRec 0.057), and it adds to SASRec and the two-tower:
session co-occurrence is what MovieLens' rating sessions carry most.

Each row keeps only its ``top_n`` largest entries (ties by the lower column), after the
normalisation over the whole row, so the matrix holds at most ``n_items · top_n`` non-zeros
whatever the number of users or interactions (:func:`truncate_rows`). The warehouse stores it
once per ``(ds, split_id)`` (``features.covisit``, built in Spark by
:func:`recsys.training.covisit_spark.covisit_spark`, the twin of :func:`covisit_matrix`);
training, evaluation and serving read that table (:func:`matrix_from_ids`).

Pure numpy/scipy; item indices as in :class:`recsys.training.data.ItemTable` (0 = padding).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.validation import check_int, check_ints

#: Added inside the log of a score, so an item never seen after the user's items is finite.
COVISIT_EPS = 1e-6
#: Scale of the log-score in the ranker input (log of COVISIT_EPS is -13.8).
COVISIT_SCALE = 0.1
#: Default :attr:`CovisitConfig.top_n`.
DEFAULT_TOP_N = 500

NDArray = np.ndarray[Any, Any]


@dataclass(frozen=True, slots=True)
class CovisitConfig:
    """How the matrix and the user scores are built (validated here).

    Attributes:
        window: Events after ``i`` that count as following it, >= 1.
        step_decay: Weight ratio per extra step, in (0, 1].
        last: Most recent events of a user that vote, >= 1.
        recency_decay: Weight ratio per older event, in (0, 1].
        top_n: Entries kept per row of the matrix (the items that most often follow an item),
            >= 1; the matrix has at most ``n_items · top_n`` non-zeros. The default keeps every
            row of most catalogues whole: see ``docs/scale-covisit.md`` for its effect.
    """

    window: int = 20
    step_decay: float = 0.9
    last: int = 20
    recency_decay: float = 0.85
    top_n: int = DEFAULT_TOP_N

    def __post_init__(self) -> None:
        check_ints(self, {"window": 1, "last": 1, "top_n": 1})
        for name in ("step_decay", "recency_decay"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 < float(value) <= 1.0:
                raise ValueError(f"{name}: must be in (0, 1], got {value!r}")


def covisit_matrix(
    sequences: Mapping[int, Sequence[int]], n_items: int, config: CovisitConfig
) -> sp.csr_matrix:
    """Row-normalised ``(n_items + 1, n_items + 1)`` co-visitation matrix of item indices.

    ``sequences``: per user, item indices oldest first (e.g. the train events).
    """
    if n_items < 1:
        raise ValueError(f"n_items: must be >= 1, got {n_items!r}")
    seqs = [np.asarray(s, dtype=np.int64) for s in sequences.values() if len(s) > 1]
    size = n_items + 1
    if not seqs:
        return sp.csr_matrix((size, size), dtype=np.float32)
    flat = np.concatenate(seqs)
    if flat.min() < 1 or flat.max() > n_items:
        raise ValueError(f"sequences: item indices must be in [1, {n_items}]")
    owner = np.repeat(np.arange(len(seqs)), [len(s) for s in seqs])
    src, dst, val = [], [], []
    for d in range(1, config.window + 1):
        same = owner[:-d] == owner[d:]
        if not same.any():
            break
        src.append(flat[:-d][same])
        dst.append(flat[d:][same])
        val.append(np.full(int(same.sum()), config.step_decay ** (d - 1), dtype=np.float64))
    counts = sp.coo_matrix(
        (np.concatenate(val), (np.concatenate(src), np.concatenate(dst))), shape=(size, size)
    ).tocsr()  # duplicates summed
    norm = 1.0 / (1.0 + np.asarray(counts.sum(axis=1)).ravel())
    return truncate_rows(sp.csr_matrix(sp.diags(norm) @ counts, dtype=np.float32), config.top_n)


def truncate_rows(matrix: sp.csr_matrix, top_n: int) -> sp.csr_matrix:
    """``matrix`` with each row cut to its ``top_n`` largest stored values (ties: the lower
    column first), as a CSR with sorted indices; values are compared as stored (float32 here),
    so the order does not depend on the order sums were taken in. A row with at most ``top_n``
    entries is unchanged."""
    check_int("top_n", top_n, 1)
    m = sp.csr_matrix(matrix)
    m.sum_duplicates()  # canonical: sorted indices, no repeats
    m.eliminate_zeros()
    lengths = np.diff(m.indptr)
    if m.nnz == 0 or int(lengths.max()) <= top_n:
        return m
    rows = np.repeat(np.arange(m.shape[0]), lengths)
    order = np.lexsort((m.indices, -m.data, rows))  # by row, value descending, column
    rank = np.empty(m.nnz, dtype=np.int64)
    rank[order] = np.arange(m.nnz) - m.indptr[rows[order]]
    keep = rank < top_n
    kept_rows = rows[keep]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(kept_rows, minlength=m.shape[0]))])
    return sp.csr_matrix(
        (m.data[keep], m.indices[keep], indptr.astype(m.indptr.dtype)), shape=m.shape
    )


def matrix_from_ids(
    item_id: NDArray, next_item_id: NDArray, weight: NDArray, item_ids: NDArray
) -> sp.csr_matrix:
    """The ``(N + 1, N + 1)`` float32 matrix of stored entries ``M[item_id, next_item_id] =
    weight`` (``features.covisit`` rows) over the item indices of a catalogue ``item_ids``
    (``(N,)`` ascending raw ids: index ``i + 1`` is ``item_ids[i]``, 0 is padding). Entries
    naming an item outside the catalogue are dropped.

    Its size is bounded by ``N · top_n`` non-zeros whatever the number of users, so holding it
    in one process (the driver, and each Python worker of the ranking step through the item
    arrays' broadcast) is bounded by the catalogue: the product caps it at 100k items.
    """
    ids = np.asarray(item_ids, dtype=np.int64)
    if ids.ndim != 1 or (len(ids) > 1 and not bool((np.diff(ids) > 0).all())):
        raise ValueError("item_ids: must be a 1-d ascending array of distinct ids")
    src = np.asarray(item_id, dtype=np.int64)
    dst = np.asarray(next_item_id, dtype=np.int64)
    val = np.asarray(weight, dtype=np.float32)
    if not len(src) == len(dst) == len(val):
        raise ValueError(
            f"next_item_id, weight: expected {len(src)} entries each, got {len(dst)}, {len(val)}"
        )
    size = len(ids) + 1

    def index(raw: NDArray) -> NDArray:
        at = np.searchsorted(ids, raw)
        found = at < len(ids)
        found[found] = ids[at[found]] == raw[found]
        return np.where(found, at + 1, 0)

    i, j = index(src), index(dst)
    keep = (i > 0) & (j > 0)
    m = sp.csr_matrix((val[keep], (i[keep], j[keep])), shape=(size, size), dtype=np.float32)
    m.sum_duplicates()
    return m


def recent_weights(
    recent: Sequence[Sequence[int]] | NDArray, n_items: int, config: CovisitConfig
) -> sp.csr_matrix:
    """``(len(recent), n_items + 1)`` vote weights of each user's last ``config.last`` items
    (lists oldest first; 0 entries are padding and ignored): ``recency_decay ** k`` for the
    k-th newest, summed when an item repeats."""
    rows, cols, vals = [], [], []
    for r, items in enumerate(recent):
        tail = [int(i) for i in items if int(i) != 0][-config.last :]
        for k, item in enumerate(reversed(tail)):
            rows.append(r)
            cols.append(item)
            vals.append(config.recency_decay**k)
    return sp.csr_matrix(
        (np.asarray(vals, dtype=np.float32), (np.asarray(rows, dtype=np.int64), cols)),
        shape=(len(recent), n_items + 1),
    )


def pair_scores(
    weights: sp.csr_matrix, matrix: sp.csr_matrix, rows: NDArray, items: NDArray
) -> NDArray:
    """``(B,)`` scores ``Σ_i weights[rows[b], i] · M[i, items[b]]`` of (row, item) pairs.

    Computed per distinct row as the sparse product ``weights[row] @ M`` (at most ``last ·
    top_n`` entries per row, whatever the items asked for), then looked up at the pairs.
    """
    if len(rows) != len(items):
        raise ValueError(f"items: {len(items)} entries, rows has {len(rows)}")
    if len(rows) == 0:
        return np.zeros(0, dtype=np.float32)
    uniq, inverse = np.unique(np.asarray(rows, dtype=np.int64), return_inverse=True)
    product = sp.csr_matrix(weights[uniq] @ matrix)
    product.sum_duplicates()  # canonical: row-major keys below are sorted
    width = np.int64(product.shape[1])
    keys = np.repeat(np.arange(len(uniq), dtype=np.int64), np.diff(product.indptr)) * width
    keys += product.indices
    want = inverse.astype(np.int64).ravel() * width + np.asarray(items, dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
    hit = keys[at] == want if len(keys) else np.zeros(len(want), dtype=bool)
    values = product.data[at] if len(keys) else np.zeros(len(want), dtype=np.float32)
    return np.where(hit, values, 0.0).astype(np.float32)


def covisit_feature(scores: NDArray) -> NDArray:
    """The ranker input of raw scores: ``COVISIT_SCALE · log(score + COVISIT_EPS)``."""
    out: NDArray = COVISIT_SCALE * np.log(np.asarray(scores, dtype=np.float64) + COVISIT_EPS)
    return out.astype(np.float32)
