"""Ranking in blocks of users equals the dense users x items ranking it replaces, exactly."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import torch

from recsys.training import data as D
from recsys.training.blocks import (
    KnownItems,
    drop_known,
    eval_task,
    in_blocks,
    known_items_of,
    ranked,
    top_k_fast,
)
from recsys.training.data import ItemTable
from recsys.training.inference import known_mask, recs_frame, top_k
from recsys.warehouse.tables import Col


def _scores(n_users: int, n_cols: int, seed: int) -> torch.Tensor:
    """Scores with many exact ties (values on a coarse grid) and column 0 at -inf."""
    gen = torch.Generator().manual_seed(seed)
    s = torch.randint(0, 7, (n_users, n_cols), generator=gen).float() / 4
    s[:, 0] = float("-inf")
    return s


@pytest.mark.parametrize(("n_cols", "k"), [(12, 5), (12, 12), (12, 40), (400, 10), (400, 100)])
def test_fast_top_k_equals_the_stable_sort(n_cols: int, k: int) -> None:
    scores = _scores(30, n_cols, seed=n_cols + k)
    gen = torch.Generator().manual_seed(1)
    mask = torch.rand(30, n_cols, generator=gen) < 0.3
    mask[:, 0] = True
    mask[3, :] = True  # a user who knows everything
    mask[4, : n_cols - 2] = True  # two items left: the rest of the list is masked columns
    assert torch.equal(top_k_fast(scores, mask, k), top_k(scores, mask, k))


def _pairs(n_users: int, n_items: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        items = rng.choice(np.arange(1, n_items + 3), size=int(rng.integers(3, 12)), replace=False)
        for j, item in enumerate(items):
            role = (
                "train" if j < len(items) - 2 else ("validation" if j == len(items) - 2 else "test")
            )
            rows.append(
                {
                    Col.USER_ID: 100 + u,
                    Col.ITEM_ID: int(item),  # ids n_items + 1, n_items + 2: not in the catalogue
                    Col.IS_POSITIVE: bool(rng.random() < 0.8),
                    Col.EVENT_TS: datetime(2020, 1, 1 + j),
                    Col.ROLE: role,
                }
            )
    return pd.DataFrame(rows)


def test_known_items_match_the_dense_mask() -> None:
    pairs = _pairs(25, 30, seed=0)
    index_of = {i: i for i in range(1, 31)}
    users = sorted(pairs[Col.USER_ID].unique().tolist())
    roles = (D.TRAIN, D.VALIDATION)
    known = known_items_of(users, pairs, roles, index_of)
    dense = known_mask(users, D.known_items(pairs, roles), index_of, 30)
    assert torch.equal(known.mask(0, len(users), 30), dense)
    assert torch.equal(known.mask(5, 9, 30), dense[5:9])
    assert known.mask(7, 7, 30).shape == (0, 31)
    with pytest.raises(ValueError, match="start, stop"):
        known.mask(3, len(users) + 1, 30)


@pytest.mark.parametrize("block", [1, 3, 7, 1024])
def test_blocked_ranking_equals_the_dense_ranking(block: int) -> None:
    """The old path (dense scores, dense mask, stable sort, recs_frame dropping masked
    entries) and the blocked one give the same recommendation frame, for any block size."""
    n_items, k = 30, 10
    pairs = _pairs(23, n_items, seed=2)
    index_of = {i: i for i in range(1, n_items + 1)}
    items = ItemTable(
        item_ids=torch.arange(n_items + 1),
        genres=torch.zeros(n_items + 1, 1),
        year=torch.zeros(n_items + 1),
        content=torch.zeros(n_items + 1, 0),
        is_cold=torch.zeros(n_items + 1, dtype=torch.bool),
        log_count=torch.zeros(n_items + 1),
    )
    task = eval_task(pairs, D.TEST, index_of)
    table = _scores(len(task.users), n_items + 1, seed=5)
    row_of = {u: r for r, u in enumerate(task.users)}

    def scores(ids: Sequence[int]) -> torch.Tensor:
        return table[[row_of[u] for u in ids]]

    # The dense reference, as jobs.evaluate computed it before blocks.
    before = (D.TRAIN, D.VALIDATION)
    mask = known_mask(task.users, D.known_items(pairs, before), index_of, n_items)
    dense_top = top_k(table, mask, k)
    keep = ~mask.gather(1, dense_top)
    want = pd.DataFrame(
        {
            Col.USER_ID: torch.tensor(task.users).unsqueeze(1).expand_as(dense_top)[keep].numpy(),
            Col.ITEM_ID: dense_top[keep].numpy(),
            "rank": keep.long().cumsum(1)[keep].numpy(),
        }
    )
    got = recs_frame(task.users, ranked(task, n_items, scores, k, block=block), items)
    pd.testing.assert_frame_equal(got, want)
    # The targets are the held-out positives of the role (items in the catalogue).
    truth = D.held_out(pairs, D.TEST)
    assert task.truth.equals(truth)
    for user, target in zip(task.users, task.targets, strict=True):
        ids = set(truth.loc[truth[Col.USER_ID] == user, Col.ITEM_ID].tolist())
        assert target == {i for i in ids if i in index_of}


def test_validation_task_knows_only_train_items() -> None:
    pairs = _pairs(10, 20, seed=3)
    index_of = {i: i for i in range(1, 21)}
    task = eval_task(pairs, D.VALIDATION, index_of)
    dense = known_mask(task.users, D.known_items(pairs, (D.TRAIN,)), index_of, 20)
    assert torch.equal(task.mask(0, len(task.users), 20), dense)


def test_drop_known_and_empty_blocks() -> None:
    top = torch.tensor([[3, 1, 0], [2, 2, 1]])
    mask = torch.zeros(2, 4, dtype=torch.bool)
    mask[:, 0], mask[0, 1] = True, True
    assert drop_known(top, mask).tolist() == [[3, 0, 0], [2, 2, 1]]
    calls: list[tuple[int, int]] = []

    def fn(start: int, stop: int) -> tuple[torch.Tensor, ...]:
        calls.append((start, stop))
        return (torch.arange(start, stop).unsqueeze(1),)

    assert in_blocks(7, 3, fn)[0].squeeze(1).tolist() == list(range(7))
    assert calls == [(0, 3), (3, 6), (6, 7)]
    assert in_blocks(0, 3, fn)[0].shape == (0, 1)
    with pytest.raises(ValueError, match="block"):
        in_blocks(3, 0, fn)
    empty = KnownItems(indptr=np.zeros(1, dtype=np.int64), cols=np.zeros(0, dtype=np.int64))
    assert empty.n_users == 0
