"""Pure numpy/torch kernels of batch scoring: top-k with exclusion, Arrow <-> numpy, block sizes.

Nothing here imports pyspark: the Spark wrappers (:mod:`recsys.scoring.retrieval`,
:mod:`recsys.scoring.ranking`) and the single-process references call the same functions, which
is what makes their outputs equal (the parity tests). Evaluation ranks with the same top-k and
block sizes (:mod:`recsys.training.blocks`) and the single-process reranker with the same cold-item
slots (:mod:`recsys.training.inference`), so this module sits below both ``recsys.training`` and
``recsys.scoring`` and imports neither.

Ordering rule everywhere: higher score first; equal scores -> lower column (item position in the
item matrix, which the callers sort by item id) first. ``-inf`` marks an excluded entry and never
appears in an output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor

#: Score-matrix floats per block: 8M (32 MiB) on CPU, 256M (1 GiB) on CUDA.
CPU_BLOCK_FLOATS: Final = 8 * 1024 * 1024
CUDA_BLOCK_FLOATS: Final = 256 * 1024 * 1024
#: Widest item block (columns of one score block).
MAX_ITEM_BLOCK: Final = 1 << 16
#: Exact top-k by pre-filtering (see ``_topk_prefiltered``): columns per group, extra groups taken
#: beyond k, and how many more groups than ``k + slack`` a row needs before the pre-filter is used.
#: At k = 100 of 20k columns, one thread: 57 ms vs 85 ms per 1,024 rows.
_TOPK_GROUP: Final = 8
_TOPK_SLACK: Final = 8
_TOPK_PREFILTER_RATIO: Final = 4

NDArray = np.ndarray[Any, Any]


@dataclass(frozen=True, slots=True)
class TopK:
    """Top-k of a batch of users, long format (one entry per kept (user row, item) pair).

    Attributes:
        rows: ``(M,)`` int64 user row in the batch, ascending.
        cols: ``(M,)`` int64 item column (position in the item matrix).
        scores: ``(M,)`` float32 score, never ``-inf``.
        ranks: ``(M,)`` int32 rank 1..k within the user, ascending within a row.
    """

    rows: NDArray
    cols: NDArray
    scores: NDArray
    ranks: NDArray


def blocks_for(device: torch.device, n_items: int) -> tuple[int, int]:
    """``(user_block, item_block)`` sizes of the score blocks on ``device``.

    The item block is the whole catalogue up to :data:`MAX_ITEM_BLOCK` columns; the user block
    fills :data:`CPU_BLOCK_FLOATS` (or :data:`CUDA_BLOCK_FLOATS`) floats, within [16, 65536].
    """
    if n_items < 0:
        raise ValueError(f"n_items: must be >= 0, got {n_items!r}")
    item_block = max(1, min(n_items, MAX_ITEM_BLOCK))
    budget = CUDA_BLOCK_FLOATS if device.type == "cuda" else CPU_BLOCK_FLOATS
    return max(16, min(65536, budget // item_block)), item_block


def matrix_lists(matrix: NDArray) -> pa.ListArray:
    """A ``(n, width)`` array as an ARRAY<FLOAT> Arrow column of ``n`` float32 lists (the
    inverse of :func:`list_matrix`)."""
    n, width = matrix.shape
    offsets = pa.array(np.arange(0, n * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1), pa.float32()))


def list_matrix(column: pa.Array | pa.ChunkedArray, width: int) -> NDArray:
    """An ARRAY<FLOAT> Arrow column of fixed ``width`` as a ``(n, width)`` float32 array.

    Zero-copy when the values are float32 without nulls. Raises ValueError when a row is null or
    has another length.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    if column.null_count:
        raise ValueError(f"column: {column.null_count} null arrays (expected {width} floats each)")
    values = column.flatten()
    if len(values) != n * width:
        raise ValueError(f"column: expected {n} arrays of {width} floats, got {len(values)} values")
    flat = values.to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32).reshape(n, width)


def list_parts(column: pa.Array | pa.ChunkedArray) -> tuple[NDArray, NDArray]:
    """A list column (nulls count as empty) as ``(row_of_value, values)`` numpy arrays."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    lengths = column.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
    rows = np.repeat(np.arange(len(column), dtype=np.int64), lengths.astype(np.int64))
    values = column.flatten().to_numpy(zero_copy_only=False)
    return rows, values


def positions(sorted_ids: NDArray, ids: NDArray) -> NDArray:
    """Position of each of ``ids`` in the ascending ``sorted_ids``; -1 where absent."""
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, ids)
    pos = np.minimum(pos, len(sorted_ids) - 1)
    out: NDArray = np.where(sorted_ids[pos] == ids, pos, -1).astype(np.int64)
    return out


def _order(vals: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
    """Sort each row by (score descending, column ascending)."""
    by_col = torch.argsort(idx, dim=1)
    vals, idx = vals.gather(1, by_col), idx.gather(1, by_col)
    by_val = torch.sort(vals, dim=1, descending=True, stable=True).indices
    return vals.gather(1, by_val), idx.gather(1, by_val)


def topk_rows(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Exact top-``k`` of each row of a score block under the module's ordering rule.

    Args:
        scores: ``(B, C)`` float scores, ``-inf`` = excluded.
        k: >= 1.

    Returns:
        ``(values, columns)``, each ``(B, min(k, C))``, best first; ``-inf`` values mark rows
        with fewer than ``k`` allowed columns (drop them).
    """
    if k < 1:
        raise ValueError(f"k: must be >= 1, got {k!r}")
    n_cols = scores.shape[1]
    kk = min(k, n_cols)
    if kk == 0:
        empty = torch.zeros(scores.shape[0], 0, device=scores.device)
        return empty, empty.long()
    if kk == n_cols:
        out = torch.sort(scores, dim=1, descending=True, stable=True)
        return out.values, out.indices
    if n_cols // _TOPK_GROUP >= _TOPK_PREFILTER_RATIO * (kk + _TOPK_SLACK):
        return _topk_prefiltered(scores, kk)
    return _topk_direct(scores, kk)


def _topk_direct(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    vals, idx = torch.topk(scores, k + 1, dim=1)
    # A tie across the cut (k-th == (k+1)-th, finite) makes topk's choice arbitrary: redo those
    # rows with a stable full sort. Rare for float scores; ties at -inf are dropped anyway.
    ambiguous = (vals[:, k - 1] == vals[:, k]) & torch.isfinite(vals[:, k - 1])
    vals, idx = vals[:, :k], idx[:, :k]
    if bool(ambiguous.any()):
        rows = ambiguous.nonzero().squeeze(1)
        full = torch.sort(scores[rows], dim=1, descending=True, stable=True)
        vals[rows], idx[rows] = full.values[:, :k], full.indices[:, :k]
    return _order(vals, idx)


def _topk_prefiltered(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """:func:`_topk_direct`'s result from a small subset of columns (``1 < k < C``).

    The first ``G * g`` columns fall into G groups of g (group j = columns j, j + G, j + 2G, ...,
    strided so the maxima are one vectorised pass over a view); the fewer than g columns left
    over are always kept. Let tau be the k-th largest group maximum: the k groups with the
    largest maxima each hold a value >= tau, so the k-th largest value is >= tau, and every group
    whose maximum is below tau holds no top-k value. Taking the ``k + slack`` best groups is
    therefore exact whenever the last one taken is already below tau (all groups >= tau are in);
    rows where it is not, and rows whose subset top-k has a tie across the cut, are redone
    directly. One cheap strided max plus two top-k calls over ~G and ~(k + slack) * g columns
    replace a top-k over all C columns.
    """
    b, n_cols = scores.shape
    g = _TOPK_GROUP
    n_groups = n_cols // g
    # Groups over the first n_groups * g columns (a view, no copy); the < g columns left over
    # are always in the subset.
    group_max = scores[:, : n_groups * g].view(b, g, n_groups).amax(1)
    gv, gi = torch.topk(group_max, k + _TOPK_SLACK, dim=1)
    tau = gv[:, k - 1]
    redo = (gv[:, -1] >= tau) | ~torch.isfinite(tau)
    grouped = gi.unsqueeze(2) + n_groups * torch.arange(g, device=scores.device)
    tail = torch.arange(n_groups * g, n_cols, device=scores.device).expand(b, -1)
    cols = torch.cat([grouped.reshape(b, -1), tail], dim=1)
    vals, pos = torch.topk(scores.gather(1, cols), k + 1, dim=1)
    redo |= (vals[:, k - 1] == vals[:, k]) & torch.isfinite(vals[:, k - 1])
    vals, idx = _order(vals[:, :k], cols.gather(1, pos[:, :k]))
    if bool(redo.any()):
        rows = redo.nonzero().squeeze(1)
        vals[rows], idx[rows] = _topk_direct(scores[rows], k)
    return vals, idx


def topk_blocked(
    n_users: int,
    n_items: int,
    score_block: Callable[[int, int, int, int], Tensor],
    k: int,
    seen_rows: NDArray | None = None,
    seen_cols: NDArray | None = None,
    *,
    user_block: int,
    item_block: int,
) -> TopK:
    """Top-``k`` allowed items of every user, from score blocks computed on demand.

    Args:
        n_users: Users (rows) in the batch, >= 0.
        n_items: Items (columns), >= 0.
        score_block: ``(u0, u1, i0, i1) -> (u1 - u0, i1 - i0)`` float tensor of scores.
        k: Items per user, >= 1.
        seen_rows: ``(S,)`` int row of each excluded (row, column) pair, or None.
        seen_cols: ``(S,)`` int column of each excluded pair (-1 entries are ignored), or None.
        user_block: Rows per block, >= 1.
        item_block: Columns per block, >= 1.

    Returns:
        :class:`TopK`; a user with fewer than ``k`` allowed items gets all of them.
    """
    if k < 1:
        raise ValueError(f"k: must be >= 1, got {k!r}")
    if user_block < 1 or item_block < 1:
        raise ValueError(f"user_block/item_block: must be >= 1, got {user_block}/{item_block}")
    if (seen_rows is None) != (seen_cols is None):
        raise ValueError("seen_rows/seen_cols: give both or neither")
    if seen_rows is not None and seen_cols is not None:
        keep = seen_cols >= 0
        seen_rows, seen_cols = seen_rows[keep].astype(np.int64), seen_cols[keep].astype(np.int64)
        order = np.argsort(seen_rows, kind="stable")
        seen_rows, seen_cols = seen_rows[order], seen_cols[order]
    out_rows, out_cols, out_vals = [], [], []
    b_rows = b_cols = np.zeros(0, dtype=np.int64)
    for u0 in range(0, n_users, user_block):
        u1 = min(n_users, u0 + user_block)
        if seen_rows is not None and seen_cols is not None:
            lo, hi = np.searchsorted(seen_rows, [u0, u1])
            b_rows, b_cols = seen_rows[lo:hi] - u0, seen_cols[lo:hi]
        parts_v, parts_i = [], []
        for i0 in range(0, n_items, item_block):
            i1 = min(n_items, i0 + item_block)
            block = score_block(u0, u1, i0, i1).float()
            if seen_rows is not None:
                inside = (b_cols >= i0) & (b_cols < i1)
                if inside.any():
                    r = torch.from_numpy(b_rows[inside]).to(block.device)
                    c = torch.from_numpy(b_cols[inside] - i0).to(block.device)
                    block[r, c] = float("-inf")
            v, i = topk_rows(block, k)
            parts_v.append(v)
            parts_i.append(i + i0)
        if not parts_v:
            continue
        if len(parts_v) == 1:
            vals, idx = parts_v[0], parts_i[0]
        else:
            vals, idx = _order(torch.cat(parts_v, dim=1), torch.cat(parts_i, dim=1))
            vals, idx = vals[:, :k], idx[:, :k]
        vals_np, idx_np = vals.cpu().numpy(), idx.cpu().numpy()
        finite = np.isfinite(vals_np)
        rows = np.broadcast_to(np.arange(u0, u1, dtype=np.int64)[:, None], vals_np.shape)
        out_rows.append(rows[finite])
        out_cols.append(idx_np[finite].astype(np.int64))
        out_vals.append(vals_np[finite].astype(np.float32))
    if not out_rows:
        z = np.zeros(0, dtype=np.int64)
        return TopK(z, z.copy(), np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int32))
    rows_all = np.concatenate(out_rows)
    return TopK(
        rows=rows_all,
        cols=np.concatenate(out_cols),
        scores=np.concatenate(out_vals),
        ranks=group_ranks(rows_all),
    )


def group_ranks(rows: NDArray) -> NDArray:
    """1-based position of each entry within its run of equal, consecutive ``rows`` (int32)."""
    n = len(rows)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    start = np.r_[True, rows[1:] != rows[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    ranks: NDArray = (np.arange(n) - first + 1).astype(np.int32)
    return ranks


def reserve_slots(rows: NDArray, flagged: NDArray, n: int, slots: int) -> NDArray:
    """Which entries of ranked lists to keep: the top ``n`` per row, of which at least ``slots``
    are flagged entries when the row has that many.

    Used to keep new (cold) items in front of users: a ranker learns that never-seen items are
    rarely consumed next and would otherwise never show them, so they would never get data. The
    best ``min(slots, n)`` flagged entries of a row are always kept; the rest of the ``n`` places
    go to the best other entries. Entries keep their order, so a flagged entry that made the top
    ``n`` on its own changes nothing, and one pulled in from below lands after the others.

    Args:
        rows: ``(M,)`` row of each entry; entries sorted by row, best first within a row.
        flagged: ``(M,)`` bool, e.g. the item is cold.
        n: Entries kept per row, >= 1.
        slots: Flagged entries guaranteed per row, >= 0 (0: plain top ``n``).

    Returns:
        ``(M,)`` bool mask; at most ``n`` True per row.
    """
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n!r}")
    if slots < 0:
        raise ValueError(f"slots: must be >= 0, got {slots!r}")
    flagged = flagged.astype(bool)
    if len(rows) == 0:
        return np.zeros(0, dtype=bool)
    # The best min(slots, n) flagged entries of each row: their rank among the row's flagged ones.
    forced = np.zeros(len(rows), dtype=bool)
    at = np.flatnonzero(flagged)
    forced[at[group_ranks(rows[at]) <= min(slots, n)]] = True
    # The other entries fill the places left, by their rank among the row's other entries.
    group = np.cumsum(np.r_[True, rows[1:] != rows[:-1]]) - 1
    left = n - np.bincount(group, weights=forced).astype(np.int64)[group]
    keep: NDArray = forced.copy()
    at = np.flatnonzero(~forced)
    keep[at] = group_ranks(rows[at]) <= left[at]
    return keep


def matmul_blocks(user_vecs: NDArray, items: Tensor) -> Callable[[int, int, int, int], Tensor]:
    """``score_block`` for :func:`topk_blocked`: inner products ``users @ items.T``.

    Args:
        user_vecs: ``(U, d)`` float32 user vectors (host memory; blocks move as asked for).
        items: ``(N, d)`` float32 item matrix, already on the device to score on.

    Each block is written into one buffer reused by the next call (a fresh block per call costs
    as much again as the multiply in first-touch page faults on CPU), so a caller must be done
    with a block before asking for the next one, as :func:`topk_blocked` is.
    """
    device = items.device
    users = torch.from_numpy(np.ascontiguousarray(user_vecs, dtype=np.float32))
    buffer = torch.empty(0, dtype=items.dtype, device=device)

    def block(u0: int, u1: int, i0: int, i1: int) -> Tensor:
        nonlocal buffer
        size = (u1 - u0) * (i1 - i0)
        if buffer.numel() < size:
            buffer = torch.empty(size, dtype=items.dtype, device=device)
        out = buffer[:size].view(u1 - u0, i1 - i0)
        return torch.mm(users[u0:u1].to(device), items[i0:i1].T, out=out)

    return block


#: Users per explanation chunk (bounds the (users, N, history) similarity tensor).
EXPLAIN_USERS: Final = 1024


def explain_items(
    item_ids: NDArray,
    item_emb: torch.Tensor,
    history: NDArray,
    rows: NDArray,
    rec_index: NDArray,
    n: int,
) -> NDArray:
    """For each recommendation, the user's history item with the highest cosine to it.

    Args:
        item_ids: ``(N,)`` ascending raw ids; ``item_emb`` is ``(N + 1, d)`` with row 0 zero.
        item_emb: Unit item vectors (inner product = cosine), padded.
        history: ``(B, H)`` raw ids, 0 = padding; later columns are more recent.
        rows: ``(M,)`` user row of each recommendation, ascending, at most ``n`` per row.
        rec_index: ``(M,)`` item_index (1-based) of each recommendation.
        n: Most recommendations per user.

    Returns:
        ``(M,)`` int64 raw item ids; ties go to the most recent item; 0 when the user has no
        history item in the catalogue.
    """
    m = len(rows)
    out = np.zeros(m, dtype=np.int64)
    if m == 0 or history.shape[1] == 0:
        return out
    hist_pos = positions(item_ids, history.reshape(-1)).reshape(history.shape) + 1  # 0 unknown
    hist_pos[history == 0] = 0
    slot = group_ranks(rows) - 1
    n_slot = max(n, int(slot.max()) + 1)
    width = history.shape[1]
    for u0 in range(0, history.shape[0], EXPLAIN_USERS):
        u1 = min(history.shape[0], u0 + EXPLAIN_USERS)
        lo, hi = np.searchsorted(rows, [u0, u1])
        if lo == hi:
            continue
        rec = torch.zeros(u1 - u0, n_slot, dtype=torch.long)
        rec[torch.from_numpy(rows[lo:hi] - u0), torch.from_numpy(slot[lo:hi])] = torch.from_numpy(
            rec_index[lo:hi]
        )
        hp = torch.from_numpy(hist_pos[u0:u1])
        sims = torch.bmm(item_emb[rec], item_emb[hp].transpose(1, 2))  # (b, n_slot, H)
        sims = sims.masked_fill((hp == 0).unsqueeze(1), float("-inf"))
        # Most recent wins ties: argmax over the reversed history (first maximum) mapped back.
        best = width - 1 - torch.argmax(sims.flip(2), dim=2)
        has = torch.isfinite(sims.max(dim=2).values)
        chosen = torch.gather(torch.from_numpy(history[u0:u1]), 1, best)
        chosen = torch.where(has, chosen, torch.zeros_like(chosen))
        out[lo:hi] = chosen[
            torch.from_numpy(rows[lo:hi] - u0), torch.from_numpy(slot[lo:hi])
        ].numpy()
    return out
