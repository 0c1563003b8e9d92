"""Welch t test for mean metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ab_testing.stats._num import arr, safe_div
from ab_testing.stats.comparison import Comparison, compare, validate_test_args, welch_df

if TYPE_CHECKING:
    from ab_testing.settings import Alternative
    from ab_testing.stats.sufficient import SampleStats


def welch_t_test(
    control: SampleStats,
    treatment: SampleStats,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """Welch (unequal-variance) t test of ``mean_treatment - mean_control``.

    Standard error ``sqrt(s_c²/n_c + s_t²/n_t)`` with sample variances (ddof = 1) and
    Welch–Satterthwaite degrees of freedom; equals ``scipy.stats.ttest_ind(equal_var=False)``.
    Needs n >= 2 per arm and a non-zero standard error.

    Args:
        control, treatment: per-unit sums of the metric.
        alpha: significance level in (0, 1); the CIs are two-sided ``1 - alpha``.
        alternative: H1 for ``mean_t - mean_c``: "two-sided", "larger" or "smaller".
    """
    validate_test_args(alpha, alternative)
    n_c, n_t = arr(control.n), arr(treatment.n)
    var_c = safe_div(arr(control.variance), n_c)
    var_t = safe_div(arr(treatment.variance), n_t)
    return compare(
        method="welch_t",
        n_c=control.n,
        n_t=treatment.n,
        shown_mean_c=control.mean,
        shown_mean_t=treatment.mean,
        est_c=arr(control.mean),
        est_t=arr(treatment.mean),
        var_c=var_c,
        var_t=var_t,
        df=welch_df(var_c, n_c, var_t, n_t),
        alpha=alpha,
        alternative=alternative,
        invalid=[("insufficient_sample", (n_c < 2) | (n_t < 2))],
    )
