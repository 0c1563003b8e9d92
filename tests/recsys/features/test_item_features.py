"""Item features on literal data: index, popularity, decay, genres, year, text, cold items."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pytest

from recsys.features.item_features import GENRES, N_GENRES, ItemFeatureConfig, item_features
from recsys.features.split import TimeCutoff, split_interactions
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from tests.recsys.features.conftest import LiteralData

pytestmark = pytest.mark.spark

ITEMS = [
    (30, "Zed", 2000, ["Comedy", "Sci-Fi"], "aliens, funny"),
    (7, "Alpha", 1990, [], None),
    (12, "Mid", None, ["Unknown-Genre"], ""),
]


def test_item_features_values(lit: LiteralData) -> None:
    # Cutoff on day 10: item 30 has two train events (days 0 and 9), item 7 one after the cutoff.
    split = TimeCutoff(lit.day(10))
    inter = lit.interactions([(1, 30, 5.0, 0), (2, 30, 2.0, 9), (1, 7, 5.0, 11)])
    split_df = split_interactions(inter, split)
    config = ItemFeatureConfig(half_life_days=1.0)
    out = {
        r[Col.ITEM_ID]: r
        for r in item_features(lit.items(ITEMS), split_df, lit.day(10), config).collect()
    }
    assert {i: r[Col.ITEM_INDEX] for i, r in out.items()} == {7: 1, 12: 2, 30: 3}
    z = out[30]
    assert z[Col.N_INTERACTIONS] == 2
    assert z[Col.LOG_COUNT] == pytest.approx(math.log(3), rel=1e-6)
    # Ages 10 and 1 days with a 1-day half-life.
    assert z[Col.DECAYED_POPULARITY] == pytest.approx(0.5**10 + 0.5, rel=1e-5)
    assert not z[Col.IS_COLD]
    hot = dict(zip(GENRES, z[Col.GENRES_MULTI_HOT], strict=True))
    assert {g for g, v in hot.items() if v == 1.0} == {"Comedy", "Sci-Fi"}
    assert z[Col.TEXT] == "Zed. Genres: Comedy, Sci-Fi. Tags: aliens, funny."
    assert z[Col.YEAR_STD] == pytest.approx(1.0)
    assert out[7][Col.YEAR_STD] == pytest.approx(-1.0)
    assert out[12][Col.YEAR_STD] == 0.0  # no year: the mean
    # Item 7's only interaction is after the cutoff: cold.
    assert out[7][Col.IS_COLD]
    assert out[7][Col.N_INTERACTIONS] == 0
    assert out[7][Col.DECAYED_POPULARITY] == 0.0
    for item in (7, 12):  # no known genre sets the last slot only
        assert list(out[item][Col.GENRES_MULTI_HOT]) == [0.0] * (N_GENRES - 1) + [1.0]
    assert out[7][Col.TEXT] == "Alpha."
    assert out[12][Col.TEXT] == "Mid. Genres: Unknown-Genre."


def test_tags_can_be_left_out(lit: LiteralData) -> None:
    split_df = split_interactions(lit.interactions([(1, 30, 5.0, 0)]), TimeCutoff(lit.day(1)))
    config = ItemFeatureConfig(include_tags=False)
    out = item_features(lit.items(ITEMS[:1]), split_df, lit.day(1), config).first()
    assert out is not None
    assert out[Col.TEXT] == "Zed. Genres: Comedy, Sci-Fi."


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, True])
def test_bad_half_life_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="half_life_days"):
        ItemFeatureConfig(half_life_days=bad)  # type: ignore[arg-type]
