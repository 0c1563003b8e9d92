"""Sequential co-visitation: literal matrices, vote weights, pair scores, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.training.covisit import (
    COVISIT_EPS,
    COVISIT_SCALE,
    CovisitConfig,
    covisit_feature,
    covisit_matrix,
    matrix_from_ids,
    pair_scores,
    recent_weights,
    truncate_rows,
)


def _random_sequences(seed: int, n_users: int, n_items: int) -> dict[int, list[int]]:
    rng = np.random.default_rng(seed)
    return {
        u: rng.integers(1, n_items + 1, size=int(rng.integers(0, 25))).tolist()
        for u in range(n_users)
    }


def test_matrix_counts_followers_within_the_window_with_step_decay() -> None:
    config = CovisitConfig(window=2, step_decay=0.5, last=3, recency_decay=0.5)
    # User 7: 1 -> 2 -> 3; user 8: 1 -> 3. Users never link to each other.
    m = covisit_matrix({7: [1, 2, 3], 8: [1, 3], 9: [4]}, 4, config).toarray()
    counts = np.zeros((5, 5))
    counts[1, 2] = 1.0  # 7: one step
    counts[2, 3] = 1.0  # 7: one step
    counts[1, 3] = 0.5 + 1.0  # 7: two steps (0.5), 8: one step
    want = counts / (1.0 + counts.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(m, want, rtol=1e-6)
    assert m[3].sum() == 0  # nothing follows 3; 2 never precedes 1
    assert m[2, 1] == 0


def test_matrix_of_nothing_is_empty_and_bad_indices_are_refused() -> None:
    config = CovisitConfig()
    assert covisit_matrix({1: [3]}, 4, config).nnz == 0
    with pytest.raises(ValueError, match=r"^sequences:"):
        covisit_matrix({1: [1, 5]}, 4, config)
    with pytest.raises(ValueError, match=r"^n_items:"):
        covisit_matrix({}, 0, config)


def test_votes_and_pair_scores_match_a_dense_reference() -> None:
    config = CovisitConfig(window=3, step_decay=0.8, last=2, recency_decay=0.5)
    rng = np.random.default_rng(0)
    seqs = {u: rng.integers(1, 9, size=int(rng.integers(2, 12))).tolist() for u in range(30)}
    m = covisit_matrix(seqs, 8, config)
    recent = [[0, 0, 3, 5, 5], [], [2, 7]]  # 0 = padding; user 0 keeps its last two: 5, 5
    w = recent_weights(recent, 8, config)
    dense_w = np.zeros((3, 9))
    dense_w[0, 5] = 1.0 + 0.5  # newest 5 (weight 1) and the one before (0.5)
    dense_w[2, 7], dense_w[2, 2] = 1.0, 0.5
    np.testing.assert_allclose(w.toarray(), dense_w)
    rows = np.array([0, 0, 1, 2, 2])
    items = np.array([1, 6, 4, 3, 8])
    want = (dense_w @ m.toarray())[rows, items]
    got = pair_scores(w, m, rows, items)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got[2] == 0  # a user without events scores 0
    with pytest.raises(ValueError, match=r"^items:"):
        pair_scores(w, m, rows, items[:2])
    assert pair_scores(w, m, rows[:0], items[:0]).shape == (0,)


def test_rows_keep_their_top_n_by_value_then_lower_column() -> None:
    m = sp.csr_matrix(
        np.array(
            [
                [0.0, 0.2, 0.5, 0.2, 0.1],
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 0.3, 0.0, 0.0, 0.0],
            ],
            dtype=np.float32,
        )
    )
    got = truncate_rows(m, 2).toarray()
    # Row 0: 0.5, then the tie 0.2/0.2 goes to the lower column (1).
    np.testing.assert_array_equal(got[0], np.array([0, 0.2, 0.5, 0, 0], dtype=np.float32))
    np.testing.assert_array_equal(got[1:], m.toarray()[1:])
    assert truncate_rows(m, 1).toarray()[0].tolist() == [0, 0, np.float32(0.5), 0, 0]
    with pytest.raises(ValueError, match=r"^top_n:"):
        truncate_rows(m, 0)


def test_truncation_keeps_the_untruncated_normalisation() -> None:
    seqs = _random_sequences(3, 40, 12)
    full = covisit_matrix(seqs, 12, CovisitConfig(window=4, top_n=10_000))
    cut = covisit_matrix(seqs, 12, CovisitConfig(window=4, top_n=3))
    assert int(np.diff(cut.indptr).max()) == 3 < int(np.diff(full.indptr).max())
    # Every kept entry is the untruncated entry, not renormalised over the kept ones.
    kept = cut.toarray()
    np.testing.assert_array_equal(kept[kept > 0], full.toarray()[kept > 0])
    # Each row kept its 3 largest values.
    dense_full = full.toarray()
    for r in range(13):
        if (dense_full[r] > 0).sum() > 3:
            assert kept[r][kept[r] > 0].min() >= np.sort(dense_full[r])[-3]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_n_at_least_the_longest_row_reproduces_the_untruncated_matrix(seed: int) -> None:
    seqs = _random_sequences(seed, 60, 30)
    full = covisit_matrix(seqs, 30, CovisitConfig(top_n=10**9))
    longest = int(np.diff(full.indptr).max())
    for top_n in (longest, longest + 1):
        same = covisit_matrix(seqs, 30, CovisitConfig(top_n=top_n))
        assert (same != full).nnz == 0
        np.testing.assert_array_equal(same.indptr, full.indptr)
        np.testing.assert_array_equal(same.indices, full.indices)
        np.testing.assert_array_equal(same.data, full.data)
    assert (covisit_matrix(seqs, 30, CovisitConfig(top_n=longest - 1)) != full).nnz > 0


def test_matrix_from_ids_maps_raw_ids_to_indices_and_drops_unknown_items() -> None:
    ids = np.array([10, 20, 30, 40])
    m = matrix_from_ids(
        np.array([10, 10, 40, 99, 20]),
        np.array([20, 30, 10, 10, 77]),
        np.array([0.5, 0.25, 0.125, 1.0, 1.0]),
        ids,
    )
    want = np.zeros((5, 5), dtype=np.float32)
    want[1, 2], want[1, 3], want[4, 1] = 0.5, 0.25, 0.125
    np.testing.assert_array_equal(m.toarray(), want)
    assert m.dtype == np.float32
    with pytest.raises(ValueError, match=r"^item_ids:"):
        matrix_from_ids(np.zeros(0), np.zeros(0), np.zeros(0), np.array([2, 1]))
    with pytest.raises(ValueError, match=r"^next_item_id, weight:"):
        matrix_from_ids(np.zeros(2), np.zeros(1), np.zeros(2), ids)


def test_feature_is_the_scaled_log_of_the_score() -> None:
    got = covisit_feature(np.array([0.0, 0.5]))
    want = [COVISIT_SCALE * math.log(COVISIT_EPS), COVISIT_SCALE * math.log(0.5 + COVISIT_EPS)]
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("window", 0),
        ("last", 1.5),
        ("step_decay", 0.0),
        ("recency_decay", 1.5),
        ("window", True),
        ("top_n", 0),
    ],
)
def test_config_refuses_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        CovisitConfig(**{field: value})  # type: ignore[arg-type]
