"""User features on literal data: counts, ratings, recency, genre affinity, history, dense."""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING

import pytest

from recsys.features.item_features import GENRES, item_features
from recsys.features.split import TimeCutoff, split_interactions
from recsys.features.user_features import USER_DENSE_DIM, user_features
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from tests.recsys.features.conftest import LiteralData

pytestmark = pytest.mark.spark

ITEMS = [
    (1, "A", 2000, ["Action", "Comedy"], None),
    (2, "B", 2001, ["Drama"], None),
    (3, "C", 2002, ["Comedy"], None),
    (4, "D", 2003, ["Drama"], None),
]
# (user, item, rating, day); the cutoff is day 10.
ROWS = [
    (1, 1, 5.0, 1),
    (1, 2, 2.0, 2),
    (1, 3, 4.0, 4),
    (1, 4, 5.0, 12),  # after the cutoff
    (2, 2, 3.0, 7.5),
    (3, 4, 5.0, 11),  # only after the cutoff: no row
]


def test_user_feature_values(lit: LiteralData) -> None:
    split_df = split_interactions(lit.interactions(ROWS), TimeCutoff(lit.day(10)))
    items = item_features(lit.items(ITEMS), split_df, lit.day(10))
    out = {
        r[Col.USER_ID]: r
        for r in user_features(split_df, items, lit.day(10), history_len=5).collect()
    }
    assert set(out) == {1, 2}
    u = out[1]
    assert (u[Col.N_INTERACTIONS], u[Col.N_POSITIVE]) == (3, 2)
    assert u[Col.DAYS_SINCE_LAST] == pytest.approx(6.0)
    assert u[Col.MEAN_RATING] == pytest.approx(11 / 3)
    assert u[Col.STD_RATING] == pytest.approx(statistics.pstdev([5.0, 2.0, 4.0]))
    affinity = dict(zip(GENRES, u[Col.GENRE_AFFINITY], strict=True))
    # Positives are items 1 (Action, Comedy) and 3 (Comedy); the Drama item was rated 2.
    assert {g: v for g, v in affinity.items() if v} == {"Action": 0.5, "Comedy": 1.0}
    assert list(u[Col.HISTORY]) == [1, 3]  # oldest first, train positives only
    assert list(u[Col.HISTORY_INDEX]) == [1, 3]
    assert len(u[Col.DENSE]) == USER_DENSE_DIM
    assert list(u[Col.DENSE][5:]) == list(u[Col.GENRE_AFFINITY])
    # Two users: each standardised scalar is +-1 (or 0 where both are equal).
    assert all(math.isclose(abs(v), 1.0, rel_tol=1e-5) or v == 0 for v in u[Col.DENSE][:5])
    assert u[Col.AS_OF_TS] is not None
    v = out[2]
    assert (v[Col.N_POSITIVE], list(v[Col.HISTORY]), list(v[Col.HISTORY_INDEX])) == (0, [], [])
    assert v[Col.STD_RATING] == 0.0
    assert list(v[Col.GENRE_AFFINITY]) == [0.0] * len(GENRES)


def test_history_keeps_the_last_n(lit: LiteralData) -> None:
    split_df = split_interactions(lit.interactions(ROWS), TimeCutoff(lit.day(10)))
    items = item_features(lit.items(ITEMS), split_df, lit.day(10))
    row = user_features(split_df, items, lit.day(10), history_len=1).where("user_id = 1").first()
    assert row is not None
    assert list(row[Col.HISTORY]) == [3]


def test_bad_history_len_is_refused(lit: LiteralData) -> None:
    split_df = split_interactions(lit.interactions(ROWS), TimeCutoff(lit.day(10)))
    with pytest.raises(ValueError, match="history_len"):
        user_features(split_df, split_df, lit.day(10), history_len=0)
