"""The validated experiment configuration as frozen dataclasses (stdlib only).

Built from YAML by :func:`ab_testing.config.load_config` (the file format is described there) or
directly; every class validates itself on construction and raises ``ValueError``/``TypeError``
naming the field and the value. Ids match ``[a-z][a-z0-9_]{0,62}`` and salts
``[a-z0-9][a-z0-9_.-]{0,62}``: no ``":"``, which separates salt and unit id in the hashed message.
Every salt is distinct, since two objects sharing a salt would bucket every unit identically.
Experiments of one layer whose dates overlap must reserve disjoint bucket ranges. Weights are
quantised once, to whole buckets out of 10,000, by largest remainder. Nothing here reaches SQL
text: names become literals or validated column references.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction
from typing import Final

from ab_testing.bucketing import N_BUCKETS, SEPARATOR
from ab_testing.settings import FILTER_OPS, FilterOp, ValueKind, check_choice

#: Ids of experiments, layers, variants and targeted attributes (always ``fullmatch``: ``match``
#: with a ``$`` anchor would let a trailing newline through).
ID_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,62}")
#: Salts; no ":" (the separator) and no upper case, so a salt is one unambiguous string.
SALT_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
WEIGHT_SUM_TOLERANCE: Final = 1e-9
_MAX_IN_VALUES: Final = 1000
_INT64: Final = 2**63

Scalar = str | int | float | bool


def check_id(name: str, value: object) -> str:
    """Return ``value`` if it is a safe id (``[a-z][a-z0-9_]{0,62}``); raise naming ``name``."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise ValueError(f"{name}: expected an id matching {ID_PATTERN.pattern}, got {value!r}")
    return value


def check_salt(name: str, value: object) -> str:
    """Return ``value`` if it is a valid salt (``[a-z0-9][a-z0-9_.-]{0,62}``), else raise."""
    if not isinstance(value, str) or not SALT_PATTERN.fullmatch(value) or SEPARATOR in value:
        raise ValueError(f"{name}: expected a salt matching {SALT_PATTERN.pattern}, got {value!r}")
    return value


def _check_date(name: str, value: object) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{name}: expected a date (YYYY-MM-DD), got {value!r}")
    return value


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name}: must be in [{lo}, {hi}], got {value!r}")
    return value


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    if not math.isfinite(value) or (isinstance(value, int) and not -_INT64 <= value < _INT64):
        raise ValueError(f"{name}: expected a finite number within 64 bits, got {value!r}")
    return float(value)


def value_kind(value: Scalar) -> ValueKind:
    """Kind of a targeting value: ``bool``, ``string`` or ``number``."""
    if isinstance(value, bool):
        return "bool"
    return "string" if isinstance(value, str) else "number"


def _exact(weight: int | float) -> Fraction:
    # str() of a float is its shortest round-trip decimal: 0.1 -> 1/10, not the binary value.
    return Fraction(str(weight)) if isinstance(weight, float) else Fraction(weight)


def quantise_weights(weights: Sequence[int | float]) -> tuple[int, ...]:
    """Whole buckets (out of 10,000) per weight, by largest remainder; ties go to the first.

    Integer weights are shares (``[1, 1]`` is 50/50); any float makes them fractions that must
    sum to 1 within 1e-9. Every weight must get at least one bucket.
    """
    for i, w in enumerate(weights):
        if _check_number(f"variants[{i}].weight", w) <= 0:
            raise ValueError(f"variants[{i}].weight: must be > 0, got {w!r}")
    if any(isinstance(w, float) for w in weights):
        total_f = math.fsum(weights)
        if abs(total_f - 1.0) > WEIGHT_SUM_TOLERANCE:
            raise ValueError(
                f"variants.weight: fractional weights must sum to 1, got {total_f!r} "
                f"from {list(weights)!r} (or give integer shares)"
            )
    exact = [_exact(w) for w in weights]
    total = sum(exact, Fraction(0))
    shares = [w * N_BUCKETS / total for w in exact]
    counts = [math.floor(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (counts[i] - shares[i], i))
    for i in by_remainder[: N_BUCKETS - sum(counts)]:
        counts[i] += 1
    for i, c in enumerate(counts):
        if c < 1:
            raise ValueError(f"variants[{i}].weight: {weights[i]!r} rounds to 0 of 10000 buckets")
    return tuple(counts)


@dataclass(frozen=True, slots=True)
class TargetingFilter:
    """``attribute <op> value`` on one unit attribute; ``value`` is a tuple for ``in``.

    ``kind`` (derived) is the value's kind, which the attribute must share; ``values``
    (derived) is ``value`` as a tuple (one element unless ``op`` is ``in``).
    """

    attribute: str
    op: FilterOp
    value: Scalar | tuple[Scalar, ...]
    kind: ValueKind = field(init=False)
    values: tuple[Scalar, ...] = field(init=False)

    def __post_init__(self) -> None:
        check_id("attribute", self.attribute)
        check_choice("op", self.op, FILTER_OPS)
        values: tuple[Scalar, ...]
        if self.op == "in":
            if not isinstance(self.value, (tuple, list)) or not self.value:
                raise ValueError(f"value: 'in' needs a non-empty list, got {self.value!r}")
            if len(self.value) > _MAX_IN_VALUES:
                raise ValueError(f"value: at most {_MAX_IN_VALUES} values, got {len(self.value)}")
            values = tuple(self.value)
            object.__setattr__(self, "value", values)
        elif isinstance(self.value, (tuple, list)):
            raise TypeError(f"value: {self.op!r} takes one value, got {self.value!r}")
        else:
            values = (self.value,)
        for v in values:
            if not isinstance(v, (str, int, float)):
                raise TypeError(f"value: expected a string, number or bool, got {v!r}")
            if value_kind(v) == "number":
                _check_number("value", v)
        kinds = {value_kind(v) for v in values}
        if len(kinds) != 1:
            raise TypeError(f"value: mixes kinds {sorted(kinds)}: {self.value!r}")
        kind = kinds.pop()
        if self.op in ("lt", "le", "gt", "ge") and kind != "number":
            raise TypeError(f"value: {self.op!r} compares numbers, got {self.value!r}")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "values", values)


@dataclass(frozen=True, slots=True)
class Variant:
    """An arm: ``weight`` > 0 (share or fraction), ``control`` marks the one control arm."""

    id: str
    weight: int | float
    control: bool = False

    def __post_init__(self) -> None:
        check_id("id", self.id)
        if _check_number("weight", self.weight) <= 0:
            raise ValueError(f"weight: must be > 0, got {self.weight!r}")
        if not isinstance(self.control, bool):
            raise TypeError(f"control: expected true or false, got {self.control!r}")


@dataclass(frozen=True, slots=True)
class RampStep:
    """From ``date`` on, ``percent`` (0, 100] of the reserved range is live."""

    date: date
    percent: int | float

    def __post_init__(self) -> None:
        _check_date("date", self.date)
        if not 0 < _check_number("percent", self.percent) <= 100:
            raise ValueError(f"percent: must be in (0, 100], got {self.percent!r}")


def _tuple(name: str, value: object) -> tuple[object, ...]:
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{name}: expected a list, got {value!r}")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class Experiment:
    """One experiment of a layer.

    Attributes:
        id: Experiment id, unique in the config.
        salt: Salt of the variant hash.
        start: First day it runs (UTC).
        end: First day it no longer runs; ``start < end``.
        buckets: Reserved layer buckets ``(lo, hi)``, half-open, ``0 <= lo < hi <= 10000``.
        variants: The arms, >= 2, exactly one control.
        ramp: Steps of the live share, dates strictly increasing in ``[start, end)``, percents
            never decreasing (units are only ever added). Empty: 100% from ``start``.
        targeting: Filters a unit must all pass.
        description: Free text for people.
        variant_bounds: (derived) cumulative whole-bucket upper bounds of the variants; a unit
            whose experiment-salt bucket is ``b`` gets the first variant with ``b < bound``.
    """

    id: str
    salt: str
    start: date
    end: date
    buckets: tuple[int, int]
    variants: tuple[Variant, ...]
    ramp: tuple[RampStep, ...] = ()
    targeting: tuple[TargetingFilter, ...] = ()
    description: str = ""
    variant_bounds: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        check_id("id", self.id)
        check_salt("salt", self.salt)
        if _check_date("start", self.start) >= _check_date("end", self.end):
            raise ValueError(f"end: must be after start {self.start}, got {self.end}")
        bounds = _tuple("buckets", self.buckets)
        if len(bounds) != 2:
            raise ValueError(f"buckets: expected [lo, hi], got {self.buckets!r}")
        lo = _check_int("buckets", bounds[0], 0, N_BUCKETS - 1)
        hi = _check_int("buckets", bounds[1], 1, N_BUCKETS)
        if lo >= hi:
            raise ValueError(f"buckets: expected lo < hi, got {self.buckets!r}")
        object.__setattr__(self, "buckets", (lo, hi))
        for name in ("variants", "ramp", "targeting"):
            object.__setattr__(self, name, _tuple(name, getattr(self, name)))
        if len(self.variants) < 2:
            raise ValueError(f"variants: need at least 2, got {len(self.variants)}")
        ids = [v.id for v in self.variants]
        if len(set(ids)) != len(ids):
            raise ValueError(f"variants: ids must be distinct, got {ids!r}")
        controls = [v.id for v in self.variants if v.control]
        if len(controls) != 1:
            raise ValueError(f"variants: need exactly one control, got {controls!r}")
        counts = quantise_weights([v.weight for v in self.variants])
        object.__setattr__(
            self, "variant_bounds", tuple(sum(counts[: i + 1]) for i in range(len(counts)))
        )
        for prev, step in zip(self.ramp, self.ramp[1:], strict=False):
            if step.date <= prev.date or step.percent < prev.percent:
                raise ValueError(
                    f"ramp: dates must increase and percents never decrease, got {step!r} "
                    f"after {prev!r}"
                )
        for step in self.ramp:
            if not self.start <= step.date < self.end:
                raise ValueError(f"ramp: date {step.date} outside [{self.start}, {self.end})")
        if not isinstance(self.description, str):
            raise TypeError(f"description: expected a string, got {self.description!r}")

    @property
    def control(self) -> Variant:
        """The control variant."""
        return next(v for v in self.variants if v.control)

    def runs_on(self, on: date) -> bool:
        """True when ``start <= on < end``."""
        return self.start <= on < self.end

    def live_range(self, on: date) -> tuple[int, int]:
        """Live layer buckets ``[lo, hi)`` on day ``on``; empty (``lo == hi``) when not running.

        The live range is the first ``floor(percent% x reserved)`` buckets of the reserved range,
        so a growing percent only appends buckets.
        """
        lo, hi = self.buckets
        if not self.runs_on(_check_date("on", on)):
            return lo, lo
        percent: int | float = 100 if not self.ramp else 0
        for step in self.ramp:
            if step.date <= on:
                percent = step.percent
        return lo, lo + math.floor((hi - lo) * _exact(percent) / 100)


def _overlap(a: Experiment, b: Experiment) -> bool:
    dates = a.start < b.end and b.start < a.end
    return dates and a.buckets[0] < b.buckets[1] and b.buckets[0] < a.buckets[1]


@dataclass(frozen=True, slots=True)
class Layer:
    """Experiments that never share a unit; ``salt`` hashes units into the layer's buckets."""

    id: str
    salt: str
    experiments: tuple[Experiment, ...]

    def __post_init__(self) -> None:
        check_id("id", self.id)
        check_salt("salt", self.salt)
        object.__setattr__(self, "experiments", _tuple("experiments", self.experiments))
        for i, a in enumerate(self.experiments):
            for b in self.experiments[i + 1 :]:
                if _overlap(a, b):
                    raise ValueError(
                        f"experiments: {a.id!r} {list(a.buckets)} and {b.id!r} "
                        f"{list(b.buckets)} overlap in buckets while both run"
                    )


@dataclass(frozen=True, slots=True)
class Holdout:
    """Units whose bucket under ``salt`` is below ``buckets`` (0-9999) join no experiment."""

    salt: str = "holdout"
    buckets: int = 0

    def __post_init__(self) -> None:
        check_salt("salt", self.salt)
        _check_int("buckets", self.buckets, 0, N_BUCKETS - 1)


@dataclass(frozen=True, slots=True)
class LiveExperiment:
    """An experiment running on a given day with its live layer buckets ``[lo, hi)``, non-empty."""

    experiment: Experiment
    lo: int
    hi: int


@dataclass(frozen=True, slots=True)
class ActiveLayer:
    """A layer with the experiments live on a given day (disjoint ranges)."""

    layer: Layer
    experiments: tuple[LiveExperiment, ...]


@dataclass(frozen=True, slots=True)
class ExperimentsConfig:
    """The whole, validated configuration; ``version`` >= 1 is recorded with every assignment."""

    version: int
    layers: tuple[Layer, ...]
    holdout: Holdout = field(default_factory=Holdout)

    def __post_init__(self) -> None:
        _check_int("version", self.version, 1, 2**31 - 1)
        object.__setattr__(self, "layers", _tuple("layers", self.layers))
        seen: dict[tuple[str, str], str] = {}
        for name, key in self._names():
            if key in seen:
                raise ValueError(f"{name}: {key[1]!r} is already used by {seen[key]}")
            seen[key] = name

    def _names(self) -> list[tuple[str, tuple[str, str]]]:
        # Ids are unique per kind; salts are unique across all kinds.
        out = [("holdout.salt", ("salt", self.holdout.salt))]
        for i, layer in enumerate(self.layers):
            out.append((f"layers[{i}].id", ("layer", layer.id)))
            out.append((f"layers[{i}].salt", ("salt", layer.salt)))
            for j, e in enumerate(layer.experiments):
                out.append((f"layers[{i}].experiments[{j}].id", ("experiment", e.id)))
                out.append((f"layers[{i}].experiments[{j}].salt", ("salt", e.salt)))
        return out

    @property
    def experiments(self) -> tuple[Experiment, ...]:
        """Every experiment, in layer order."""
        return tuple(e for layer in self.layers for e in layer.experiments)

    @property
    def experiment_ids(self) -> frozenset[str]:
        return frozenset(e.id for e in self.experiments)

    def active(self, on: date) -> tuple[ActiveLayer, ...]:
        """Layers with at least one experiment live on ``on``: the plan both implementations run."""
        out = []
        for layer in self.layers:
            live = []
            for e in layer.experiments:
                lo, hi = e.live_range(on)
                if hi > lo:
                    live.append(LiveExperiment(e, lo, hi))
            if live:
                out.append(ActiveLayer(layer, tuple(live)))
        return tuple(out)
