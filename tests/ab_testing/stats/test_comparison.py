"""The shared inference step: relative-lift delta method and vectorised consistency."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from ab_testing.stats import SampleStats, welch_t_test


def test_relative_lift_matches_numeric_delta_method(rng: np.random.Generator) -> None:
    a, b = rng.gamma(2.0, 5.0, 400), rng.gamma(2.2, 5.0, 500)
    res = welch_t_test(SampleStats.from_array(a), SampleStats.from_array(b))
    mc, mt = a.mean(), b.mean()
    vc, vt = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    grad = np.array([-mt / mc**2, 1.0 / mc])  # ∂(mt/mc)/∂(mc, mt)
    assert res.rel_lift == pytest.approx(mt / mc - 1.0)
    assert res.rel_se == pytest.approx(np.sqrt(grad @ np.diag([vc, vt]) @ grad), rel=1e-9)


def test_relative_interval_is_fiellers(rng: np.random.Generator) -> None:
    a, b = rng.gamma(2.0, 5.0, 400), rng.gamma(2.2, 5.0, 500)
    res = welch_t_test(SampleStats.from_array(a), SampleStats.from_array(b))
    vc, vt = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    crit = (res.abs_lift - res.abs_ci_low) / res.abs_se
    c, t = a.mean(), b.mean()

    def pivot(r: float) -> float:
        return float((t - r * c) ** 2 - crit**2 * (vt + r**2 * vc))

    lo, hi = 1.0 + res.rel_ci_low, 1.0 + res.rel_ci_high
    # Independent reference: the roots of the pivot, found numerically around the estimate.
    assert lo == pytest.approx(optimize.brentq(pivot, lo - 0.5, t / c), rel=1e-9)
    assert hi == pytest.approx(optimize.brentq(pivot, t / c, hi + 0.5), rel=1e-9)
    assert pivot(t / c) < 0
    # Close to the delta method for a small relative effect on well-measured means.
    delta = res.rel_lift - crit * res.rel_se
    assert res.rel_ci_low == pytest.approx(delta, abs=0.01)


def test_relative_interval_excludes_zero_exactly_when_the_absolute_one_does(
    rng: np.random.Generator,
) -> None:
    disagree_delta, bounded = 0, 0
    for _ in range(300):
        n = int(rng.integers(20, 300))
        a = (rng.random(n) < rng.uniform(0.01, 0.1)).astype(float)
        b = (rng.random(n) < rng.uniform(0.005, 0.1)).astype(float)
        res = welch_t_test(SampleStats.from_array(a), SampleStats.from_array(b))
        if not np.isfinite(res.abs_se) or res.abs_se == 0 or a.mean() == 0:
            continue
        if not np.isfinite(res.rel_ci_low):
            continue  # control not distinct from 0: reported unbounded (conservative)
        bounded += 1
        rel_excl = res.rel_ci_low > 0 or res.rel_ci_high < 0
        abs_excl = res.abs_ci_low > 0 or res.abs_ci_high < 0
        assert rel_excl == abs_excl
        crit = float((res.abs_lift - res.abs_ci_low) / res.abs_se)
        delta_excl = abs(float(res.rel_lift)) > crit * float(res.rel_se)
        disagree_delta += delta_excl != abs_excl
    assert bounded > 150
    assert disagree_delta > 0  # the delta-method interval does disagree on such data


def test_relative_interval_is_unbounded_when_the_control_mean_is_not_distinct_from_zero() -> None:
    c = SampleStats.from_array(np.array([0.0] * 38 + [1.0, -0.9]))  # mean 0.0025, sd 0.2
    res = welch_t_test(c, SampleStats.from_array(np.arange(40.0)))
    assert res.rel_ci_low == -np.inf
    assert res.rel_ci_high == np.inf
    assert np.isfinite(res.rel_lift)


def test_relative_interval_coverage(rng: np.random.Generator) -> None:
    covered, trials = 0, 400
    true = 1.3 / 1.0 - 1.0
    for _ in range(trials):
        a, b = rng.exponential(1.0, 150), rng.exponential(1.3, 150)
        res = welch_t_test(SampleStats.from_array(a), SampleStats.from_array(b))
        covered += int(res.rel_ci_low <= true <= res.rel_ci_high)
    assert 0.92 <= covered / trials <= 0.98


def test_vectorised_equals_scalar(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=(5, 40)), rng.normal(size=(5, 50))
    vec = welch_t_test(SampleStats.from_array(a), SampleStats.from_array(b))
    assert vec.reason is None
    for i in range(5):
        one = welch_t_test(SampleStats.from_array(a[i]), SampleStats.from_array(b[i]))
        assert one.p_value == pytest.approx(vec.p_value[i])  # type: ignore[index]
        assert one.rel_ci_high == pytest.approx(vec.rel_ci_high[i])  # type: ignore[index]


def test_vectorised_unanalysable_elements_are_nan() -> None:
    c = SampleStats(np.array([10.0, 1.0]), np.array([5.0, 1.0]), np.array([7.0, 1.0]))
    res = welch_t_test(c, c)
    p = np.asarray(res.p_value)
    assert not np.isnan(p[0])
    assert np.isnan(p[1])
    assert res.reason is None
