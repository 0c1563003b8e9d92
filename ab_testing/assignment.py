"""Experiment assignment in pure Python: the reference an app can copy (stdlib only).

The unit's bucket under a salt follows the contract in :mod:`ab_testing.bucketing` (XXH64 of
``salt + ":" + unit_id``, seed 42, ``(digest >> 1) mod 10000``).

Decision logic (shared with :mod:`ab_testing.assignment_spark` through
:meth:`ab_testing.config.ExperimentsConfig.active`): a unit whose bucket under the holdout salt is
below ``holdout.buckets`` is in no experiment. Otherwise, in each layer, the unit's bucket under
the layer salt picks at most one experiment (active experiments of a layer own disjoint bucket
ranges, of which the ramp makes a prefix live); the unit must then pass every targeting filter, and
its bucket under the experiment salt picks the variant by the quantised weights. The variant
depends only on the experiment salt, so ramping up (a longer live prefix) adds units and never
moves one between arms.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, cast

from ab_testing.bucketing import bucket

if TYPE_CHECKING:
    from ab_testing.config_model import Experiment, ExperimentsConfig, TargetingFilter




@dataclass(frozen=True, slots=True)
class Assignment:
    """One unit's place in one experiment.

    Attributes:
        experiment_id: The experiment.
        layer_id: Its layer (a unit is in at most one experiment per layer).
        variant: The variant id the unit sees.
        is_control: True for the experiment's control variant.
        bucket: The unit's bucket under the layer salt, [0, 10000).
        variant_bucket: The unit's bucket under the experiment salt, [0, 10000).
    """

    experiment_id: str
    layer_id: str
    variant: str
    is_control: bool
    bucket: int
    variant_bucket: int


def matches(flt: TargetingFilter, attributes: Mapping[str, object]) -> bool:
    """Whether ``attributes`` pass one targeting filter.

    A missing or ``None`` attribute, or a NaN for a numeric filter, never matches.

    Raises:
        TypeError: the attribute's type does not fit the filter (a string for a numeric
            filter, a bool for a string filter, ...), naming the attribute.
    """
    value = attributes.get(flt.attribute)
    if value is None:
        return False
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    kind = "number" if is_number else "bool" if isinstance(value, bool) else "string"
    if kind != flt.kind or not isinstance(value, (str, int, float)):
        raise TypeError(
            f"attributes[{flt.attribute!r}]: expected a {flt.kind} for the targeting filter, "
            f"got {value!r}"
        )
    if isinstance(value, float) and math.isnan(value):
        return False
    if flt.op in ("eq", "in"):
        return value in flt.values
    num, bound = float(value), cast(float, flt.values[0])
    if flt.op == "lt":
        return num < bound
    if flt.op == "le":
        return num <= bound
    if flt.op == "gt":
        return num > bound
    return num >= bound


def _variant_of(experiment: Experiment, unit_id: str) -> tuple[int, str, bool]:
    vb = bucket(experiment.salt, unit_id)
    k = bisect.bisect_right(experiment.variant_bounds, vb)
    variant = experiment.variants[k]
    return vb, variant.id, variant.control


def in_holdout(config: ExperimentsConfig, unit_id: str) -> bool:
    """True when the unit is in the global holdout (in no experiment, ever, for this salt)."""
    h = config.holdout
    return h.buckets > 0 and bucket(h.salt, unit_id) < h.buckets


def assign(
    config: ExperimentsConfig,
    unit_id: str,
    attributes: Mapping[str, object] | None = None,
    *,
    on: date,
) -> tuple[Assignment, ...]:
    """Every experiment ``unit_id`` is in on day ``on``: at most one per layer, in layer order.

    Args:
        config: A validated configuration (:func:`ab_testing.config.load_config`).
        unit_id: The randomisation unit, e.g. a user id as a decimal string.
        attributes: Unit attributes the targeting filters read (e.g. ``{"age": 31}``).
        on: The day (UTC); experiments run on ``start <= on < end`` at the ramp of that day.

    Returns:
        A tuple of :class:`Assignment`, empty when the unit is held out or in nothing.

    Raises:
        TypeError: ``unit_id`` is not a ``str``, ``on`` is not a date, or an attribute's type
            does not fit its filter.
    """
    if not isinstance(unit_id, str):
        raise TypeError(f"unit_id: expected a str, got {unit_id!r}")
    attrs: Mapping[str, object] = {} if attributes is None else attributes
    if in_holdout(config, unit_id):
        return ()
    out: list[Assignment] = []
    for active in config.active(on):
        b = bucket(active.layer.salt, unit_id)
        for live in active.experiments:
            if live.lo <= b < live.hi:
                exp = live.experiment
                if all(matches(f, attrs) for f in exp.targeting):
                    vb, variant, is_control = _variant_of(exp, unit_id)
                    out.append(Assignment(exp.id, active.layer.id, variant, is_control, b, vb))
                # Live ranges of one layer are disjoint: no other experiment can hold b.
                break
    return tuple(out)


def assignment_for(
    config: ExperimentsConfig,
    experiment_id: str,
    unit_id: str,
    attributes: Mapping[str, object] | None = None,
    *,
    on: date,
) -> Assignment | None:
    """The unit's assignment to one experiment on day ``on``, or None when it is not in it.

    Raises:
        ValueError: ``experiment_id`` names no experiment of ``config``.
    """
    if experiment_id not in config.experiment_ids:
        raise ValueError(f"experiment_id: no such experiment {experiment_id!r}")
    for a in assign(config, unit_id, attributes, on=on):
        if a.experiment_id == experiment_id:
            return a
    return None
