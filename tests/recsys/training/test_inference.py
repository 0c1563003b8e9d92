"""Offline scoring helpers: merged candidate pools and SASRec log-probabilities."""

from __future__ import annotations

import math

import pytest
import torch

from recsys.models.sasrec import SASRecConfig, SequentialRecommender
from recsys.training.data import ItemTable, UserTable
from recsys.training.inference import (
    SEQUENCE_SCALE,
    merge_candidates,
    merged_pool,
    ranker_dense,
    sasrec_item_vectors,
    sasrec_user_vectors,
    sequence_scores,
)

CPU = torch.device("cpu")


def test_merge_candidates_orders_by_best_rank_without_repeats() -> None:
    first = torch.tensor([[1, 2, 3], [7, 8, 9]])
    second = torch.tensor([[2, 4, 5], [7, 8, 9]])
    # Row 0 interleaved: 1, 2, 2, 4, 3, 5 -> first occurrences 1, 2, 4, 3, 5.
    assert merge_candidates(first, second, 3).tolist() == [[1, 2, 4], [7, 8, 9]]
    assert merge_candidates(first[:1], second[:1], 5)[0].tolist() == [1, 2, 4, 3, 5]
    # Row 1's identical lists have only 3 distinct items: asking for more is refused.
    with pytest.raises(ValueError, match=r"^width:"):
        merge_candidates(first, second, 4)
    with pytest.raises(ValueError, match=r"^second:"):
        merge_candidates(first, second[:1], 2)


def test_merged_pool_is_the_union_of_each_sources_top_items() -> None:
    a = torch.tensor([[float("-inf"), 5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    b = torch.tensor([[float("-inf"), 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    mask = torch.zeros_like(a, dtype=torch.bool)
    mask[:, 0] = True
    mask[:, 1] = True  # known item: never in the pool
    pool = merged_pool(a, b, mask, 2)
    assert pool.shape == (1, 4)
    assert set(pool[0].tolist()) == {2, 3, 6, 5}  # top 2 of a (2, 3) and of b (6, 5)
    assert pool[0].tolist() == [2, 6, 3, 5]


def _users(ids: list[int]) -> UserTable:
    n = len(ids) + 1
    return UserTable(
        rows={u: r + 1 for r, u in enumerate(ids)},
        user_ids=torch.tensor([0, *ids]),
        dense=torch.zeros(n, 2),
        history=torch.zeros(n, 3, dtype=torch.long),
        affinity=torch.zeros(n, 4),
        n_train=torch.zeros(n, dtype=torch.long),
    )


def test_sequence_scores_are_sasrecs_full_softmax_log_probabilities() -> None:
    torch.manual_seed(0)
    model = SequentialRecommender(SASRecConfig(n_items=12, max_len=4, d_model=8, dropout=0.0))
    users = _users([10, 11, 12])
    seqs = {10: [3, 1, 4, 1, 5], 12: [9]}  # 11 has none; 10 is cut to its last 4
    scores = sequence_scores(model, seqs, users, CPU)
    with torch.no_grad():
        logits = model.next_item_scores(torch.tensor([[1, 4, 1, 5], [0, 0, 0, 9]]))
    want = torch.log_softmax(logits[:, 1:], dim=1)
    torch.testing.assert_close(scores.matrix(torch.tensor([1, 3]))[:, 1:], want)
    items = torch.arange(1, 13)
    torch.testing.assert_close(scores.log_prob(torch.full((12,), 1), items), want[0])
    # No sequence (user 11, and row 0): every item 1/n.
    uniform = scores.log_prob(torch.tensor([2, 0]), torch.tensor([7, 7]))
    torch.testing.assert_close(uniform, torch.full((2,), -math.log(12)))
    assert not torch.isnan(scores.users).any()
    assert scores.matrix(torch.tensor([1]))[0, 0] == float("-inf")
    # The vectors serving multiplies are the same ones.
    with torch.no_grad():
        u = sasrec_user_vectors(model, torch.tensor([[1, 4, 1, 5]]))
    torch.testing.assert_close(u @ sasrec_item_vectors(model)[1:].T, want[:1])


def test_ranker_dense_appends_the_scaled_sequence_score_after_the_retrieval_score() -> None:
    users = _users([10])
    items = ItemTable(
        item_ids=torch.tensor([0, 5, 6]),
        genres=torch.zeros(3, 4),
        year=torch.zeros(3),
        content=torch.zeros(3, 0),
        is_cold=torch.tensor([False, False, True]),
        log_count=torch.tensor([0.0, 1.0, 0.0]),
    )
    rows, idx = torch.tensor([1, 1]), torch.tensor([1, 2])
    plain = ranker_dense(users, items, rows, idx, torch.tensor([0.1, 0.2]))
    seq = ranker_dense(
        users, items, rows, idx, torch.tensor([0.1, 0.2]), torch.tensor([-2.0, -9.0])
    )
    assert plain.shape == (2, 2 + 4)
    assert seq.shape == (2, 2 + 5)
    torch.testing.assert_close(seq[:, :-1], plain)
    torch.testing.assert_close(seq[:, 2 + 3], torch.tensor([0.5, 1.0]))  # retrieval column
    # Item 6 is cold: SASRec's score there is noise, replaced by log(1/n) with n = 2 items.
    want = torch.tensor([-2.0, -math.log(2)]) * SEQUENCE_SCALE
    torch.testing.assert_close(seq[:, -1], want)
