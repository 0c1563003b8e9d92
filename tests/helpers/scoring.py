"""Random item-side inputs of the ranking kernels, for the scoring tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from recsys.scoring.rank_inputs import ItemArrays


def random_item_arrays(
    rng: np.random.Generator,
    item_ids: npt.NDArray[np.int64],
    embedding: npt.NDArray[np.float32],
    n_genres: int,
    **members: Any,
) -> ItemArrays:
    """``ItemArrays`` of ``item_ids`` with random multi-hot genres (about 40 % set), log counts
    in [0, 5), about 20 % cold items (drawn from ``rng`` in that order) and ``embedding`` (one
    row per item) scaled to unit length; ``members``: the other fields (sequence, co-visitation)."""
    n = len(item_ids)
    return ItemArrays(
        item_ids=item_ids,
        genres=(rng.random((n, n_genres)) > 0.6).astype(np.float32),
        log_count=rng.random(n).astype(np.float32) * 5,
        is_cold=rng.random(n) > 0.8,
        embedding=embedding / np.linalg.norm(embedding, axis=1, keepdims=True),
        **members,
    )
