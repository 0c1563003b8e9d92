"""The common two-sample result and the inference step shared by all tests.

Every test reduces an arm to (mean estimate, variance of that estimate, n); the difference
``treatment - control`` is then tested with a z or Welch t reference distribution, and the
relative lift ``treatment / control - 1`` gets a delta-method CI (as GrowthBook's ``gbstats``
frequentist engine does), using the same reference distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from ab_testing.settings import ALTERNATIVES, Alternative, Reason, check_choice, check_open_unit
from ab_testing.stats._num import Array, Mask, Num, arr, out, safe_div


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treatment vs control for one metric.

    Lifts are ``treatment - control`` (metric units) and ``treatment / control - 1``
    (fraction; 0.05 means +5 %).  CIs are two-sided at ``1 - alpha`` whatever the
    ``alternative``, which only changes the p-value.  ``df`` is ``inf`` for z tests.
    With array inputs every field is an array and ``reason`` is ``None``:
    unanalysable elements are NaN.  With scalar inputs ``reason`` says why numbers are NaN
    (or, for ``zero_control_mean``, why only the relative lift is NaN).
    ``theta`` is the CUPED coefficient (NaN for unadjusted tests).
    """

    method: str
    n_control: Num
    n_treatment: Num
    mean_control: Num
    mean_treatment: Num
    abs_lift: Num
    abs_se: Num
    abs_ci_low: Num
    abs_ci_high: Num
    rel_lift: Num
    rel_se: Num
    rel_ci_low: Num
    rel_ci_high: Num
    statistic: Num
    df: Num
    p_value: Num
    theta: Num
    reason: Reason | None


def validate_test_args(alpha: float, alternative: str) -> None:
    """Validate the common keyword arguments of the public tests."""
    check_open_unit("alpha", alpha)
    check_choice("alternative", alternative, ALTERNATIVES)


def welch_df(var_mean_c: Array, n_c: Array, var_mean_t: Array, n_t: Array) -> Array:
    """Welch–Satterthwaite degrees of freedom from the variances of the two arm means."""
    num = (var_mean_c + var_mean_t) ** 2
    den = var_mean_c**2 / (n_c - 1.0) + var_mean_t**2 / (n_t - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((n_c >= 2) & (n_t >= 2), safe_div(num, den), np.nan)


def _sf_cdf(stat: Array, df: Array | None) -> tuple[Array, Array]:
    if df is None:
        return arr(stats.norm.sf(stat)), arr(stats.norm.cdf(stat))
    return arr(stats.t.sf(stat, df)), arr(stats.t.cdf(stat, df))


def p_value(stat: Array, df: Array | None, alternative: Alternative) -> Array:
    """p-value of a z (``df is None``) or t statistic for ``alternative``."""
    sf, cdf = _sf_cdf(stat, df)
    if alternative == "larger":
        return sf
    if alternative == "smaller":
        return cdf
    return np.minimum(1.0, 2.0 * np.minimum(sf, cdf))


def critical_value(alpha: float, df: Array | None) -> Array:
    """Two-sided ``1 - alpha`` critical value of the z or t distribution."""
    if df is None:
        return arr(stats.norm.isf(alpha / 2.0))
    return arr(stats.t.isf(alpha / 2.0, df))


def _fieller(
    est_c: Array, est_t: Array, var_c: Array, var_t: Array, crit: Array
) -> tuple[Any, Any]:
    """Fieller's interval for ``est_t / est_c - 1`` (independent arm estimates).

    The set of R with ``(t - R c)^2 <= crit^2 (var_t + R^2 var_c)``, i.e. the ratios a test of
    ``t - R c = 0`` does not reject. At R = 1 that is the test on the difference with standard
    error ``sqrt(var_c + var_t)``, so the relative interval excludes 0 exactly when the absolute
    one does. The delta-method interval ``rel ± crit * rel_se`` lacks this: for a large relative
    effect on a small mean it can exclude 0 while the test's p is above alpha. When the control
    mean is not itself distinguishable from 0 (``c^2 <= crit^2 var_c``) the set is unbounded (the
    whole line, or two rays around a gap) and ``(-inf, inf)`` is reported, which is conservative.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        k = crit**2
        a = est_c**2 - k * var_c
        b = est_t * est_c
        # b^2 - a * (t^2 - k var_t) = k (a var_t + t^2 var_c) >= 0 whenever a > 0.
        root = np.sqrt(np.maximum(k * (a * var_t + est_t**2 * var_c), 0.0))
        lo = np.where(a > 0, (b - root) / a - 1.0, -np.inf)
        hi = np.where(a > 0, (b + root) / a - 1.0, np.inf)
    return lo, hi


def compare(
    *,
    method: str,
    n_c: Num,
    n_t: Num,
    shown_mean_c: Num,
    shown_mean_t: Num,
    est_c: Array,
    est_t: Array,
    var_c: Array,
    var_t: Array,
    df: Array | None,
    alpha: float,
    alternative: Alternative,
    test_se: Array | None = None,
    theta: Array | None = None,
    invalid: list[tuple[Reason, Mask]],
) -> Comparison:
    """Build a :class:`Comparison` from per-arm estimates and variances of those estimates.

    ``est_*`` are the arm estimates that enter the lift (adjusted for CUPED), ``var_*`` their
    variances (already divided by n), ``shown_mean_*`` the reported unadjusted means.
    ``test_se`` overrides the standard error used for the test statistic (the pooled SE of the
    two-proportion z test); the CI always uses ``sqrt(var_c + var_t)``.  ``invalid`` lists
    (reason, mask) pairs in priority order; masked elements become NaN.  A zero test
    standard error is reported as ``zero_variance``.
    """
    se = np.sqrt(var_c + var_t)
    se_stat = se if test_se is None else test_se
    checks: list[tuple[Reason, Mask]] = [*invalid, ("zero_variance", np.asarray(se_stat == 0.0))]
    bad = np.zeros(np.broadcast(est_c, est_t, se, se_stat).shape, dtype=bool)
    for _, mask in checks:
        bad = bad | mask
    zeros = np.zeros(bad.shape)
    diff = np.where(bad, np.nan, est_t - est_c)
    se = np.where(bad, np.nan, se)
    stat = safe_div(diff, se_stat)
    crit = critical_value(alpha, df)
    # Delta method for R = est_t / est_c:  Var(R) ≈ var_t / c² + t² var_c / c⁴.
    rel = safe_div(diff, est_c)
    rel_se = np.sqrt(safe_div(var_t, est_c**2) + safe_div(est_t**2 * var_c, est_c**4))
    rel = np.where(np.isfinite(rel_se), rel, np.nan)
    rel_se = np.where(np.isnan(rel), np.nan, rel_se)
    rel_lo, rel_hi = _fieller(est_c, est_t, var_c, var_t, crit)
    rel_lo = np.where(np.isnan(rel), np.nan, rel_lo)
    rel_hi = np.where(np.isnan(rel), np.nan, rel_hi)
    reason: Reason | None = None
    if bad.ndim == 0:
        for why, mask in checks:
            if bool(mask):
                reason = why
                break
        if reason is None and float(est_c) == 0.0:
            reason = "zero_control_mean"
    return Comparison(
        method=method,
        n_control=n_c,
        n_treatment=n_t,
        mean_control=shown_mean_c,
        mean_treatment=shown_mean_t,
        abs_lift=out(diff),
        abs_se=out(se),
        abs_ci_low=out(diff - crit * se),
        abs_ci_high=out(diff + crit * se),
        rel_lift=out(rel),
        rel_se=out(rel_se),
        rel_ci_low=out(rel_lo),
        rel_ci_high=out(rel_hi),
        statistic=out(stat),
        df=out(zeros + np.inf if df is None else np.where(bad, np.nan, df + zeros)),
        p_value=out(p_value(stat, df, alternative)),
        theta=out(zeros + np.nan if theta is None else np.where(bad, np.nan, theta + zeros)),
        reason=reason,
    )


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm reduced to what a Welch comparison needs (gbstats' per-arm statistic).

    Attributes:
        units: the arm's ``n`` as given (reported as is).
        shown: the reported (unadjusted) arm mean, metric units.
        estimate: the arm estimate that enters the lift (CUPED-adjusted for CUPED tests).
        unit_variance: per-unit variance of the values ``estimate`` is the mean of; the
            estimate's variance is ``unit_variance / n``.
    """

    units: Num
    shown: Num
    estimate: Array
    unit_variance: Array


def insufficient_sample(n_c: Array, n_t: Array) -> tuple[Reason, Mask]:
    """The invalid-data mask every two-sample test starts with: an arm with n < 2."""
    return "insufficient_sample", (n_c < 2) | (n_t < 2)


def compare_arms(
    method: str,
    control: Arm,
    treatment: Arm,
    *,
    alpha: float,
    alternative: Alternative,
    invalid: tuple[tuple[Reason, Mask], ...] = (),
    theta: Array | None = None,
    z_se: Array | None = None,
) -> Comparison:
    """:func:`compare` for tests of two means of units: each estimate's variance is
    ``unit_variance / n``; the reference distribution is Welch's t, or the normal with test
    standard error ``z_se`` when given (the two-proportion z test). An arm with n < 2 is
    ``insufficient_sample``, checked before the test's own ``invalid`` masks."""
    n_c, n_t = arr(control.units), arr(treatment.units)
    var_c = safe_div(control.unit_variance, n_c)
    var_t = safe_div(treatment.unit_variance, n_t)
    return compare(
        method=method,
        n_c=control.units,
        n_t=treatment.units,
        shown_mean_c=control.shown,
        shown_mean_t=treatment.shown,
        est_c=control.estimate,
        est_t=treatment.estimate,
        var_c=var_c,
        var_t=var_t,
        df=welch_df(var_c, n_c, var_t, n_t) if z_se is None else None,
        alpha=alpha,
        alternative=alternative,
        test_se=z_se,
        theta=theta,
        invalid=[insufficient_sample(n_c, n_t), *invalid],
    )
