"""Delta-method test for ratio metrics (ratio of sums, analysis unit ≠ randomisation unit)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ab_testing.stats._num import Array, Mask, arr, safe_div
from ab_testing.stats.comparison import Arm, Comparison, compare_arms, validate_test_args

if TYPE_CHECKING:
    from ab_testing.settings import Alternative, Reason
    from ab_testing.stats.sufficient import RatioStats


def linearised_variance(s: RatioStats) -> Array:
    """Per-unit variance of the linearised ratio ``(num - R·den) / mean_den``.

    Delta method (Deng, Knoblich & Lu 2018, "Applying the Delta Method in Metric
    Analytics"): for R = mean_num / mean_den,
    ``Var(R̂) ≈ (σ_num² - 2R σ_num,den + R² σ_den²) / (n · mean_den²)``; this returns the
    bracket divided by mean_den², i.e. ``n · Var(R̂)``.
    """
    r = arr(s.ratio)
    bracket = arr(s.variance_num) - 2.0 * r * arr(s.covariance) + r**2 * arr(s.variance_den)
    return np.maximum(safe_div(bracket, arr(s.mean_den) ** 2), 0.0)


def zero_denominator(den_c: Array, den_t: Array) -> tuple[Reason, Mask]:
    """The ratio tests' own invalid-data mask (after the sample size): a zero mean denominator."""
    return "zero_denominator", (den_c == 0) | (den_t == 0)


def delta_ratio_test(
    control: RatioStats,
    treatment: RatioStats,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """Test ``R_treatment - R_control`` for R = Σnum / Σden (e.g. clicks / impressions).

    Units are randomisation units (e.g. users) while the metric is per analysis unit
    (e.g. impressions), so per-impression variance would be wrong; the delta method uses
    the per-unit numerator/denominator variances and covariance (see
    :func:`linearised_variance`).  Reference distribution: Welch t on the linearised
    per-unit values (≈ normal at the sample sizes the delta method needs).  Needs n >= 2
    per arm and a non-zero mean denominator.

    Args:
        control, treatment: per-unit sums of numerator and denominator.
        alpha: significance level in (0, 1); the CIs are two-sided ``1 - alpha``.
        alternative: H1 for ``R_t - R_c``: "two-sided", "larger" or "smaller".
    """
    validate_test_args(alpha, alternative)
    c, t = _arm(control), _arm(treatment)
    invalid = (zero_denominator(arr(control.mean_den), arr(treatment.mean_den)),)
    return compare_arms("delta_ratio", c, t, alpha=alpha, alternative=alternative, invalid=invalid)


def _arm(s: RatioStats) -> Arm:
    return Arm(s.n, s.ratio, arr(s.ratio), linearised_variance(s))
