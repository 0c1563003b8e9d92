"""Non-inferiority tests for guardrail metrics."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from ab_testing.stats import SampleStats, non_inferiority_test, welch_t_test
from ab_testing.stats.comparison import Comparison


def _comp(lift: float, se: float, rel: float = math.nan, rel_se: float = math.nan) -> Comparison:
    inf = math.inf
    return Comparison(
        "test",
        1000,
        1000,
        1.0,
        1.0 + lift,
        lift,
        se,
        lift - 2 * se,
        lift + 2 * se,
        rel,
        rel_se,
        rel - 2 * rel_se,
        rel + 2 * rel_se,
        lift / se,
        inf,
        0.5,
        math.nan,
        None,
    )


def test_hand_computed_absolute_margin() -> None:
    # lift -0.01, SE 0.01, margin 0.03: z = (-0.01 + 0.03)/0.01 = 2, p = Φ(-2) ≈ 0.02275.
    res = non_inferiority_test(_comp(-0.01, 0.01), margin=0.03, margin_type="absolute")
    assert res.statistic == pytest.approx(2.0)
    assert res.p_value == pytest.approx(stats.norm.sf(2.0))
    assert res.bound == pytest.approx(-0.01 - stats.norm.isf(0.05) * 0.01)
    assert res.decision == "not_worse"
    res = non_inferiority_test(_comp(-0.025, 0.01), margin=0.03, margin_type="absolute")
    assert res.decision == "possibly_worse"
    assert res.bound < -0.03


def test_lower_is_better_and_relative_margin() -> None:
    # Latency up 1 % ± 0.5 %, tolerate +5 %: clearly not worse.
    comp = _comp(0.0, 1.0, rel=0.01, rel_se=0.005)
    res = non_inferiority_test(comp, margin=0.05, higher_is_better=False)
    assert res.statistic == pytest.approx((0.05 - 0.01) / 0.005)
    assert res.decision == "not_worse"
    assert res.bound == pytest.approx(0.01 + 1.644854 * 0.005)
    # The same lift where higher is better and only a 0.5 % drop is tolerated: fine too.
    assert non_inferiority_test(comp, margin=0.005).decision == "not_worse"


def test_uses_t_distribution_for_welch() -> None:
    comp = welch_t_test(SampleStats.from_array([1.0, 2, 3, 4]), SampleStats.from_array([1.0, 2, 3]))
    res = non_inferiority_test(comp, margin=0.5, margin_type="absolute")
    assert res.p_value == pytest.approx(stats.t.sf(res.statistic, comp.df))


def test_unanalysable_and_bad_arguments() -> None:
    const = welch_t_test(SampleStats.from_array([1.0, 1.0]), SampleStats.from_array([1.0, 1.0]))
    res = non_inferiority_test(const, margin=0.1)
    assert res.decision is None
    assert res.reason == "zero_variance"
    with pytest.raises(ValueError, match="margin"):
        non_inferiority_test(_comp(0, 1), margin=-0.1)
    with pytest.raises(ValueError, match="margin_type"):
        non_inferiority_test(_comp(0, 1), margin=0.1, margin_type="percent")  # type: ignore[arg-type]
