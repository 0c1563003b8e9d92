"""The trending formula on tiny literal frames, through the pure pandas twin (no Spark)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from recsys.surfaces.trending_formula import (
    TRENDING_COLUMNS,
    TrendingConfig,
    item_growth_pandas,
    micros,
    trending_pandas,
    window_length,
)
from recsys.warehouse.tables import TRENDING_ALL_GENRES, Col

AS_OF = datetime(2018, 9, 24, 12, 0, tzinfo=UTC)


def events(item: int, users: range | list[int], days_ago: list[float]) -> list[dict[str, object]]:
    """One event per (user, age) pair: users cycle over the ages."""
    rows = []
    for i, age in enumerate(days_ago):
        rows.append(
            {
                Col.USER_ID: list(users)[i % len(users)],
                Col.ITEM_ID: item,
                Col.EVENT_TS: AS_OF - timedelta(days=age),
            }
        )
    return rows


def frame(*groups: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame([row for g in groups for row in g])


def items_frame(genres: dict[int, list[str]]) -> pd.DataFrame:
    return pd.DataFrame({Col.ITEM_ID: list(genres), Col.GENRES: list(genres.values())})


CONFIG = TrendingConfig(recent_days=7, baseline_days=28, min_support=3, prior=5.0, top_k=10)


def test_window_length_limits() -> None:
    # Without decay (huge half-life) the decay-weighted length is the window length.
    assert window_length(7, 1e9) == pytest.approx(7, rel=1e-6)
    # A half-life equal to the window: h/ln2 * 1/2.
    assert window_length(4, 4) == pytest.approx(4 / math.log(2) / 2)


def test_steady_item_scores_about_zero() -> None:
    # One event every 2 hours over both windows, from many users: r and b agree within 2%.
    ages = [h / 12 for h in range(0, 35 * 12)]
    growth = item_growth_pandas(frame(events(1, range(100), ages)), AS_OF, CONFIG)
    row = growth.iloc[0]
    assert row[Col.RECENT_COUNT] == pytest.approx(row[Col.BASELINE_COUNT], rel=0.02)
    assert abs(row[Col.SCORE]) < 0.2


def test_growth_beats_steady_popularity() -> None:
    steady = events(1, range(200), [h / 24 for h in range(0, 35 * 24)])  # 24/day, both windows
    growing = events(
        2,
        range(50),
        [d for d in range(7, 35)] + [h / 8 for h in range(0, 7 * 8)],  # 1/day, then 8/day
    )
    lists = trending_pandas(
        frame(steady, growing), items_frame({1: ["Drama"], 2: ["Drama"]}), AS_OF, CONFIG
    )
    overall = lists[lists[Col.GENRE] == TRENDING_ALL_GENRES]
    assert overall[Col.ITEM_ID].tolist() == [2, 1]
    # The steady item has far more recent events, yet no growth.
    recent = dict(zip(overall[Col.ITEM_ID], overall[Col.RECENT_COUNT], strict=True))
    assert recent[1] > recent[2]


def test_burst_below_min_support_does_not_win() -> None:
    # One user rates item 9 forty times in an hour: two users short of the support.
    burst = events(9, [7, 8], [0.01 * i for i in range(40)])
    modest = events(3, range(5), [0.5, 1.5, 2.5, 3.5, 4.5, 20.0])
    lists = trending_pandas(
        frame(burst, modest), items_frame({9: ["Comedy"], 3: ["Comedy"]}), AS_OF, CONFIG
    )
    assert 9 not in lists[Col.ITEM_ID].tolist()
    assert lists[lists[Col.GENRE] == TRENDING_ALL_GENRES][Col.ITEM_ID].tolist() == [3]
    # With support 2 the burst would win by far: the support is what stops it.
    loose = TrendingConfig(recent_days=7, baseline_days=28, min_support=2, prior=5.0)
    again = trending_pandas(
        frame(burst, modest), items_frame({9: ["Comedy"], 3: ["Comedy"]}), AS_OF, loose
    )
    assert again[again[Col.GENRE] == TRENDING_ALL_GENRES][Col.ITEM_ID].tolist()[0] == 9


def test_score_formula_by_hand() -> None:
    # No decay to speak of: r = recent events, b = baseline events * 7/28.
    config = TrendingConfig(
        recent_days=7, baseline_days=28, half_life_days=1e9, min_support=1, prior=5.0
    )
    rows = events(1, range(10), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] + [10.0] * 8)
    growth = item_growth_pandas(frame(rows), AS_OF, config).iloc[0]
    assert growth[Col.RECENT_COUNT] == pytest.approx(6.0)
    assert growth[Col.BASELINE_COUNT] == pytest.approx(2.0)
    assert growth[Col.SCORE] == pytest.approx((6.0 - 2.0) / math.sqrt(2.0 + 5.0))


def test_window_edges_and_future_events() -> None:
    config = TrendingConfig(
        recent_days=7, baseline_days=28, half_life_days=1e9, min_support=1, prior=1.0
    )
    rows = events(1, range(10), [0.0, 6.999, 7.0, 34.999, 35.0, -0.5])
    growth = item_growth_pandas(frame(rows), AS_OF, config).iloc[0]
    # age 0 and 6.999 are recent; 7.0 and 34.999 baseline; 35.0 too old; -0.5 after as_of.
    assert growth[Col.RECENT_COUNT] == pytest.approx(2.0, rel=1e-6)
    assert growth[Col.BASELINE_COUNT] == pytest.approx(2.0 * 7 / 28, rel=1e-6)


def test_lists_per_genre_ranks_ties_and_top_k() -> None:
    config = TrendingConfig(recent_days=7, baseline_days=28, min_support=1, top_k=2)
    same = [1.0]
    rows = frame(
        events(1, [1], same),
        events(2, [1], same),  # same score and counts as item 1: the smaller id first
        events(3, [1, 2], [1.0, 1.0]),
        events(4, [1], same),  # no genre: only in the overall list
    )
    items = items_frame({1: ["A", "B"], 2: ["A"], 3: ["B", "B"], 4: []})
    lists = trending_pandas(rows, items, AS_OF, config)
    assert tuple(lists.columns) == TRENDING_COLUMNS
    by_genre = {g: part[Col.ITEM_ID].tolist() for g, part in lists.groupby(Col.GENRE)}
    assert by_genre == {TRENDING_ALL_GENRES: [3, 1], "A": [1, 2], "B": [3, 1]}
    assert lists.groupby(Col.GENRE)[Col.RANK].apply(list).to_dict() == {
        TRENDING_ALL_GENRES: [1, 2],
        "A": [1, 2],
        "B": [1, 2],
    }


def test_scaled_keeps_everything_but_the_windows() -> None:
    base = TrendingConfig(recent_days=7, baseline_days=28, min_support=4, top_k=3)
    wide = base.scaled(2)
    assert (wide.recent_days, wide.baseline_days, wide.half_life) == (14, 56, 7)
    assert (wide.min_support, wide.top_k, wide.prior) == (4, 3, base.prior)
    assert wide.baseline_scale == pytest.approx(base.baseline_scale)  # same shape, twice as long
    explicit = TrendingConfig(half_life_days=2).scaled(3)
    assert explicit.half_life_days == 6
    with pytest.raises(ValueError, match="factor"):
        base.scaled(0)


def test_naive_as_of_is_utc() -> None:
    assert micros(AS_OF.replace(tzinfo=None)) == micros(AS_OF)
    assert micros(datetime(1970, 1, 1, 0, 0, 1)) == 1_000_000


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"recent_days": 0}, ValueError, "recent_days"),
        ({"baseline_days": -1.0}, ValueError, "baseline_days"),
        ({"half_life_days": float("nan")}, ValueError, "half_life_days"),
        ({"min_support": 0}, ValueError, "min_support"),
        ({"top_k": 1.5}, TypeError, "top_k"),
        ({"prior": "5"}, TypeError, "prior"),
        ({"min_support": True}, TypeError, "min_support"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], error: type, name: str) -> None:
    with pytest.raises(error, match=name):
        TrendingConfig(**kwargs)  # type: ignore[arg-type]
