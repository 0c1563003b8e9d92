"""CUPED (mean and ratio): OLS equivalence, variance reduction ≈ 1 - ρ², A/A, edge cases."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import statsmodels.api as sm
from scipy import stats

from ab_testing.stats import (
    CupedRatioStats,
    CupedStats,
    SampleStats,
    cuped_ratio_test,
    cuped_t_test,
    delta_ratio_test,
    welch_t_test,
)

N_SIM = 2000
Arr = npt.NDArray[np.float64]


def _correlated(rng: np.random.Generator, rho: float, shape: tuple[int, ...]) -> tuple[Arr, Arr]:
    x = rng.normal(size=shape)
    y = 1.0 + rho * x + math.sqrt(1.0 - rho**2) * rng.normal(size=shape)
    return y, 3.0 + x


def _ols_reference(yc: Arr, xc: Arr, yt: Arr, xt: Arr) -> tuple[Arr, Any]:
    """The reference CUPED answer: OLS of y on [1, treatment, x] over both arms (its params:
    intercept, lift, theta) and Welch's t-test on the residualised outcome y - theta * x."""
    y, x = np.concatenate([yc, yt]), np.concatenate([xc, xt])
    treat = np.r_[np.zeros(len(yc)), np.ones(len(yt))]
    params = sm.OLS(y, np.column_stack([np.ones_like(y), treat, x])).fit().params
    ref = stats.ttest_ind(yt - params[2] * xt, yc - params[2] * xc, equal_var=False)
    return np.asarray(params, dtype=np.float64), ref


def test_matches_ols_regression_adjustment(rng: np.random.Generator) -> None:
    yc, xc = _correlated(rng, 0.6, (300,))
    yt, xt = _correlated(rng, 0.6, (350,))
    yt = yt + 0.1
    res = cuped_t_test(CupedStats.from_arrays(yc, xc), CupedStats.from_arrays(yt, xt))
    params, ref = _ols_reference(yc, xc, yt, xt)
    assert res.abs_lift == pytest.approx(params[1], abs=1e-6)
    assert res.theta == pytest.approx(params[2], abs=1e-6)
    # Standard error and p: Welch on the OLS-residualised outcome y - θ·x.
    assert res.statistic == pytest.approx(ref.statistic, abs=1e-6)
    assert res.p_value == pytest.approx(ref.pvalue, abs=1e-6)
    assert res.mean_control == pytest.approx(yc.mean())  # reported means are unadjusted


def test_ratio_matches_ols_on_linearised_values(rng: np.random.Generator) -> None:
    def arm(n: int, lift: float) -> tuple[Arr, Arr, Arr]:
        x = rng.gamma(2.0, 2.0, n)  # pre-period clicks
        den = 1.0 + rng.poisson(5.0 + x)
        num = rng.binomial(den.astype(int), np.clip(0.05 + 0.01 * x + lift, 0, 1)).astype(float)
        return num, den, x

    (nc, dc, xc), (nt, dt, xt) = arm(400, 0.0), arm(450, 0.02)
    res = cuped_ratio_test(
        CupedRatioStats.from_arrays(nc, dc, xc), CupedRatioStats.from_arrays(nt, dt, xt)
    )

    def z(num: Arr, den: Arr) -> Arr:
        r = num.sum() / den.sum()
        return np.asarray(r + (num - r * den) / den.mean(), dtype=np.float64)  # R + influence value

    zc, zt = z(nc, dc), z(nt, dt)
    params, ref = _ols_reference(zc, xc, zt, xt)
    assert res.abs_lift == pytest.approx(params[1], abs=1e-6)
    assert res.theta == pytest.approx(params[2], abs=1e-6)
    assert res.p_value == pytest.approx(ref.pvalue, abs=1e-6)
    plain = delta_ratio_test(
        CupedRatioStats.from_arrays(nc, dc, xc).ratio_stats,
        CupedRatioStats.from_arrays(nt, dt, xt).ratio_stats,
    )
    assert res.abs_se < plain.abs_se


def test_variance_shrinks_by_one_minus_rho_squared(rng: np.random.Generator) -> None:
    rho = 0.7
    yc, xc = _correlated(rng, rho, (N_SIM, 200))
    yt, xt = _correlated(rng, rho, (N_SIM, 200))
    cuped = cuped_t_test(CupedStats.from_arrays(yc, xc), CupedStats.from_arrays(yt, xt))
    plain = welch_t_test(SampleStats.from_array(yc), SampleStats.from_array(yt))
    empirical = np.var(cuped.abs_lift) / np.var(plain.abs_lift)
    reported = np.mean(np.square(cuped.abs_se)) / np.mean(np.square(plain.abs_se))
    assert empirical == pytest.approx(1 - rho**2, abs=0.06)
    assert reported == pytest.approx(1 - rho**2, abs=0.02)


def test_cuped_aa_false_positive_rate() -> None:
    rng = np.random.default_rng(2013)
    yc, xc = _correlated(rng, 0.7, (N_SIM, 200))
    yt, xt = _correlated(rng, 0.7, (N_SIM, 200))
    p = np.asarray(
        cuped_t_test(CupedStats.from_arrays(yc, xc), CupedStats.from_arrays(yt, xt)).p_value
    )
    assert 0.04 <= np.mean(p < 0.05) <= 0.06


def test_ratio_cuped_aa_false_positive_rate(rng: np.random.Generator) -> None:
    def arm() -> CupedRatioStats:
        x = rng.gamma(2.0, 2.0, (N_SIM, 300))
        den = 1.0 + rng.poisson(5.0 + x)
        num = rng.binomial(den.astype(int), 0.05 + 0.01 * x).astype(float)
        return CupedRatioStats.from_arrays(num, den, x)

    p = np.asarray(cuped_ratio_test(arm(), arm()).p_value)
    assert 0.04 <= np.mean(p < 0.05) <= 0.06


def test_constant_covariate_means_no_adjustment() -> None:
    y0, y1 = np.array([1.0, 2.0, 4.0]), np.array([2.0, 3.0, 7.0, 1.0])
    res = cuped_t_test(
        CupedStats.from_arrays(y0, np.ones(3)), CupedStats.from_arrays(y1, np.ones(4))
    )
    ref = welch_t_test(SampleStats.from_array(y0), SampleStats.from_array(y1))
    assert res.theta == 0.0
    assert (res.abs_lift, res.p_value) == pytest.approx((ref.abs_lift, ref.p_value))


def test_edge_cases_give_reasons() -> None:
    one = CupedStats.from_arrays([1.0], [2.0])
    two = CupedStats.from_arrays([1.0, 2.0], [2.0, 3.0])
    assert cuped_t_test(one, two).reason == "insufficient_sample"
    # y is an exact linear function of x: the adjusted outcome has zero variance.
    exact = CupedStats.from_arrays([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert cuped_t_test(exact, exact).reason == "zero_variance"
    zero = CupedRatioStats.from_arrays([0.0, 0.0], [0.0, 0.0], [1.0, 2.0])
    ok = CupedRatioStats.from_arrays([1.0, 2.0], [2.0, 2.0], [1.0, 3.0])
    res = cuped_ratio_test(zero, ok)
    assert res.reason == "zero_denominator"
    assert math.isnan(res.abs_lift)
