"""Pure kernels on tiny literal arrays: top-k with exclusion, ties, blocks, explanations."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from recsys import kernels as K
from recsys.scoring.embeddings import history_matrix
from recsys.scoring.retrieval import retrieve_local
from recsys.training.inference import top_k
from recsys.warehouse.tables import Col

CPU = torch.device("cpu")


def _items(df: object) -> list[list[int]]:
    import pandas as pd

    assert isinstance(df, pd.DataFrame)
    return [g[Col.ITEM_ID].tolist() for _, g in df.groupby(Col.USER_ID, sort=True)]


def test_topk_excludes_seen_and_orders_by_score() -> None:
    users = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    items = np.array([[0.9, 0.1], [0.5, 0.5], [0.1, 0.9], [0.8, 0.0]], dtype=np.float32)
    out = retrieve_local(users, [7, 8], items, [10, 20, 30, 40], 2, {7: [10]}, device=CPU)
    assert _items(out) == [[40, 20], [30, 20]]
    assert out[Col.CANDIDATE_RANK].tolist() == [1, 2, 1, 2]
    assert out[Col.RETRIEVAL_SCORE].tolist() == pytest.approx([0.8, 0.5, 0.9, 0.5])


def test_ties_go_to_the_lower_item_id_whatever_the_input_order() -> None:
    users = np.ones((1, 1), dtype=np.float32)
    items = np.array([[2.0], [1.0], [2.0], [2.0], [1.0]], dtype=np.float32)
    out = retrieve_local(users, [1], items, [50, 40, 30, 20, 10], 2, device=CPU)
    assert out[Col.ITEM_ID].tolist() == [20, 30]
    out = retrieve_local(users, [1], items, [50, 40, 30, 20, 10], 4, device=CPU)
    assert out[Col.ITEM_ID].tolist() == [20, 30, 50, 10]


def test_fewer_unseen_items_than_k_returns_them_all() -> None:
    users = np.array([[1.0], [2.0]], dtype=np.float32)
    items = np.array([[3.0], [1.0], [2.0]], dtype=np.float32)
    out = retrieve_local(users, [1, 2], items, [1, 2, 3], 10, {1: [1, 2, 3], 2: [3]}, device=CPU)
    assert _items(out) == [[1, 2]]
    assert out[Col.USER_ID].tolist() == [2, 2]


def test_blocks_smaller_than_k_match_a_full_stable_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    users = rng.normal(size=(37, 4)).astype(np.float32)
    items = np.round(rng.normal(size=(29, 4))).astype(np.float32)  # many exact ties
    seen = {u: list(rng.choice(29, 5, replace=False)) for u in range(37)}
    monkeypatch.setattr(K, "MAX_ITEM_BLOCK", 4)
    monkeypatch.setattr(K, "CPU_BLOCK_FLOATS", 4 * 8)
    out = retrieve_local(users, np.arange(37), items, np.arange(29), 9, seen, device=CPU)
    scores = torch.from_numpy(users @ items.T)
    mask = torch.zeros(37, 29, dtype=torch.bool)
    for u, its in seen.items():
        mask[u, its] = True
    ref = top_k(scores, mask, 9)
    assert _items(out) == ref.tolist()


def test_topk_rows_breaks_cut_ties_exactly() -> None:
    scores = torch.tensor([[1.0, 3.0, 2.0, 2.0, 2.0], [0.0, float("-inf"), 5.0, 5.0, 1.0]])
    vals, idx = K.topk_rows(scores, 3)
    assert idx.tolist() == [[1, 2, 3], [2, 3, 4]]
    assert vals[0].tolist() == [3.0, 2.0, 2.0]


def _reference_topk(scores: torch.Tensor, k: int) -> tuple[list[list[float]], list[list[int]]]:
    """Brute force: each row sorted by (value descending, column ascending), first k."""
    vals, cols = [], []
    for row in scores.tolist():
        order = sorted(range(len(row)), key=lambda c: (-row[c], c))[:k]
        vals.append([row[c] for c in order])
        cols.append(order)
    return vals, cols


@pytest.mark.parametrize("k", [1, 7, 30])
def test_prefiltered_topk_equals_brute_force(k: int) -> None:
    gen = torch.Generator().manual_seed(k)
    n_cols = 8 * 4 * (k + 8) + 5  # wide enough for the pre-filter, not a multiple of the group
    scores = torch.randn(40, n_cols, generator=gen)
    scores[:10] = (scores[:10] * 2).round() / 2  # many ties, also across the cut
    scores[10:20, ::3] = float("-inf")  # exclusions
    scores[20, : n_cols - k + 1] = float("-inf")  # fewer than k allowed columns
    scores[21, :] = float("-inf")
    scores[22, 1::2] = scores[22, 0]  # one value repeated in every group
    assert -(-n_cols // K._TOPK_GROUP) >= K._TOPK_PREFILTER_RATIO * (k + K._TOPK_SLACK)
    vals, idx = K.topk_rows(scores, k)
    want_vals, want_cols = _reference_topk(scores, k)
    assert vals.tolist() == want_vals
    # Columns of -inf entries are unspecified (callers drop them); finite ones must match.
    finite = torch.isfinite(vals)
    got = [
        [c for c, f in zip(r, m, strict=True) if f]
        for r, m in zip(idx.tolist(), finite.tolist(), strict=True)
    ]
    want = [
        [c for c, f in zip(r, m, strict=True) if f]
        for r, m in zip(want_cols, finite.tolist(), strict=True)
    ]
    assert got == want
    assert not finite[21].any()
    assert int(finite[20].sum()) == k - 1
    # A column slice (not contiguous, as SASRec's scores without the padding column).
    wide = torch.cat([torch.zeros(40, 1), scores], dim=1)
    sliced_vals, sliced_idx = K.topk_rows(wide[:, 1:], k)
    assert torch.equal(sliced_vals, vals)
    assert torch.equal(sliced_idx[finite], idx[finite])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="k"):
        retrieve_local(np.ones((1, 1)), [1], np.ones((1, 1)), [1], 0)
    with pytest.raises(ValueError, match="item_ids"):
        retrieve_local(np.ones((1, 1)), [1], np.ones((2, 1)), [1, 1], 1)
    with pytest.raises(ValueError, match="user_vecs"):
        retrieve_local(np.ones((1, 2)), [1], np.ones((2, 1)), [1, 2], 1)


def test_list_helpers_and_history_padding() -> None:
    col = pa.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], pa.list_(pa.float32())).slice(1)
    assert K.list_matrix(col, 2).tolist() == [[3.0, 4.0], [5.0, 6.0]]
    with pytest.raises(ValueError, match="column"):
        K.list_matrix(col, 3)
    lists = K.matrix_lists(np.array([[1.5, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=np.float64))
    assert lists.type == pa.list_(pa.float32())
    assert lists.to_pylist() == [[1.5, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert K.list_matrix(lists, 2).tolist() == [[1.5, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert len(K.matrix_lists(np.zeros((0, 3), dtype=np.float32))) == 0
    hist = pa.array([[1, 2, 3], [], None, [9]], pa.list_(pa.int64()))
    assert history_matrix(hist, 2).tolist() == [[2, 3], [0, 0], [0, 0], [0, 9]]
    assert K.positions(np.array([2, 5, 9]), np.array([5, 3, 9, 1])).tolist() == [1, -1, 2, -1]
    assert K.group_ranks(np.array([0, 0, 2, 2, 2, 5])).tolist() == [1, 2, 1, 2, 3, 1]


def test_explanation_is_the_most_similar_history_item_ties_most_recent() -> None:
    item_ids = np.array([10, 20, 30, 40])
    emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    # user 0 watched 10, 30 (30 is more recent, same vector as 10); user 1 watched 20;
    # user 2 has no known history item.
    history = np.array([[10, 30], [0, 20], [0, 99]])
    rows = np.array([0, 0, 1, 2])
    rec_index = np.array([4, 2, 4, 1])  # items 40, 20, 40, 10
    out = K.explain_items(item_ids, emb, history, rows, rec_index, 2)
    assert out.tolist() == [30, 30, 20, 0]


def test_reserve_slots_keeps_the_best_cold_entry_in_each_list() -> None:
    rows = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2])
    cold = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    # Row 0: the best cold entry (index 3) replaces the second place; row 1's cold entry is
    # already in the top 2; row 2 has none and keeps its plain top 2.
    assert K.reserve_slots(rows, cold, 2, 1).tolist() == [1, 0, 0, 1, 0, 1, 1, 0, 1, 1]
    assert K.reserve_slots(rows, cold, 2, 0).tolist() == [1, 1, 0, 0, 0, 1, 1, 0, 1, 1]
    assert K.reserve_slots(rows, cold, 3, 2).tolist() == [1, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    # More slots than places: the list is all cold entries, never longer than n.
    assert K.reserve_slots(rows, cold, 1, 5).tolist() == [0, 0, 0, 1, 0, 1, 0, 0, 1, 0]
    assert K.reserve_slots(np.zeros(0, np.int64), np.zeros(0, bool), 3, 1).tolist() == []


def test_reserve_slots_matches_a_per_list_loop() -> None:
    rng = np.random.default_rng(7)
    rows = np.sort(rng.integers(0, 40, 600))
    cold = rng.random(600) < 0.1
    for n, slots in [(1, 1), (5, 0), (5, 1), (5, 2), (12, 3)]:
        got = K.reserve_slots(rows, cold, n, slots)
        want = np.zeros(600, dtype=bool)
        for r in np.unique(rows):
            at = np.flatnonzero(rows == r)
            forced = [i for i in at if cold[i]][: min(slots, n)]
            others = [i for i in at if i not in forced][: n - len(forced)]
            want[forced + others] = True
        np.testing.assert_array_equal(got, want, err_msg=f"n={n} slots={slots}")


def test_reserve_slots_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"^n:"):
        K.reserve_slots(np.array([0]), np.array([True]), 0, 1)
    with pytest.raises(ValueError, match=r"^slots:"):
        K.reserve_slots(np.array([0]), np.array([True]), 1, -1)


def test_reserve_cold_cuts_ranked_matrices_like_serving() -> None:
    from recsys.training.inference import reserve_cold

    ordered = torch.tensor([[3, 1, 2, 4], [4, 2, 1, 3]])
    is_cold = torch.tensor([False, False, False, False, True])  # index 0 is padding
    assert reserve_cold(ordered, is_cold, 2, 1).tolist() == [[3, 4], [4, 2]]
    assert reserve_cold(ordered, is_cold, 2, 0).tolist() == [[3, 1], [4, 2]]
    assert reserve_cold(ordered, is_cold, 9, 1).shape == (2, 4)
