"""Inputs and output rows of the per-experiment analysis (:mod:`ab_testing.stats.analysis`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ab_testing.settings import (
    MARGIN_TYPES,
    METRIC_KINDS,
    OVERALL_SLICE,
    Decision,
    MarginType,
    MetricKind,
    Reason,
    check_choice,
    check_positive,
)
from ab_testing.stats.moments import RegressionStats
from ab_testing.stats.srm import normalise_weights
from ab_testing.stats.sufficient import (
    AnyStats,
    CupedRatioStats,
    CupedStats,
    RatioStats,
    SampleStats,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_ALLOWED_STATS: dict[str, tuple[type, ...]] = {
    "binomial": (SampleStats, CupedStats, RegressionStats),
    "mean": (SampleStats, CupedStats, RegressionStats),
    "ratio": (RatioStats, CupedRatioStats, RegressionStats),
}


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """Definition of one metric of an experiment.

    Attributes:
        name: metric name (unique within the experiment).
        kind: "binomial" (statistics: SampleStats/CupedStats/RegressionStats of 0/1
            values), "mean" (SampleStats/CupedStats/RegressionStats) or "ratio"
            (RatioStats/CupedRatioStats/RegressionStats with ``ratio=True``).
        guardrail: test as a non-inferiority guardrail instead of a primary metric.
        margin: guardrail margin, > 0, in ``margin_type`` units (required for guardrails).
        margin_type: "relative" (fraction of control mean) or "absolute" (metric units).
        higher_is_better: direction in which the metric is good.
        use_cuped: use the covariates when CUPED or regression statistics are supplied.
        target_relative_effect: relative effect (> 0) for the achieved power; None uses
            ``AnalysisConfig.target_relative_effect``.
    """

    name: str
    kind: MetricKind
    guardrail: bool = False
    margin: float | None = None
    margin_type: MarginType = "relative"
    higher_is_better: bool = True
    use_cuped: bool = True
    target_relative_effect: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty str, got {self.name!r}")
        check_choice("kind", self.kind, METRIC_KINDS)
        check_choice("margin_type", self.margin_type, MARGIN_TYPES)
        for flag in ("guardrail", "higher_is_better", "use_cuped"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be a bool, got {getattr(self, flag)!r}")
        if self.guardrail and self.margin is None:
            raise ValueError(f"margin is required for guardrail metric {self.name!r}, got None")
        if self.margin is not None:
            check_positive("margin", self.margin)
        if self.target_relative_effect is not None:
            check_positive("target_relative_effect", self.target_relative_effect)


@dataclass(frozen=True, slots=True)
class Cell:
    """Sufficient statistics of one (variant, metric, slice) arm.

    ``stats`` covers the whole analysis window; ``daily`` optionally holds the *cumulative*
    statistics at each daily look (chronological, same type as ``stats``; the last one is
    normally equal to ``stats``) for the always-valid sequential p-value.
    """

    variant: str
    metric: str
    stats: AnyStats
    slice: str = OVERALL_SLICE
    daily: tuple[AnyStats, ...] = ()


@dataclass(frozen=True, slots=True)
class ExperimentData:
    """Everything needed to analyse one experiment.

    Attributes:
        experiment_id: identifier copied into every result row.
        control: name of the control variant (a key of ``expected_weights``).
        expected_weights: intended traffic split per variant (any positive scale).
        metrics: metric definitions.
        cells: statistics per (variant, metric, slice); a missing cell yields a
            ``missing_control``/``missing_variant`` row rather than an error.
        assignment_counts: units assigned per variant for the SRM check; None uses the
            overall-slice ``n`` of the first metric.
    """

    experiment_id: str
    control: str
    expected_weights: Mapping[str, float]
    metrics: Sequence[MetricSpec]
    cells: Sequence[Cell]
    assignment_counts: Mapping[str, float] | None = None


def validate_experiment(data: ExperimentData) -> dict[str, float]:
    """Check an experiment's cross-references; return its normalised weights.

    Raises ValueError/TypeError naming the offending argument and value.
    """
    if not isinstance(data.experiment_id, str) or not data.experiment_id:
        raise ValueError(f"experiment_id must be a non-empty str, got {data.experiment_id!r}")
    weights = normalise_weights(data.expected_weights)
    if data.control not in weights:
        raise ValueError(
            f"control must be a key of expected_weights {sorted(weights)}, got {data.control!r}"
        )
    specs: dict[str, MetricSpec] = {}
    for spec in data.metrics:
        if not isinstance(spec, MetricSpec):
            raise TypeError(f"metrics must hold MetricSpec, got {spec!r}")
        if spec.name in specs:
            raise ValueError(f"metrics has a duplicate name: {spec.name!r}")
        specs[spec.name] = spec
    if not specs:
        raise ValueError("metrics must be non-empty, got []")
    seen: set[tuple[str, str, str]] = set()
    for cell in data.cells:
        if not isinstance(cell, Cell):
            raise TypeError(f"cells must hold Cell, got {cell!r}")
        if cell.variant not in weights:
            raise ValueError(f"cell.variant must be in expected_weights, got {cell.variant!r}")
        if cell.metric not in specs:
            raise ValueError(f"cell.metric must be a defined metric, got {cell.metric!r}")
        key = (cell.slice, cell.metric, cell.variant)
        if key in seen:
            raise ValueError(f"cells has a duplicate (slice, metric, variant): {key!r}")
        seen.add(key)
        allowed = _ALLOWED_STATS[specs[cell.metric].kind]
        for s in (cell.stats, *cell.daily):
            if not isinstance(s, allowed) or type(s) is not type(cell.stats):
                raise TypeError(
                    f"stats for {specs[cell.metric].kind} metric {cell.metric!r} must be one "
                    f"of {[t.__name__ for t in allowed]} (daily of the same type), got "
                    f"{type(s).__name__}"
                )
            if isinstance(s, RegressionStats) and s.ratio != (specs[cell.metric].kind == "ratio"):
                raise ValueError(
                    f"RegressionStats.ratio must be {not s.ratio} for "
                    f"{specs[cell.metric].kind} metric {cell.metric!r}, got {s.ratio!r}"
                )
    if data.assignment_counts is not None:
        for name, count in data.assignment_counts.items():
            if name not in weights or not math.isfinite(float(count)) or float(count) < 0:
                raise ValueError(f"assignment_counts[{name!r}] invalid, got {count!r}")
    return weights


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One published result: ``variant`` vs ``control`` for ``metric`` in ``slice``.

    Numbers are floats (NaN when unavailable); ``n_*`` are randomisation units (None when
    suppressed).  Means are per unit for binomial/mean metrics (rates in [0, 1] for
    binomial) and Σnum/Σden for ratio metrics, unadjusted.  ``abs_*`` are treatment -
    control in metric units, ``rel_*`` treatment/control - 1 as fractions (CUPED-adjusted
    when ``method`` starts with "cuped").  CIs are two-sided ``1 - alpha``.  p-values are in
    [0, 1]: ``p_value`` two-sided fixed-horizon; ``p_value_adjusted`` after the configured
    correction within the slice's primary metrics x variants (NaN for guardrails);
    ``p_value_sequential`` always-valid mSPRT (NaN unless daily looks were given);
    ``p_value_noninferiority`` one-sided (guardrails only); ``srm_p_value`` experiment-level.
    ``power`` is the achieved power for the target relative effect; ``mde_relative`` the
    relative effect detectable with the configured power.  ``decision``/``reason`` are
    documented in :mod:`ab_testing.settings`; ``detail`` carries an error message.

    Test details (every method): ``abs_se`` (SE of ``abs_lift``, metric units),
    ``statistic`` (z or t), ``df`` (t degrees of freedom; None for z tests), ``p_value_sides``
    ("two-sided": the sidedness of ``p_value``/``p_value_adjusted``).  Regression adjustment
    (``method`` "regression_*", see :mod:`ab_testing.stats.regression`): ``abs_lift`` is
    ``mean_variant_adjusted - mean_control_adjusted``; ``covariates`` names them (missing
    indicators end in ":missing"), ``theta_control``/``theta_variant`` the per-arm slopes in
    that order, ``variance_reduction`` 1 - Var_adj/Var_unadj, and ``abs_lift_unadjusted``,
    ``abs_se_unadjusted``, ``p_value_unadjusted`` the same estimator without covariates (same
    variance family); ``n_filled_*`` the units whose covariate was missing, per covariate.
    These are NaN / empty for other methods.
    """

    experiment_id: str
    metric: str
    variant: str
    control: str
    slice: str
    kind: MetricKind | None
    guardrail: bool
    method: str | None
    n_control: int | None
    n_variant: int | None
    mean_control: float
    mean_variant: float
    abs_lift: float
    abs_ci_low: float
    abs_ci_high: float
    rel_lift: float
    rel_ci_low: float
    rel_ci_high: float
    p_value: float
    p_value_adjusted: float
    p_value_sequential: float
    p_value_noninferiority: float
    srm_p_value: float
    power: float
    mde_relative: float
    decision: Decision
    reason: Reason | None = None
    detail: str | None = field(default=None)
    abs_se: float = math.nan
    statistic: float = math.nan
    df: float | None = None
    p_value_sides: str = "two-sided"
    mean_control_adjusted: float = math.nan
    mean_variant_adjusted: float = math.nan
    variance_reduction: float = math.nan
    abs_lift_unadjusted: float = math.nan
    abs_se_unadjusted: float = math.nan
    p_value_unadjusted: float = math.nan
    covariates: tuple[str, ...] = ()
    theta_control: tuple[float, ...] = ()
    theta_variant: tuple[float, ...] = ()
    n_filled_control: tuple[tuple[str, int], ...] = ()
    n_filled_variant: tuple[tuple[str, int], ...] = ()
