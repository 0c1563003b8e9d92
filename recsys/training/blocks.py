"""Full-catalogue ranking in blocks of users: known items kept sparse, top-K lists out.

Validation and evaluation never hold a users x items matrix: users are taken in blocks
(:func:`user_block` rows, the CPU score-block budget of :func:`recsys.kernels.blocks_for`),
each block's scores are computed against every item, the block's known items are set to
``-inf`` through a dense mask of that block only (:meth:`KnownItems.mask`), and only the top-K
item indices per user are kept (:func:`top_k_fast`, exact and equal to
:func:`recsys.training.inference.top_k`). Known items themselves stay sparse (CSR arrays).

Rows are scored independently, so a block's result does not depend on the other blocks: the
lists equal those of one dense pass (the equality test in ``tests/recsys/training``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from recsys.kernels import blocks_for, topk_rows
from recsys.training.data import TRAIN, VALIDATION, held_out
from recsys.warehouse.tables import Col

NDArray = np.ndarray[Any, Any]


def user_block(n_items: int) -> int:
    """Users per score block for a catalogue of ``n_items``: as many as fit the CPU score-block
    budget of :func:`recsys.kernels.blocks_for` (8M floats: 861 users at 9,742 items,
    83 at 100,000), within [16, 65536]."""
    return blocks_for(torch.device("cpu"), n_items + 1)[0]


@dataclass(frozen=True)
class KnownItems:
    """Item indices each of ``n`` users already knows, as CSR arrays.

    Attributes:
        indptr: ``(n + 1,)`` int64; row ``r``'s items are ``cols[indptr[r]:indptr[r + 1]]``.
        cols: int64 item indices in ``1..n_items`` (repeats allowed).
    """

    indptr: NDArray
    cols: NDArray

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def mask(self, start: int, stop: int, n_items: int) -> Tensor:
        """``(stop - start, n_items + 1)`` bool of rows ``start:stop``: True at known items and
        at column 0 (padding), as :func:`recsys.training.inference.known_mask`."""
        if not 0 <= start <= stop <= self.n_users:
            raise ValueError(f"start, stop: need 0 <= start <= stop <= {self.n_users}")
        out = torch.zeros(stop - start, n_items + 1, dtype=torch.bool)
        out[:, 0] = True
        lo, hi = int(self.indptr[start]), int(self.indptr[stop])
        rows = np.repeat(np.arange(stop - start), np.diff(self.indptr[start : stop + 1]))
        out[torch.from_numpy(rows), torch.from_numpy(self.cols[lo:hi])] = True
        return out


def known_items_of(
    users: Sequence[int], pairs: pd.DataFrame, roles: tuple[str, ...], index_of: Mapping[int, int]
) -> KnownItems:
    """:class:`KnownItems` of ``users`` (in that order): the items of their interactions in
    ``roles`` found in ``index_of`` (raw item id -> item index)."""
    sub = pairs[pairs[Col.ROLE].isin(roles)]
    row = pd.Index(np.asarray(users, dtype=np.int64)).get_indexer(
        pd.Index(sub[Col.USER_ID].to_numpy(np.int64))
    )
    lookup = pd.Series(dict(index_of), dtype=np.int64)
    col = sub[Col.ITEM_ID].astype(np.int64).map(lookup).fillna(-1).to_numpy(np.int64)
    keep = (row >= 0) & (col >= 1)
    row, col = row[keep], col[keep]
    order = np.argsort(row, kind="stable")
    row, col = row[order], col[order]
    indptr = np.searchsorted(row, np.arange(len(users) + 1)).astype(np.int64)
    return KnownItems(indptr=indptr, cols=col.astype(np.int64))


@dataclass(frozen=True)
class EvalTask:
    """One role's ranking task: the users with held-out positives of the role (ascending), the
    items each already knows (every interaction before the role), the target item indices and
    the raw ground truth (user_id, item_id)."""

    users: list[int]
    known: KnownItems
    targets: list[set[int]]
    truth: pd.DataFrame

    def mask(self, start: int, stop: int, n_items: int) -> Tensor:
        """Dense known-item mask of users ``start:stop`` (see :meth:`KnownItems.mask`)."""
        return self.known.mask(start, stop, n_items)


def eval_task(pairs: pd.DataFrame, role: str, index_of: Mapping[int, int]) -> EvalTask:
    """The :class:`EvalTask` of ``role`` over the users of ``pairs`` (a sample's interactions).

    Known items are every interaction before ``role`` (train; plus validation for test).
    """
    before = (TRAIN,) if role == VALIDATION else (TRAIN, VALIDATION)
    truth = held_out(pairs, role)
    users = sorted(int(u) for u in truth[Col.USER_ID].unique())
    by_user = truth.groupby(Col.USER_ID)[Col.ITEM_ID].apply(
        lambda s: {index_of[int(i)] for i in s if int(i) in index_of}
    )
    return EvalTask(
        users=users,
        known=known_items_of(users, pairs, before, index_of),
        targets=[by_user[u] for u in users],
        truth=truth,
    )


def top_k_fast(scores: Tensor, mask: Tensor, k: int) -> Tensor:
    """:func:`recsys.training.inference.top_k` through the kernels' exact top-k.

    Indices ``(U, min(k, C))`` of the best unmasked columns, best first, ties by lower column;
    rows with fewer than ``k`` unmasked columns continue with the masked ones in column order,
    exactly as the stable full sort does (those rows are sorted in full).
    """
    s = scores.masked_fill(mask, float("-inf"))
    k = min(k, s.shape[1])
    if k < 1:
        return torch.zeros(s.shape[0], 0, dtype=torch.long)
    vals, idx = topk_rows(s, k)
    short = ~torch.isfinite(vals[:, -1])
    if bool(short.any()):
        rows = short.nonzero().squeeze(1)
        idx[rows] = torch.sort(s[rows], dim=1, descending=True, stable=True).indices[:, :k]
    return idx


def drop_known(top: Tensor, mask: Tensor) -> Tensor:
    """``top`` ``(U, K)`` with every entry ``mask`` ``(U, n + 1)`` marks replaced by 0."""
    return top.masked_fill(mask.gather(1, top), 0)


def in_blocks(
    n_users: int, block: int, fn: Callable[[int, int], tuple[Tensor, ...]]
) -> tuple[Tensor, ...]:
    """``fn(start, stop)`` over consecutive blocks of at most ``block`` users, each output
    concatenated along rows (``fn(0, 0)`` once when there are no users)."""
    if block < 1:
        raise ValueError(f"block: must be >= 1, got {block!r}")
    if n_users == 0:
        return fn(0, 0)
    parts = [fn(s, min(n_users, s + block)) for s in range(0, n_users, block)]
    return tuple(torch.cat(list(p)) for p in zip(*parts, strict=True))


def ranked(
    task: EvalTask,
    n_items: int,
    scores: Callable[[Sequence[int]], Tensor],
    k: int,
    block: int | None = None,
) -> Tensor:
    """Top-``k`` item indices ``(U, k)`` of the task's users under ``scores`` (users ->
    ``(B, n_items + 1)`` scores), known items and padding removed (0 entries), in blocks."""
    size = user_block(n_items) if block is None else block

    def one(start: int, stop: int) -> tuple[Tensor, ...]:
        mask = task.mask(start, stop, n_items)
        return (drop_known(top_k_fast(scores(task.users[start:stop]), mask, k), mask),)

    return in_blocks(len(task.users), size, one)[0]
