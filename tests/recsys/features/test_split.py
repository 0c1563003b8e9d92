"""Split rules on literal interactions: leave-last-out (ties, short users) and time cutoffs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from recsys.features.split import LeaveLastOut, TimeCutoff, as_of, split_interactions
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from tests.recsys.features.conftest import LiteralData

pytestmark = pytest.mark.spark

# (user, item, rating, day). User 1: item 16 ties item 13 on day 5 and wins on item id.
ROWS = [
    (1, 10, 5.0, 1),
    (1, 11, 2.0, 2),
    (1, 12, 4.0, 3),
    (1, 15, 1.0, 4),
    (1, 13, 4.5, 5),
    (1, 16, 4.0, 5),
    (1, 14, 3.0, 6),
    (2, 10, 5.0, 1),  # two positives only: everything stays train
    (2, 11, 4.0, 2),
    (2, 12, 1.0, 3),
    (3, 10, 1.0, 1),  # no positive
    (4, 20, 4.0, 1),  # exactly three positives, a negative between the last two
    (4, 21, 4.0, 2),
    (4, 22, 2.0, 2.5),
    (4, 23, 5.0, 3),
]
EXPECTED_LLO = {
    (1, 10): "train",
    (1, 11): "train",
    (1, 12): "train",
    (1, 15): "train",
    (1, 13): "validation",
    (1, 16): "test",
    (1, 14): "test",
    (2, 10): "train",
    (2, 11): "train",
    (2, 12): "train",
    (3, 10): "train",
    (4, 20): "train",
    (4, 21): "validation",
    (4, 22): "validation",
    (4, 23): "test",
}


def roles(df: object) -> dict[tuple[int, int], str]:
    return {(r[Col.USER_ID], r[Col.ITEM_ID]): r[Col.ROLE] for r in df.collect()}  # type: ignore[attr-defined]


def test_leave_last_out_roles(lit: LiteralData) -> None:
    split = LeaveLastOut()
    out = split_interactions(lit.interactions(ROWS), split)
    assert roles(out) == EXPECTED_LLO
    assert out.columns == [
        Col.USER_ID,
        Col.ITEM_ID,
        Col.RATING,
        Col.IS_POSITIVE,
        Col.EVENT_TS,
        Col.ROLE,
    ]
    # One positive per held-out role; train ends before the user's validation positive.
    assert as_of(out, split) == lit.day(4)
    assert split.split_id == "leave_last_out"


def test_leave_last_out_min_positives_raises_the_bar(lit: LiteralData) -> None:
    out = split_interactions(lit.interactions(ROWS), LeaveLastOut(min_positives=4))
    got = roles(out)
    assert {k: v for k, v in got.items() if k[0] == 4} == {
        (4, 20): "train",
        (4, 21): "train",
        (4, 22): "train",
        (4, 23): "train",
    }
    assert got[(1, 16)] == "test"


def test_time_cutoff_roles(lit: LiteralData) -> None:
    split = TimeCutoff(lit.day(3), validation_cutoff=lit.day(2))
    got = roles(split_interactions(lit.interactions(ROWS), split))
    day_of = {(u, i): d for u, i, _, d in ROWS}
    for key, role in got.items():
        d = day_of[key]
        assert role == ("train" if d < 2 else "validation" if d < 3 else "test"), key
    assert split.split_id == "time_cutoff_20200104T000000_val20200103T000000"
    assert as_of(lit.interactions(ROWS), split) == lit.day(2)
    no_validation = roles(split_interactions(lit.interactions(ROWS), TimeCutoff(lit.day(3))))
    assert set(no_validation.values()) == {"train", "test"}


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: LeaveLastOut(min_positives=2), "min_positives"),
        (lambda: TimeCutoff(datetime(2020, 1, 1)), "cutoff"),
        (
            lambda: TimeCutoff(datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 2, 1, tzinfo=UTC)),
            "validation_cutoff",
        ),
    ],
)
def test_bad_split_configs_are_refused(make: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()  # type: ignore[operator]
