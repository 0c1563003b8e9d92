"""Exact top-K cosine neighbours by blocked matrix products (numpy only, no Spark).

For ``n`` items of dimension ``d`` the work is ``n * n * d`` multiply-adds in blocks of
``block_rows`` query rows, so memory stays at ``block_rows * n`` floats (float32: 512 x 20k =
41 MB) whatever the catalogue size. Ties are broken by the smaller position (with positions in
``item_id`` order: the smaller id), so results are deterministic even for identical vectors.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from recsys.validation import check_int

FloatMatrix = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def unit_rows(vectors: npt.ArrayLike) -> FloatMatrix:
    """Rows scaled to unit L2 norm as float32; all-zero (or non-finite) rows stay zero.

    Raises:
        ValueError: ``vectors`` is not a 2-D array.
    """
    mat = np.asarray(vectors, dtype=np.float32)
    if mat.ndim != 2:
        raise ValueError(f"vectors: expected a 2-D array, got shape {mat.shape!r}")
    mat = np.where(np.isfinite(mat), mat, np.float32(0.0)).astype(np.float32)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    out = np.zeros_like(mat)
    np.divide(mat, norms, out=out, where=norms > 0)
    return out


def top_k_cosine(
    unit: FloatMatrix, positions: IntArray, k: int, block_rows: int = 512
) -> tuple[IntArray, FloatMatrix]:
    """The ``k`` rows of ``unit`` most similar to each row ``positions[i]``, itself excluded.

    Args:
        unit: ``n x d`` unit-norm rows (:func:`unit_rows`): the whole catalogue.
        positions: Row numbers of the queries, each in ``[0, n)``.
        k: Neighbours per query, >= 1; fewer (``n - 1``) when the catalogue is smaller.
        block_rows: Queries per matrix product, >= 1 (memory ``block_rows * n`` floats).

    Returns:
        ``(neighbours, scores)``: both ``len(positions) x min(k, n - 1)``, neighbours as row
        numbers of ``unit``, ordered by cosine descending, then row number ascending.

    Raises:
        ValueError: ``k`` or ``block_rows`` < 1, or a position is out of range.
    """
    check_int("k", k, 1)
    check_int("block_rows", block_rows, 1)
    n = unit.shape[0]
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size and (positions.min() < 0 or positions.max() >= n):
        raise ValueError(
            f"positions: must lie in [0, {n}), got {positions.min()}..{positions.max()}"
        )
    k_eff = min(k, n - 1) if n > 0 else 0
    neighbours = np.empty((positions.size, k_eff), dtype=np.int64)
    scores = np.empty((positions.size, k_eff), dtype=np.float32)
    if k_eff == 0:
        return neighbours, scores
    for start in range(0, positions.size, block_rows):
        pos = positions[start : start + block_rows]
        rows = np.arange(pos.size)
        sims = unit[pos] @ unit.T
        sims[rows, pos] = -np.inf
        # Exactly k_eff per row: everything above the k-th largest value, then the ties at that
        # value with the smallest row numbers (np.nonzero walks each row in column order).
        kth = np.partition(sims, n - k_eff, axis=1)[:, n - k_eff : n - k_eff + 1]
        above = sims > kth
        ties = sims == kth
        need = k_eff - above.sum(axis=1, keepdims=True, dtype=np.int32)
        chosen = above | ties
        excess = np.flatnonzero(ties.sum(axis=1, dtype=np.int32) > need[:, 0])
        if excess.size:  # rare with real embeddings: only rows with surplus ties pay a cumsum
            first = np.cumsum(ties[excess], axis=1, dtype=np.int32) <= need[excess]
            chosen[excess] = above[excess] | (ties[excess] & first)
        cols = np.nonzero(chosen)[1].reshape(pos.size, k_eff)
        vals = sims[rows[:, None], cols]
        order = np.argsort(-vals, axis=1, kind="stable")
        neighbours[start : start + pos.size] = np.take_along_axis(cols, order, axis=1)
        scores[start : start + pos.size] = np.take_along_axis(vals, order, axis=1)
    return neighbours, scores
