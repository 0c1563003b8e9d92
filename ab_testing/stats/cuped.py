"""CUPED variance reduction for mean metrics and for ratio metrics.

CUPED (Deng, Xu, Kohavi & Walker 2013, "Improving the Sensitivity of Online Controlled
Experiments by Utilizing Pre-Experiment Data") replaces the outcome Y by
``Y - θ (X - E[X])`` for a pre-experiment covariate X.  θ = Cov(Y, X) / Var(X) minimises
the variance, which shrinks by the factor ``1 - ρ²(Y, X)``.  Because X is unaffected by
treatment, the adjusted difference is unbiased for the treatment effect.

Choices made here (and why):

* θ is *pooled across arms* from the within-arm centred cross-products,
  ``θ = Σ_arms S_xy / Σ_arms S_xx``.  This is exactly the coefficient on X in the OLS fit
  ``Y ~ 1 + treatment + X``, so the adjusted difference equals that regression's treatment
  coefficient (a regression-adjustment view shared by GrowthBook's ``gbstats``
  ``RegressionAdjustedStatistic`` and Spotify's Confidence platform).  A single θ for both
  arms keeps the estimator unbiased; per-arm θ would not be.
* θ is treated as known when computing the variance (standard; the estimation error is
  O(1/n)).  If the pooled covariate variance is 0, θ = 0 (no adjustment).
* Ratio metrics: CUPED is applied to the *linearised* ratio (delta method), as in
  GrowthBook's CUPED for ratio metrics and Deng et al.'s delta-method papers.  The unit's
  influence value ``L = (num - R·den) / mean_den`` plays the role of Y, so
  ``Cov(L, X) = (Cov(num, X) - R·Cov(den, X)) / mean_den``; the adjusted ratio is
  ``R - θ (mean_x - pooled mean_x)``.
* The reported arm means are unadjusted; the lift is adjusted.  Relative lift is
  ``adjusted_t / adjusted_c - 1`` with adjusted arm means centred on the pooled covariate
  mean, and a delta-method CI.  Reference distribution: Welch t on adjusted per-unit values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ab_testing.stats._num import Array, Mask, Num, arr, out, safe_div
from ab_testing.stats.comparison import Arm, Comparison, compare_arms, validate_test_args
from ab_testing.stats.ratio import linearised_variance, zero_denominator

if TYPE_CHECKING:
    from ab_testing.settings import Alternative, Reason
    from ab_testing.stats.sufficient import CupedRatioStats, CupedStats


@dataclass(frozen=True, slots=True)
class _Arm:
    """One arm in CUPED's terms: a per-unit value Y (the outcome, or the linearised ratio) and
    the covariate X. ``estimate`` is the unadjusted arm estimate (mean or ratio); ``units`` the
    arm's ``n`` as given (reported as is), ``n`` the same as an array."""

    units: Num
    n: Array
    estimate: Array
    variance: Array  # Var(Y) per unit
    covariance: Array  # Cov(Y, X) per unit
    sum_x: Array
    mean_x: Array
    variance_x: Array


def _mean_arm(s: CupedStats) -> _Arm:
    return _Arm(
        s.n,
        arr(s.n),
        arr(s.mean),
        arr(s.variance),
        arr(s.covariance),
        arr(s.sum_x),
        arr(s.mean_x),
        arr(s.variance_x),
    )


def _ratio_arm(s: CupedRatioStats) -> _Arm:
    # Y is the ratio's per-unit influence value L = (num - R·den) / mean_den.
    rs = s.ratio_stats
    r = arr(rs.ratio)
    cov_lx = safe_div(arr(s.covariance_num_x) - r * arr(s.covariance_den_x), arr(rs.mean_den))
    return _Arm(
        s.n,
        arr(s.n),
        r,
        linearised_variance(rs),
        cov_lx,
        arr(s.sum_x),
        arr(s.mean_x),
        arr(s.variance_x),
    )


def _pooled_theta(c: _Arm, t: _Arm) -> Array:
    # θ = Σ (n_a - 1) Cov_a(Y, X) / Σ (n_a - 1) Var_a(X): the within-arm pooled OLS slope.
    w_c, w_t = np.maximum(c.n - 1.0, 0.0), np.maximum(t.n - 1.0, 0.0)
    sxy = np.nan_to_num(w_c * c.covariance) + np.nan_to_num(w_t * t.covariance)
    sxx = np.nan_to_num(w_c * c.variance_x) + np.nan_to_num(w_t * t.variance_x)
    return np.where(sxx > 0, safe_div(sxy, sxx), 0.0)


def cuped_theta(control: CupedStats, treatment: CupedStats) -> Num:
    """Pooled CUPED coefficient θ (outcome units per covariate unit) for a mean metric."""
    return out(_pooled_theta(_mean_arm(control), _mean_arm(treatment)))


def cuped_ratio_theta(control: CupedRatioStats, treatment: CupedRatioStats) -> Num:
    """Pooled CUPED coefficient θ for a ratio metric (ratio units per covariate unit)."""
    return out(_pooled_theta(_ratio_arm(control), _ratio_arm(treatment)))


def _adjusted(a: _Arm, theta: Array, pooled_mean_x: Array) -> Arm:
    """The arm adjusted to the pooled covariate mean: estimate ``mean - θ (mean_x - pooled)``,
    per-unit variance Var(Y - θX) = σ_y² - 2θσ_xy + θ²σ_x²; the unadjusted estimate shown."""
    est = a.estimate - theta * (a.mean_x - pooled_mean_x)
    var = np.maximum(a.variance - 2.0 * theta * a.covariance + theta**2 * a.variance_x, 0.0)
    return Arm(a.units, out(a.estimate), est, var)


def _cuped_compare(
    method: str,
    c: _Arm,
    t: _Arm,
    *,
    alpha: float,
    alternative: Alternative,
    invalid: tuple[tuple[Reason, Mask], ...] = (),
) -> Comparison:
    """The CUPED comparison of two arms: pooled θ, both arms adjusted to the pooled covariate
    mean, Welch degrees of freedom on the adjusted values; unadjusted estimates shown."""
    theta = _pooled_theta(c, t)
    pooled_x = safe_div(c.sum_x + t.sum_x, c.n + t.n)
    return compare_arms(
        method,
        _adjusted(c, theta, pooled_x),
        _adjusted(t, theta, pooled_x),
        alpha=alpha,
        alternative=alternative,
        invalid=invalid,
        theta=theta,
    )


def cuped_t_test(
    control: CupedStats,
    treatment: CupedStats,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """CUPED-adjusted Welch t test of the mean difference (mean or binomial metrics).

    The lift equals the treatment coefficient of OLS ``Y ~ 1 + treatment + X``; its standard
    error is Welch's on the adjusted values ``Y - θX`` (see the module docstring).  Needs
    n >= 2 per arm.

    Args:
        control, treatment: per-unit sums of outcome, covariate and their cross-product.
        alpha: significance level in (0, 1); the CIs are two-sided ``1 - alpha``.
        alternative: H1 for the adjusted ``mean_t - mean_c``.
    """
    validate_test_args(alpha, alternative)
    c, t = _mean_arm(control), _mean_arm(treatment)
    return _cuped_compare("cuped_welch_t", c, t, alpha=alpha, alternative=alternative)


def cuped_ratio_test(
    control: CupedRatioStats,
    treatment: CupedRatioStats,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """CUPED-adjusted delta-method test of ``R_treatment - R_control`` for R = Σnum / Σden.

    CUPED on the linearised ratio (see the module docstring): equivalent to OLS of the
    per-unit values ``R_arm + L`` on ``1 + treatment + X``.  Needs n >= 2 per arm and a
    non-zero mean denominator.

    Args:
        control, treatment: per-unit sums of numerator, denominator, covariate and
            cross-products.
        alpha: significance level in (0, 1); the CIs are two-sided ``1 - alpha``.
        alternative: H1 for the adjusted ``R_t - R_c``.
    """
    validate_test_args(alpha, alternative)
    c, t = _ratio_arm(control), _ratio_arm(treatment)
    den_c, den_t = arr(control.ratio_stats.mean_den), arr(treatment.ratio_stats.mean_den)
    invalid = (zero_denominator(den_c, den_t),)
    return _cuped_compare(
        "cuped_delta_ratio", c, t, alpha=alpha, alternative=alternative, invalid=invalid
    )
