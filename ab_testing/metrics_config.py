"""How outcome events become per-unit metrics: the metric definitions of experiments (stdlib only).

A metrics file (YAML, see ``ab_testing/metrics.example.yaml``) lists metrics once and says which
experiments analyse them::

    version: 1
    metrics:
      - name: clicks_per_user          # [a-z][a-z0-9_]{0,62}
        kind: mean                     # binomial | mean | ratio
        numerator: {event: click, agg: count}
        window_days: 7                 # events in [first exposure, + window) count
        covariate: {event: click, agg: count, pre_window_days: 14}   # CUPED, optional
        # or several (regression adjustment with K covariates):
        # covariates: [{event: click, agg: count, pre_window_days: 14},
        #              {event: impression, agg: count, pre_window_days: 14}]
      - name: ctr
        kind: ratio
        numerator: {event: click, agg: count}
        denominator: {event: impression, agg: count}
        window_days: 7
    experiments:
      two_tower_v2: [clicks_per_user, ctr]
      default: [clicks_per_user]       # for experiments not listed

Aggregations of a unit's events in a window: ``count`` (number of events), ``sum`` (sum of their
``value``) and ``any`` (1 when there is at least one, else 0; the metric of a ``binomial``).

Covariates: ``covariate:`` (one mapping) and ``covariates:`` (a non-empty list of mappings) say
the same thing; give one or the other, not both. Each needs ``pre_window_days``; two covariates
of one metric may not be the same (event, agg, pre_window_days). A metric with covariates is
analysed by Lin's regression adjustment (:mod:`ab_testing.stats.regression`); each covariate is
named :attr:`EventAggregate.covariate_name` in the results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ab_testing.config_model import check_id
from ab_testing.settings import (
    EVENT_AGGS,
    MARGIN_TYPES,
    METRIC_KINDS,
    EventAgg,
    MarginType,
    MetricKind,
    check_choice,
    check_int_in,
)
from ab_testing.stats import MetricSpec

DEFAULT_EXPERIMENT_KEY: Final = "default"


@dataclass(frozen=True, slots=True)
class EventAggregate:
    """One aggregate of a unit's events of one type.

    Attributes:
        event: ``event_type`` in ``ab.events`` to aggregate.
        agg: ``count``, ``sum`` (of ``value``) or ``any`` (0/1).
        pre_window_days: For covariates only: days before first exposure that count, 1-365.
    """

    event: str
    agg: EventAgg = "count"
    pre_window_days: int | None = None

    def __post_init__(self) -> None:
        check_id("event", self.event)
        check_choice("agg", self.agg, EVENT_AGGS)
        if self.pre_window_days is not None:
            check_int_in("pre_window_days", self.pre_window_days, 1, 365)

    @property
    def covariate_name(self) -> str:
        """Name of this aggregate as a covariate, e.g. ``pre_click_count_14d``.

        Raises:
            ValueError: it has no ``pre_window_days`` (it is not a covariate).
        """
        if self.pre_window_days is None:
            raise ValueError(f"pre_window_days: a covariate needs one, got {self!r}")
        return f"pre_{self.event}_{self.agg}_{self.pre_window_days}d"


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    """A metric: which events, aggregated how, over which window after first exposure.

    Attributes:
        name: Metric id.
        kind: ``binomial`` (numerator must use ``any``), ``mean`` or ``ratio``.
        numerator: Events counted for the unit (the metric itself for binomial/mean).
        denominator: Ratio metrics only: the denominator events (e.g. impressions).
        window_days: Events in ``[first_exposure, first_exposure + window_days)`` count, 1-365.
        covariate: One pre-exposure aggregate (with ``pre_window_days``): the same as
            ``covariates=(covariate,)``; after construction it is ``covariates[0]`` or None.
        guardrail: Test as non-inferiority with ``margin`` instead of superiority.
        margin: Guardrail margin (> 0) in ``margin_type`` units.
        margin_type: ``relative`` or ``absolute``.
        higher_is_better: Direction in which the metric is good.
        covariates: Pre-exposure aggregates for regression adjustment, each with
            ``pre_window_days`` and distinct; empty without adjustment.
    """

    name: str
    kind: MetricKind
    numerator: EventAggregate
    window_days: int = 7
    denominator: EventAggregate | None = None
    covariate: EventAggregate | None = None
    guardrail: bool = False
    margin: float | None = None
    margin_type: MarginType = "relative"
    higher_is_better: bool = True
    covariates: tuple[EventAggregate, ...] = ()
    spec: MetricSpec = field(init=False)

    def __post_init__(self) -> None:
        check_id("name", self.name)
        check_choice("kind", self.kind, METRIC_KINDS)
        check_choice("margin_type", self.margin_type, MARGIN_TYPES)
        check_int_in("window_days", self.window_days, 1, 365)
        if self.kind == "binomial" and self.numerator.agg != "any":
            raise ValueError(
                f"numerator.agg: a binomial metric needs 'any', got {self.numerator.agg!r}"
            )
        if (self.kind == "ratio") != (self.denominator is not None):
            raise ValueError(
                f"denominator: required for ratio metrics and only for them "
                f"(kind {self.kind!r}), got {self.denominator!r}"
            )
        self._normalise_covariates()
        # MetricSpec validates guardrail/margin consistency and carries them to the engine.
        object.__setattr__(
            self,
            "spec",
            MetricSpec(
                name=self.name,
                kind=self.kind,
                guardrail=self.guardrail,
                margin=self.margin,
                margin_type=self.margin_type,
                higher_is_better=self.higher_is_better,
            ),
        )

    def _normalise_covariates(self) -> None:
        """``covariate``/``covariates`` -> one validated tuple (``covariate`` = its first)."""
        covariates = self.covariates
        if isinstance(covariates, list):
            covariates = tuple(covariates)
        if not isinstance(covariates, tuple):
            raise TypeError(f"covariates: expected a tuple of EventAggregate, got {covariates!r}")
        if self.covariate is not None:
            if covariates and covariates != (self.covariate,):
                raise ValueError(
                    "covariate, covariates: give one or the other, got "
                    f"{self.covariate!r} and {covariates!r}"
                )
            covariates = (self.covariate,)
        names: list[str] = []
        for i, c in enumerate(covariates):
            if not isinstance(c, EventAggregate):
                raise TypeError(f"covariates[{i}]: expected an EventAggregate, got {c!r}")
            if c.pre_window_days is None:
                raise ValueError(f"covariates[{i}].pre_window_days: required, got {c!r}")
            if c.covariate_name in names:
                raise ValueError(f"covariates[{i}]: repeats {c.covariate_name!r}, got {c!r}")
            names.append(c.covariate_name)
        object.__setattr__(self, "covariates", covariates)
        object.__setattr__(self, "covariate", covariates[0] if covariates else None)

    @property
    def covariate_names(self) -> tuple[str, ...]:
        """Names of the covariates, in order (see :attr:`EventAggregate.covariate_name`)."""
        return tuple(c.covariate_name for c in self.covariates)

    @property
    def event_types(self) -> tuple[str, ...]:
        """Every event type this metric reads."""
        parts = (self.numerator, self.denominator, *self.covariates)
        return tuple(dict.fromkeys(p.event for p in parts if p is not None))


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Metric definitions and which experiments analyse which metrics."""

    version: int
    metrics: tuple[MetricDefinition, ...]
    by_experiment: Mapping[str, tuple[str, ...]]

    def __post_init__(self) -> None:
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"version: expected a positive integer, got {self.version!r}")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"metrics: names must be distinct and non-empty, got {names!r}")
        for key, listed in self.by_experiment.items():
            if key != DEFAULT_EXPERIMENT_KEY:
                check_id("experiments", key)
            unknown = [m for m in listed if m not in names]
            if unknown or not listed:
                raise ValueError(f"experiments.{key}: unknown or empty metrics {list(listed)!r}")

    def for_experiment(self, experiment_id: str) -> tuple[MetricDefinition, ...]:
        """The metrics analysed for ``experiment_id`` (its own list, else ``default``)."""
        listed = self.by_experiment.get(
            experiment_id, self.by_experiment.get(DEFAULT_EXPERIMENT_KEY, ())
        )
        return tuple(m for m in self.metrics if m.name in listed)


def _aggregate(name: str, raw: object) -> EventAggregate:
    if not isinstance(raw, Mapping):
        raise TypeError(
            f"{name}: expected a mapping like {{event: click, agg: count}}, got {raw!r}"
        )
    unknown = set(raw) - {"event", "agg", "pre_window_days"}
    if unknown:
        raise ValueError(f"{name}: unknown keys {sorted(unknown)}")
    return EventAggregate(**dict(raw))


def parse_metrics(raw: object) -> MetricsConfig:
    """Validated :class:`MetricsConfig` from parsed YAML.

    Raises:
        ValueError/TypeError: a field is missing or malformed, naming it and the value.
    """
    if not isinstance(raw, Mapping):
        raise TypeError(f"metrics file: expected a mapping at the top, got {type(raw).__name__}")
    unknown = set(raw) - {"version", "metrics", "experiments"}
    if unknown:
        raise ValueError(f"metrics file: unknown keys {sorted(unknown)}")
    definitions: list[MetricDefinition] = []
    for i, item in enumerate(raw.get("metrics") or []):
        if not isinstance(item, Mapping):
            raise TypeError(f"metrics[{i}]: expected a mapping, got {item!r}")
        fields: dict[str, Any] = dict(item)
        for part in ("numerator", "denominator", "covariate"):
            if fields.get(part) is not None:
                fields[part] = _aggregate(f"metrics[{i}].{part}", fields[part])
        if "covariates" in fields:
            fields["covariates"] = _covariates(f"metrics[{i}]", fields)
        try:
            definitions.append(MetricDefinition(**fields))
        except TypeError as err:
            raise TypeError(f"metrics[{i}]: {err}") from None
    experiments = raw.get("experiments") or {DEFAULT_EXPERIMENT_KEY: [d.name for d in definitions]}
    if not isinstance(experiments, Mapping):
        raise TypeError(
            f"experiments: expected a mapping of id -> [metric, ...], got {experiments!r}"
        )
    by_experiment = {str(k): tuple(_as_names(str(k), v)) for k, v in experiments.items()}
    return MetricsConfig(
        version=raw.get("version", 0), metrics=tuple(definitions), by_experiment=by_experiment
    )


def _covariates(name: str, fields: Mapping[str, Any]) -> tuple[EventAggregate, ...]:
    """The parsed ``covariates:`` list of one metric (``covariate:`` is the one-item form)."""
    raw = fields["covariates"]
    if fields.get("covariate") is not None:
        raise ValueError(
            f"{name}: give covariate or covariates, not both, got {fields['covariate']!r} "
            f"and {raw!r}"
        )
    if not isinstance(raw, list) or not raw:
        raise TypeError(
            f"{name}.covariates: expected a non-empty list of mappings like "
            f"{{event: click, agg: count, pre_window_days: 14}}, got {raw!r}"
        )
    return tuple(_aggregate(f"{name}.covariates[{j}]", c) for j, c in enumerate(raw))


def _as_names(key: str, value: object) -> Sequence[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"experiments.{key}: expected a list of metric names, got {value!r}")
    return value


def load_metrics(path: str | Path) -> MetricsConfig:
    """Read and validate a metrics YAML file.

    Raises:
        ValueError: the file is missing, is not UTF-8 text or valid YAML, repeats a key, or
            fails validation, naming the file or the field.
        TypeError: a value has the wrong type, naming the field.
    """
    from ab_testing.yaml_files import read_yaml

    return parse_metrics(read_yaml(path))
