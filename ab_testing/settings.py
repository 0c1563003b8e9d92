"""Allowed values and the validated analysis configuration for the A/B stats engine.

Every enumerated choice used by :mod:`ab_testing.stats` is declared here once as a
``Literal`` type, and every caller-supplied setting is validated once, at the edge,
by :class:`AnalysisConfig` (or by the ``check_*`` helpers for the few public
functions that take a choice directly).  Invalid input raises ``ValueError`` naming
the argument and the offending value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal, get_args

MetricKind = Literal["binomial", "mean", "ratio"]
"""``binomial``: 0/1 per unit (rate); ``mean``: any numeric per unit; ``ratio``: sum of a
numerator over sum of a denominator, both summed per randomisation unit (delta method)."""

Correction = Literal["holm", "fdr_bh", "none"]
"""Multiple-testing correction across metrics x variants (statsmodels ``multipletests`` names)."""

Alternative = Literal["two-sided", "larger", "smaller"]
"""Alternative hypothesis for treatment - control (statsmodels naming)."""

MarginType = Literal["relative", "absolute"]
"""Unit of a guardrail's non-inferiority margin: fraction of the control mean, or metric units."""

Decision = Literal[
    "ship",  # primary metric: significant (adjusted p < alpha) change in the good direction
    "harm",  # primary metric: significant change in the bad direction
    "no_effect",  # not significant and powered (power >= config.power) for the target effect
    "inconclusive",  # not significant and under-powered for the target effect
    "not_worse",  # guardrail: non-inferiority shown (one-sided p < alpha)
    "possibly_worse",  # guardrail: non-inferiority not shown
    "srm_fail",  # sample-ratio mismatch: numbers shown for diagnosis only, do not act on them
    "not_analysable",  # the data cannot be analysed; see ``reason``
    "suppressed",  # slice too small to publish; no numbers
]

Reason = Literal[
    "insufficient_sample",  # fewer than 2 units in an arm
    "zero_variance",  # the estimate's standard error is zero
    "zero_denominator",  # ratio metric with a zero mean denominator in an arm
    "zero_control_mean",  # relative lift undefined (control mean is 0); absolute numbers kept
    "missing_control",  # no statistics for the control arm
    "missing_variant",  # no statistics for the treatment arm
    "suppressed_small_slice",  # an arm of the slice has fewer than ``min_units_per_slice`` units
    "sample_ratio_mismatch",  # SRM p-value below ``srm_threshold``
    "error",  # the whole experiment failed (batch isolation); see ``detail``
]

EventAgg = Literal["count", "sum", "any"]
"""How a unit's events in a window become a number: how many, sum of ``value``, at least one."""

SequentialMethod = Literal["msprt"]
"""Always-valid inference method.  Only the mixture SPRT (Johari et al. 2017) is provided."""

METRIC_KINDS: Final = get_args(MetricKind)
CORRECTIONS: Final = get_args(Correction)
ALTERNATIVES: Final = get_args(Alternative)
MARGIN_TYPES: Final = get_args(MarginType)
DECISIONS: Final = get_args(Decision)
REASONS: Final = get_args(Reason)
SEQUENTIAL_METHODS: Final = get_args(SequentialMethod)
EVENT_AGGS: Final = get_args(EventAgg)

OVERALL_SLICE: Final = "all"
"""Slice label for the whole experiment population."""


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def check_open_unit(name: str, value: object) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``value`` is a real number in (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float in (0, 1), got {value!r}")
    if not (0.0 < float(value) < 1.0):
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")


def check_int_in(name: str, value: object, lo: int, hi: int) -> int:
    """Return ``value`` if it is an int (not a bool) in ``[lo, hi]``; else raise ``ValueError``
    naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name}: expected an integer in [{lo}, {hi}], got {value!r}")
    return value


def check_positive(name: str, value: object) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``value`` is a finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    if not (math.isfinite(float(value)) and float(value) > 0.0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class AnalysisConfig:
    """Validated settings for :func:`ab_testing.stats.analyze_experiment`.

    Attributes:
        alpha: two-sided significance level in (0, 1); CIs are ``1 - alpha`` two-sided.
        srm_threshold: SRM chi-square p-value below which the experiment fails SRM, in (0, 1).
        correction: multiple-testing correction across primary metrics x variants per slice.
        power: target power in (0, 1) used for the MDE and the ``no_effect`` decision.
        min_units_per_slice: an arm with fewer units (randomisation units) in a slice
            suppresses that row (privacy); integer >= 0.  Applies to every slice,
            including the overall one.
        target_relative_effect: default relative effect (fraction of the control mean,
            > 0) used for achieved power; a metric's own ``target_relative_effect`` wins.
        sequential_method: always-valid method for the daily-look p-value.
        sequential_tau: mSPRT mixing standard deviation, in units of the metric's per-unit
            standard deviation (a standardised effect size, Cohen's d), > 0.  Set it near
            the effect sizes you expect: smaller values give more power for small effects
            late in the test, larger ones stop earlier on large effects.
    """

    alpha: float = 0.05
    srm_threshold: float = 0.001
    correction: Correction = "holm"
    power: float = 0.8
    min_units_per_slice: int = 50
    target_relative_effect: float = 0.05
    sequential_method: SequentialMethod = "msprt"
    sequential_tau: float = 0.05

    def __post_init__(self) -> None:
        check_open_unit("alpha", self.alpha)
        check_open_unit("srm_threshold", self.srm_threshold)
        check_choice("correction", self.correction, CORRECTIONS)
        check_open_unit("power", self.power)
        if isinstance(self.min_units_per_slice, bool) or not isinstance(
            self.min_units_per_slice, int
        ):
            raise TypeError(f"min_units_per_slice must be an int, got {self.min_units_per_slice!r}")
        if self.min_units_per_slice < 0:
            raise ValueError(f"min_units_per_slice must be >= 0, got {self.min_units_per_slice!r}")
        check_positive("target_relative_effect", self.target_relative_effect)
        check_choice("sequential_method", self.sequential_method, SEQUENTIAL_METHODS)
        check_positive("sequential_tau", self.sequential_tau)


# --------------------------------------------------------------------------------------------
# Allowed values of experiment assignment (validated by :mod:`ab_testing.config`).

FilterOp = Literal["eq", "in", "lt", "le", "gt", "ge"]
"""Targeting operators on one unit attribute: equals a value, is in a list of values, or a
numeric comparison (``<``, ``<=``, ``>``, ``>=``).  A missing or null attribute never matches."""

ValueKind = Literal["string", "number", "bool"]
"""Type of a targeting value; a unit attribute must have the same kind (ints and floats are both
``number``, ``bool`` is never a number)."""

FILTER_OPS: Final = get_args(FilterOp)
VALUE_KINDS: Final = get_args(ValueKind)
