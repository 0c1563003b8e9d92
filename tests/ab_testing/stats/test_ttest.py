"""Welch t test: hand-computed values, scipy reference, A/A simulation, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ab_testing.stats import SampleStats, welch_t_test

N_SIM = 2000


def test_hand_computed() -> None:
    # control [1,2,3]: mean 2, s² 1; treatment [2,4,6]: mean 4, s² 4.
    res = welch_t_test(SampleStats.from_array([1, 2, 3]), SampleStats.from_array([2, 4, 6]))
    assert res.abs_lift == pytest.approx(2.0)
    assert res.abs_se == pytest.approx(math.sqrt(5 / 3))
    assert res.statistic == pytest.approx(2 / math.sqrt(5 / 3))
    assert res.df == pytest.approx(50 / 17)  # (5/3)² / ((1/3)²/2 + (4/3)²/2)
    assert res.rel_lift == pytest.approx(1.0)
    assert res.rel_se == pytest.approx(math.sqrt(2 / 3))  # (4/3)/4 + 4²(1/3)/2⁴
    assert res.reason is None


@pytest.mark.parametrize(
    ("alternative", "scipy_alternative"),
    [("two-sided", "two-sided"), ("larger", "greater"), ("smaller", "less")],
)
def test_matches_scipy(rng: np.random.Generator, alternative: str, scipy_alternative: str) -> None:
    a = rng.lognormal(size=300)
    b = rng.lognormal(0.1, 1.2, size=250)
    res = welch_t_test(
        SampleStats.from_array(a),
        SampleStats.from_array(b),
        alternative=alternative,  # type: ignore[arg-type]
    )
    ref = stats.ttest_ind(b, a, equal_var=False, alternative=scipy_alternative)
    assert res.statistic == pytest.approx(ref.statistic, abs=1e-6)
    assert res.p_value == pytest.approx(ref.pvalue, abs=1e-6)
    assert res.df == pytest.approx(ref.df, abs=1e-6)
    ci = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert (res.abs_ci_low, res.abs_ci_high) == pytest.approx((ci.low, ci.high), abs=1e-6)


def test_aa_false_positive_rate(rng: np.random.Generator) -> None:
    control = SampleStats.from_array(rng.exponential(size=(N_SIM, 200)))
    treated = SampleStats.from_array(rng.exponential(size=(N_SIM, 200)))
    p = welch_t_test(control, treated).p_value
    assert 0.04 <= np.mean(np.asarray(p) < 0.05) <= 0.06


def test_zero_variance_and_small_n_give_reasons() -> None:
    const = SampleStats.from_array([2.0, 2.0, 2.0])
    res = welch_t_test(const, const)
    assert res.reason == "zero_variance"
    assert math.isnan(res.p_value)
    res = welch_t_test(SampleStats.from_array([1.0]), SampleStats.from_array([1.0, 2.0]))
    assert res.reason == "insufficient_sample"
    assert math.isnan(res.abs_lift)
    assert math.isnan(res.abs_ci_low)


def test_one_constant_arm_is_fine() -> None:
    res = welch_t_test(SampleStats.from_array([2.0, 2.0, 2.0]), SampleStats.from_array([1, 2, 4]))
    assert res.reason is None
    assert 0 < res.p_value < 1


def test_zero_control_mean_keeps_absolute_numbers() -> None:
    res = welch_t_test(SampleStats.from_array([-1.0, 0.0, 1.0]), SampleStats.from_array([1, 2, 3]))
    assert res.reason == "zero_control_mean"
    assert math.isnan(res.rel_lift)
    assert res.abs_lift == pytest.approx(2.0)


def test_bad_arguments_raise() -> None:
    s = SampleStats.from_array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="alternative"):
        welch_t_test(s, s, alternative="two_sided")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        welch_t_test(s, s, alpha=5)


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=30),
    st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=30),
)
def test_p_value_in_unit_interval(a: list[float], b: list[float]) -> None:
    res = welch_t_test(SampleStats.from_array(a), SampleStats.from_array(b))
    p = res.p_value
    assert math.isnan(p) or 0.0 <= p <= 1.0
    if not math.isnan(p):
        assert res.abs_ci_low <= res.abs_lift <= res.abs_ci_high
