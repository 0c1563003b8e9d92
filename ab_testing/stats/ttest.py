"""Welch t test for mean metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ab_testing.stats._num import arr
from ab_testing.stats.comparison import Arm, Comparison, compare_arms, validate_test_args

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
    c, t = _arm(control), _arm(treatment)
    return compare_arms("welch_t", c, t, alpha=alpha, alternative=alternative)


def _arm(s: SampleStats) -> Arm:
    return Arm(s.n, s.mean, arr(s.mean), arr(s.variance))
