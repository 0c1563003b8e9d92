"""The hand-computed case shared by the pandas metric tests and the Spark parity tests."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture
def hand() -> dict[str, pd.DataFrame]:
    """The hand case (fresh frames for every test).

    recs:  user 1 -> a b c d    user 2 -> c a e    user 3 -> b e     (ranks 1.., in order)
    truth: user 1 -> {a, c}     user 2 -> {b, e, f}                  user 4 -> {a}
    User 3 has no ground truth (ignored by accuracy); user 4 has no list (scores 0).
    user 1 hits at ranks 1 and 3; user 2 hits at rank 3 (item e).
    catalog: a..h (8 items). Training: 4 users; a seen by 4, b by 2, c by 1, others by none.
    """
    return {
        "recs": pd.DataFrame(
            {
                "user_id": [1, 1, 1, 1, 2, 2, 2, 3, 3],
                "item_id": ["a", "b", "c", "d", "c", "a", "e", "b", "e"],
                "rank": [1, 2, 3, 4, 1, 2, 3, 1, 2],
            }
        ),
        "truth": pd.DataFrame(
            {"user_id": [1, 1, 2, 2, 2, 4], "item_id": ["a", "c", "b", "e", "f", "a"]}
        ),
        "catalog": pd.DataFrame({"item_id": list("abcdefgh")}),
        "train_counts": pd.DataFrame({"item_id": ["a", "b", "c"], "n_interactions": [4, 2, 1]}),
    }
