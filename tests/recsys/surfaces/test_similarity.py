"""Blocked exact top-K cosine (numpy only): self excluded, order, ties, blocks, brute force."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.surfaces.similarity import top_k_cosine, unit_rows


def test_self_excluded_and_ordered() -> None:
    vectors = unit_rows(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]]))
    cols, scores = top_k_cosine(vectors, np.arange(4), k=3)
    assert cols.shape == (4, 3)
    assert cols[0].tolist() == [1, 2, 3]
    assert cols[3].tolist() == [2, 1, 0]
    for row in range(4):
        assert row not in cols[row].tolist()
        assert list(scores[row]) == sorted(scores[row], reverse=True)
    assert scores[0, 0] == pytest.approx(0.9 / np.hypot(0.9, 0.1), rel=1e-6)


def test_ties_go_to_the_smaller_row_and_zero_vectors_are_safe() -> None:
    # Five identical vectors and a zero one: every score ties.
    vectors = unit_rows([[1, 1]] * 5 + [[0, 0]])
    cols, scores = top_k_cosine(vectors, np.arange(6), k=2)
    assert cols.tolist() == [[1, 2], [0, 2], [0, 1], [0, 1], [0, 1], [0, 1]]
    assert np.all(scores[5] == 0.0)
    assert np.all(np.isfinite(unit_rows([[np.nan, 1.0]])))


def test_k_larger_than_catalogue() -> None:
    cols, _ = top_k_cosine(unit_rows(np.eye(3)), np.arange(3), k=50)
    assert cols.shape == (3, 2)
    single, _ = top_k_cosine(unit_rows([[1.0, 0.0]]), np.arange(1), k=5)
    assert single.shape == (1, 0)


def test_matches_brute_force_for_any_block_size() -> None:
    rng = np.random.default_rng(7)
    vectors = unit_rows(rng.normal(size=(300, 16)))
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    expected = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    positions = rng.permutation(300)
    for block in (1, 7, 64, 1000):
        cols, scores = top_k_cosine(vectors, positions, k=10, block_rows=block)
        assert np.array_equal(cols, expected[positions])
        assert np.allclose(scores, np.take_along_axis(sims[positions], cols, axis=1))


@pytest.mark.parametrize(
    ("k", "block_rows", "positions", "match"),
    [(0, 8, [0], "k"), (3, 0, [0], "block_rows"), (3, 8, [5], "positions")],
)
def test_rejects_bad_arguments(k: int, block_rows: int, positions: list[int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        top_k_cosine(unit_rows(np.eye(3)), np.asarray(positions), k=k, block_rows=block_rows)


def test_unit_rows_rejects_1d() -> None:
    with pytest.raises(ValueError, match="vectors"):
        unit_rows([1.0, 2.0])
