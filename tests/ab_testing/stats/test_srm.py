"""SRM chi-square check."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from ab_testing.stats import srm_test


def test_hand_computed() -> None:
    assert srm_test({"a": 50, "b": 50}, {"a": 1, "b": 1}).p_value == pytest.approx(1.0)
    res = srm_test({"a": 60, "b": 40}, {"a": 0.5, "b": 0.5})
    assert res.statistic == pytest.approx(4.0)  # 10²/50 + 10²/50
    assert res.p_value == pytest.approx(stats.chi2.sf(4.0, 1))
    assert res.passed  # 0.0455 > 0.001


def test_unequal_weights_and_failure() -> None:
    res = srm_test({"c": 5000, "t1": 2500, "t2": 2900}, {"c": 2, "t1": 1, "t2": 1})
    ref = stats.chisquare([5000, 2500, 2900], [5200, 2600, 2600])
    assert res.p_value == pytest.approx(ref.pvalue)
    assert not res.passed
    assert res.reason is None
    assert srm_test(
        {"c": 5000, "t1": 2500, "t2": 2900}, {"c": 2, "t1": 1, "t2": 1}, threshold=1e-12
    ).passed


def test_missing_variant_counts_zero_and_empty_is_reason() -> None:
    assert not srm_test({"a": 100}, {"a": 1, "b": 1}).passed
    empty = srm_test({}, {"a": 1, "b": 1})
    assert math.isnan(empty.p_value)
    assert empty.reason == "insufficient_sample"
    assert empty.passed


@pytest.mark.parametrize(
    ("observed", "weights", "threshold", "match"),
    [
        ({"a": 1, "b": 1}, {"a": 1}, 0.001, "expected_weights"),
        ({"a": 1, "b": 1}, {"a": 1, "b": -1}, 0.001, r"expected_weights\['b'\]"),
        ({"a": 1, "z": 1}, {"a": 1, "b": 1}, 0.001, "'z'"),
        ({"a": -1, "b": 1}, {"a": 1, "b": 1}, 0.001, "observed"),
        ({"a": 1, "b": 1}, {"a": 1, "b": 1}, 1.5, "threshold"),
    ],
)
def test_caller_errors(
    observed: dict[str, float], weights: dict[str, float], threshold: float, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        srm_test(observed, weights, threshold=threshold)
