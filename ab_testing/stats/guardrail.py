"""Guardrail metrics as one-sided non-inferiority tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import stats

from ab_testing.settings import (
    MARGIN_TYPES,
    MarginType,
    Reason,
    check_choice,
    check_open_unit,
    check_positive,
)
from ab_testing.stats._num import Array, Num, arr, out, safe_div

if TYPE_CHECKING:
    from ab_testing.stats.comparison import Comparison

GuardrailDecision = Literal["not_worse", "possibly_worse"]


@dataclass(frozen=True, slots=True)
class NonInferiorityResult:
    """One-sided non-inferiority outcome.

    ``p_value`` (in [0, 1]) tests H0 "the treatment is worse by at least ``margin``";
    ``bound`` is the one-sided ``1 - alpha`` confidence bound on the lift in the margin's
    units (lower bound if higher is better, upper bound otherwise).  ``decision`` is
    ``not_worse`` when ``p_value < alpha``, else ``possibly_worse``; it and ``reason`` are
    only set for scalar inputs (``decision`` is None when the data are not analysable).
    """

    margin: float
    margin_type: MarginType
    statistic: Num
    p_value: Num
    bound: Num
    decision: GuardrailDecision | None
    reason: Reason | None


def non_inferiority_test(
    comparison: Comparison,
    *,
    margin: float,
    margin_type: MarginType = "relative",
    higher_is_better: bool = True,
    alpha: float = 0.05,
) -> NonInferiorityResult:
    """Non-inferiority test on a :class:`Comparison`'s lift.

    With ``higher_is_better`` H0 is ``lift <= -margin`` vs H1 ``lift > -margin``; otherwise
    H0 is ``lift >= margin``.  ``margin_type="relative"`` uses the relative lift (margin
    0.02 = 2 % of the control mean) and its delta-method SE; ``"absolute"`` the absolute
    lift (metric units) and its unpooled SE.  Reference distribution: the comparison's
    (z or Welch t with its df).  Guardrails need no multiplicity correction when shipping
    requires *all* of them to pass (an intersection-union test; Schultzberg, Ankargren &
    Frånberg 2024, "Risk-aware product decisions in A/B tests with multiple metrics").

    Args:
        comparison: the fixed-horizon comparison of the guardrail metric.
        margin: tolerated deterioration, > 0, in ``margin_type`` units.
        margin_type: "relative" (fraction of control) or "absolute" (metric units).
        higher_is_better: direction in which the metric is good.
        alpha: one-sided level in (0, 1).
    """
    check_positive("margin", margin)
    check_choice("margin_type", margin_type, MARGIN_TYPES)
    check_open_unit("alpha", alpha)
    if not isinstance(higher_is_better, bool):
        raise TypeError(f"higher_is_better must be a bool, got {higher_is_better!r}")
    if margin_type == "relative":
        lift, se = arr(comparison.rel_lift), arr(comparison.rel_se)
    else:
        lift, se = arr(comparison.abs_lift), arr(comparison.abs_se)
    df = arr(comparison.df)
    sign = 1.0 if higher_is_better else -1.0
    # Distance from the H0 boundary in the "good" direction, in standard errors.
    stat = safe_div(sign * lift + margin, se)
    dist_sf: Array = np.where(np.isinf(df), stats.norm.sf(stat), stats.t.sf(stat, df))
    crit: Array = np.where(np.isinf(df), stats.norm.isf(alpha), stats.t.isf(alpha, df))
    bound = lift - sign * crit * se
    decision: GuardrailDecision | None = None
    reason: Reason | None = None
    if stat.ndim == 0:
        if np.isfinite(stat):
            decision = "not_worse" if float(dist_sf) < alpha else "possibly_worse"
        else:
            reason = comparison.reason or "zero_control_mean"
    return NonInferiorityResult(
        margin=float(margin),
        margin_type=margin_type,
        statistic=out(stat),
        p_value=out(arr(dist_sf)),
        bound=out(bound),
        decision=decision,
        reason=reason,
    )
