"""Two-proportion z test for binomial (0/1 per unit) metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ab_testing.stats._num import arr, safe_div
from ab_testing.stats.comparison import Arm, Comparison, compare_arms, validate_test_args

if TYPE_CHECKING:
    from ab_testing.settings import Alternative
    from ab_testing.stats.sufficient import SampleStats


def _check_counts(name: str, s: SampleStats) -> None:
    if np.any(arr(s.sum) > arr(s.n)):
        raise ValueError(f"{name}.sum (successes) must be <= {name}.n, got {s.sum!r} > {s.n!r}")


def two_proportion_z_test(
    control: SampleStats,
    treatment: SampleStats,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """Two-proportion z test of ``p_treatment - p_control``.

    Only ``n`` (units) and ``sum`` (units with y = 1) are used.  As is standard, the test
    statistic uses the *pooled* standard error under H0 (p_c = p_t = p̄):
    ``sqrt(p̄(1 - p̄)(1/n_c + 1/n_t))`` — identical to statsmodels ``proportions_ztest`` —
    while the CI uses the *unpooled* Wald standard error ``sqrt(p_c q_c / n_c + p_t q_t / n_t)``
    — identical to ``confint_proportions_2indep(method="wald")``.  The relative-lift CI is
    the delta method on p_t / p_c with the unpooled variances.  Needs n >= 2 per arm.

    Args:
        control, treatment: arm counts; ``0 <= sum <= n``.
        alpha: significance level in (0, 1); the CIs are two-sided ``1 - alpha``.
        alternative: H1 for ``p_t - p_c``: "two-sided", "larger" or "smaller".
    """
    validate_test_args(alpha, alternative)
    _check_counts("control", control)
    _check_counts("treatment", treatment)
    n_c, n_t = arr(control.n), arr(treatment.n)
    s_c, s_t = arr(control.sum), arr(treatment.sum)
    p_c, p_t = safe_div(s_c, n_c), safe_div(s_t, n_t)
    pooled = safe_div(s_c + s_t, n_c + n_t)
    pooled_se = np.sqrt(pooled * (1.0 - pooled) * safe_div(n_c + n_t, n_c * n_t))
    # The CI's unpooled Wald variance p(1 - p)/n: a Bernoulli unit's variance over n.
    c = Arm(control.n, control.mean, p_c, p_c * (1.0 - p_c))
    t = Arm(treatment.n, treatment.mean, p_t, p_t * (1.0 - p_t))
    return compare_arms(
        "two_proportion_z", c, t, alpha=alpha, alternative=alternative, z_se=pooled_se
    )
