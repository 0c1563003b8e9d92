"""Served-vs-assigned rec_set check: pure rules and the ops.dq_checks row format."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest

from recsys.quality.exposure_checks import (
    CHECK_NAME,
    RecSetMismatch,
    dq_rows,
    evaluate_mismatches,
    table_label,
)

DS = date(2031, 7, 1)


def test_share_above_the_threshold_fails_and_at_it_passes() -> None:
    counts = [
        RecSetMismatch("e_fail", DS, 100, 2, 2),
        RecSetMismatch("e_edge", DS, 100, 1, 1),
        RecSetMismatch("e_clean", DS, 100, 0, 0),
        RecSetMismatch("e_none", DS, 0, 0, 0),
    ]
    got = {r.table_name: r for _, r in evaluate_mismatches(counts)}
    assert not got["ab.exposures[e_fail]"].passed
    assert got["ab.exposures[e_fail]"].observed == pytest.approx(0.02)
    assert got["ab.exposures[e_edge]"].passed  # 1% is allowed by the default
    assert got["ab.exposures[e_clean]"].passed
    assert got["ab.exposures[e_none]"].passed  # nothing served: nothing to check
    assert got["ab.exposures[e_none]"].observed is None
    assert all(r.check_name == CHECK_NAME and r.threshold == "<= 0.01" for r in got.values())
    strict = evaluate_mismatches(counts, max_share=0.0)
    assert [r.passed for _, r in strict] == [True, False, False, True]  # sorted by experiment


def test_rows_have_the_dq_checks_column_order() -> None:
    at = datetime(2031, 7, 2, 3)
    rows = dq_rows(evaluate_mismatches([RecSetMismatch("e", DS, 4, 1, 1)], 0.5, "app"), "r", at)
    assert rows == [
        (
            CHECK_NAME,
            "ab.exposures[e]@app",
            0.25,
            "<= 0.5",
            True,
            "1 of 4 served rows (1 units) showed a rec_set other than the assigned variant's; "
            "exposures keep the assigned arm (intent to treat)",
            "r",
            at,
            DS,
        )
    ]
    assert table_label("e") == "ab.exposures[e]"


@pytest.mark.parametrize(
    ("served", "mismatched", "units"),
    [(-1, 0, 0), (1, 2, 1), (3, 1, 2), (True, 0, 0)],
)
def test_counts_are_validated(served: int, mismatched: int, units: int) -> None:
    with pytest.raises(ValueError, match=r"rows|units"):
        RecSetMismatch("e", DS, served, mismatched, units)


@pytest.mark.parametrize("share", [-0.1, 1.1, math.nan, math.inf])
def test_threshold_is_a_share(share: float) -> None:
    with pytest.raises(ValueError, match="max_share"):
        evaluate_mismatches([], share)
