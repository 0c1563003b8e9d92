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

from typing import TYPE_CHECKING

import numpy as np

from ab_testing.stats._num import Array, Num, arr, out, safe_div
from ab_testing.stats.comparison import Comparison, compare, validate_test_args, welch_df
from ab_testing.stats.ratio import linearised_variance, ratio_invalid

if TYPE_CHECKING:
    from ab_testing.settings import Alternative
    from ab_testing.stats.sufficient import CupedRatioStats, CupedStats


def _pooled_theta(
    cov_c: Array, n_c: Array, cov_t: Array, n_t: Array, vx_c: Array, vx_t: Array
) -> Array:
    # θ = Σ (n_a - 1) Cov_a(Y, X) / Σ (n_a - 1) Var_a(X): the within-arm pooled OLS slope.
    w_c, w_t = np.maximum(n_c - 1.0, 0.0), np.maximum(n_t - 1.0, 0.0)
    sxy = np.nan_to_num(w_c * cov_c) + np.nan_to_num(w_t * cov_t)
    sxx = np.nan_to_num(w_c * vx_c) + np.nan_to_num(w_t * vx_t)
    return np.where(sxx > 0, safe_div(sxy, sxx), 0.0)


def cuped_theta(control: CupedStats, treatment: CupedStats) -> Num:
    """Pooled CUPED coefficient θ (outcome units per covariate unit) for a mean metric."""
    return out(
        _pooled_theta(
            arr(control.covariance),
            arr(control.n),
            arr(treatment.covariance),
            arr(treatment.n),
            arr(control.variance_x),
            arr(treatment.variance_x),
        )
    )


def _adjusted(
    mean: Array,
    var_unit: Array,
    cov: Array,
    mean_x: Array,
    var_x: Array,
    n: Array,
    theta: Array,
    pooled_mean_x: Array,
) -> tuple[Array, Array]:
    """Adjusted arm estimate and its variance: Var(Y - θX)/n = (σ_y² - 2θσ_xy + θ²σ_x²)/n."""
    est = mean - theta * (mean_x - pooled_mean_x)
    var = np.maximum(var_unit - 2.0 * theta * cov + theta**2 * var_x, 0.0)
    return est, safe_div(var, n)


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
    n_c, n_t = arr(control.n), arr(treatment.n)
    theta = arr(cuped_theta(control, treatment))
    pooled_x = safe_div(arr(control.sum_x) + arr(treatment.sum_x), n_c + n_t)
    est_c, var_c = _adjusted(
        arr(control.mean),
        arr(control.variance),
        arr(control.covariance),
        arr(control.mean_x),
        arr(control.variance_x),
        n_c,
        theta,
        pooled_x,
    )
    est_t, var_t = _adjusted(
        arr(treatment.mean),
        arr(treatment.variance),
        arr(treatment.covariance),
        arr(treatment.mean_x),
        arr(treatment.variance_x),
        n_t,
        theta,
        pooled_x,
    )
    return compare(
        method="cuped_welch_t",
        n_c=control.n,
        n_t=treatment.n,
        shown_mean_c=control.mean,
        shown_mean_t=treatment.mean,
        est_c=est_c,
        est_t=est_t,
        var_c=var_c,
        var_t=var_t,
        df=welch_df(var_c, n_c, var_t, n_t),
        alpha=alpha,
        alternative=alternative,
        theta=theta,
        invalid=[("insufficient_sample", (n_c < 2) | (n_t < 2))],
    )


def _linearised_cov_x(s: CupedRatioStats) -> Array:
    # Cov(L, X) with L = (num - R·den) / mean_den, the ratio's per-unit influence value.
    r = arr(s.ratio_stats.ratio)
    return safe_div(
        arr(s.covariance_num_x) - r * arr(s.covariance_den_x), arr(s.ratio_stats.mean_den)
    )


def cuped_ratio_theta(control: CupedRatioStats, treatment: CupedRatioStats) -> Num:
    """Pooled CUPED coefficient θ for a ratio metric (ratio units per covariate unit)."""
    return out(
        _pooled_theta(
            _linearised_cov_x(control),
            arr(control.n),
            _linearised_cov_x(treatment),
            arr(treatment.n),
            arr(control.variance_x),
            arr(treatment.variance_x),
        )
    )


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
    rc, rt = control.ratio_stats, treatment.ratio_stats
    n_c, n_t = arr(control.n), arr(treatment.n)
    theta = arr(cuped_ratio_theta(control, treatment))
    pooled_x = safe_div(arr(control.sum_x) + arr(treatment.sum_x), n_c + n_t)
    est_c, var_c = _adjusted(
        arr(rc.ratio),
        linearised_variance(rc),
        _linearised_cov_x(control),
        arr(control.mean_x),
        arr(control.variance_x),
        n_c,
        theta,
        pooled_x,
    )
    est_t, var_t = _adjusted(
        arr(rt.ratio),
        linearised_variance(rt),
        _linearised_cov_x(treatment),
        arr(treatment.mean_x),
        arr(treatment.variance_x),
        n_t,
        theta,
        pooled_x,
    )
    return compare(
        method="cuped_delta_ratio",
        n_c=control.n,
        n_t=treatment.n,
        shown_mean_c=rc.ratio,
        shown_mean_t=rt.ratio,
        est_c=est_c,
        est_t=est_t,
        var_c=var_c,
        var_t=var_t,
        df=welch_df(var_c, n_c, var_t, n_t),
        alpha=alpha,
        alternative=alternative,
        theta=theta,
        invalid=ratio_invalid(n_c, n_t, arr(rc.mean_den), arr(rt.mean_den)),
    )
