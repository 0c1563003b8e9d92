"""Two-proportion z test: hand values, statsmodels references, A/A simulation, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from ab_testing.stats import SampleStats, two_proportion_z_test

N_SIM = 2000


def test_hand_computed() -> None:
    # 10/100 vs 20/100: pooled p̄ = 0.15, pooled SE = sqrt(.15·.85·.02); unpooled SE = 0.05.
    res = two_proportion_z_test(SampleStats.from_counts(100, 10), SampleStats.from_counts(100, 20))
    assert res.abs_lift == pytest.approx(0.1)
    assert res.statistic == pytest.approx(0.1 / math.sqrt(0.15 * 0.85 * 0.02))
    assert res.abs_se == pytest.approx(0.05)
    assert res.abs_ci_low == pytest.approx(0.1 - 1.959963985 * 0.05)
    assert res.rel_lift == pytest.approx(1.0)
    assert res.rel_se == pytest.approx(math.sqrt(0.16 + 0.36))  # .0016/.01 + .04·.0009/.0001
    assert math.isinf(res.df)


@pytest.mark.parametrize(
    ("c_n", "c_k", "t_n", "t_k"), [(21306, 122, 21307, 267), (500, 40, 700, 33)]
)
@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_matches_statsmodels(c_n: int, c_k: int, t_n: int, t_k: int, alternative: str) -> None:
    res = two_proportion_z_test(
        SampleStats.from_counts(c_n, c_k),
        SampleStats.from_counts(t_n, t_k),
        alternative=alternative,  # type: ignore[arg-type]
    )
    stat, p = proportions_ztest([t_k, c_k], [t_n, c_n], alternative=alternative)
    assert res.statistic == pytest.approx(stat, abs=1e-6)
    assert res.p_value == pytest.approx(p, abs=1e-6)
    low, high = confint_proportions_2indep(t_k, t_n, c_k, c_n, method="wald", compare="diff")
    assert (res.abs_ci_low, res.abs_ci_high) == pytest.approx((low, high), abs=1e-6)


def test_aa_false_positive_rate(rng: np.random.Generator) -> None:
    n = 2000
    control = SampleStats.from_counts(n, rng.binomial(n, 0.1, N_SIM).astype(float))
    treated = SampleStats.from_counts(n, rng.binomial(n, 0.1, N_SIM).astype(float))
    p = np.asarray(two_proportion_z_test(control, treated).p_value)
    assert 0.04 <= np.mean(p < 0.05) <= 0.06


def test_edge_cases_give_reasons() -> None:
    zero = SampleStats.from_counts(100, 0)
    assert two_proportion_z_test(zero, zero).reason == "zero_variance"
    one = SampleStats.from_counts(1, 1)
    assert two_proportion_z_test(one, zero).reason == "insufficient_sample"
    res = two_proportion_z_test(zero, SampleStats.from_counts(100, 5))
    assert res.reason == "zero_control_mean"
    assert math.isnan(res.rel_lift)
    assert not math.isnan(res.p_value)


def test_successes_above_n_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match=r"treatment\.sum"):
        two_proportion_z_test(SampleStats.from_counts(10, 1), SampleStats.from_counts(10, 11))


@settings(max_examples=60, deadline=None, database=None)
@given(st.integers(2, 10_000), st.data())
def test_p_value_in_unit_interval(n: int, data: st.DataObject) -> None:
    k1 = data.draw(st.integers(0, n))
    k2 = data.draw(st.integers(0, n))
    p = two_proportion_z_test(
        SampleStats.from_counts(n, k1), SampleStats.from_counts(n, k2)
    ).p_value
    assert math.isnan(p) or 0.0 <= p <= 1.0
