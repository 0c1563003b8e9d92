"""Sequential co-visitation: literal matrices, vote weights, pair scores, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.training.covisit import (
    COVISIT_EPS,
    COVISIT_SCALE,
    CovisitConfig,
    covisit_feature,
    covisit_matrix,
    pair_scores,
    recent_weights,
)


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
    got = pair_scores(w, m.T.tocsr(), rows, items)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got[2] == 0  # a user without events scores 0
    with pytest.raises(ValueError, match=r"^items:"):
        pair_scores(w, m.T.tocsr(), rows, items[:2])


def test_feature_is_the_scaled_log_of_the_score() -> None:
    got = covisit_feature(np.array([0.0, 0.5]))
    want = [COVISIT_SCALE * math.log(COVISIT_EPS), COVISIT_SCALE * math.log(0.5 + COVISIT_EPS)]
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize(
    ("field", "value"),
    [("window", 0), ("last", 1.5), ("step_decay", 0.0), ("recency_decay", 1.5), ("window", True)],
)
def test_config_refuses_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        CovisitConfig(**{field: value})  # type: ignore[arg-type]
