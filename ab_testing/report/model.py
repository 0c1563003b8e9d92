"""Inputs of the experiment reports: result rows, optional daily series, and context."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from ab_testing.settings import OVERALL_SLICE, AnalysisConfig
from ab_testing.stats.experiment import MetricSpec, ResultRow


def _check_name(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty str, got {value!r}")


def _check_float(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float (NaN allowed), got {value!r}")


@dataclass(frozen=True, slots=True)
class DailyPoint:
    """Cumulative result of one metric x variant at the end of one day.

    Attributes:
        day: calendar day of the look (data up to and including that day).
        metric: metric name (as in the result rows).
        variant: treatment variant name (compared with the experiment's control).
        lift: cumulative relative lift ``treatment / control - 1`` as a fraction.
        ci_low, ci_high: bounds of the relative-lift CI at that day (fractions).
        p_sequential: always-valid (mSPRT) p-value at that look; NaN when unknown.

    Numbers may be NaN for days that were not analysable.
    """

    day: date
    metric: str
    variant: str
    lift: float
    ci_low: float
    ci_high: float
    p_sequential: float = math.nan

    def __post_init__(self) -> None:
        if not isinstance(self.day, date):
            raise TypeError(f"day must be a datetime.date, got {self.day!r}")
        _check_name("metric", self.metric)
        _check_name("variant", self.variant)
        for name in ("lift", "ci_low", "ci_high", "p_sequential"):
            _check_float(name, getattr(self, name))
        if self.ci_low > self.ci_high:
            raise ValueError(
                f"ci_low must be <= ci_high, got ci_low={self.ci_low!r}, ci_high={self.ci_high!r}"
            )


@dataclass(frozen=True, slots=True)
class ArmModelVersion:
    """One model version served to one arm over the analysis window, and its offline evaluation.

    Attributes:
        variant: the arm (variant id) the units were analysed in.
        model_version: the version served (a bundle id, or a baseline fit id); None for
            fallback lists, which carry no version.
        rec_set: the recommendation set served (e.g. ``model``, ``popularity``).
        exposures: servings of this version and set to the arm's exposed units (>= 1).
        share: ``exposures`` / all servings to the arm, a fraction in (0, 1].
        offline: the latest offline evaluation's metrics on the overall slice, keyed
            ``"<metric>@<k>"`` (e.g. ``"ndcg@10"``), values in [0, 1] (novelty in bits);
            empty when the version was never evaluated offline.
        offline_ds: the evaluation ds of those metrics; None when not evaluated.
        offline_model: the evaluated model's name (e.g. ``two_tower+ranker``); None when
            not evaluated.
    """

    variant: str
    model_version: str | None
    rec_set: str
    exposures: int
    share: float
    offline: Mapping[str, float] = field(default_factory=dict)
    offline_ds: date | None = None
    offline_model: str | None = None

    def __post_init__(self) -> None:
        _check_name("variant", self.variant)
        _check_name("rec_set", self.rec_set)
        if self.model_version is not None:
            _check_name("model_version", self.model_version)
        if isinstance(self.exposures, bool) or not isinstance(self.exposures, int):
            raise TypeError(f"exposures must be an int, got {self.exposures!r}")
        if self.exposures < 1:
            raise ValueError(f"exposures must be >= 1, got {self.exposures!r}")
        _check_float("share", self.share)
        if not 0 < self.share <= 1:
            raise ValueError(f"share must be in (0, 1], got {self.share!r}")
        object.__setattr__(self, "offline", dict(self.offline))
        for key, value in self.offline.items():
            _check_name("offline key", key)
            _check_float(f"offline[{key!r}]", value)
        if self.offline_ds is not None and not isinstance(self.offline_ds, date):
            raise TypeError(f"offline_ds must be a datetime.date or None, got {self.offline_ds!r}")
        if self.offline_model is not None:
            _check_name("offline_model", self.offline_model)

    @property
    def evaluated(self) -> bool:
        """True when the version has an offline evaluation."""
        return bool(self.offline)


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything one experiment's report shows; aggregates only, never unit-level data.

    Attributes:
        rows: result rows of exactly one experiment (from ``analyze_experiment``).
        daily: optional cumulative daily series, one point per (metric, variant, day).
        metrics: optional metric definitions; their guardrail margins are drawn on the
            forest plot and their roles listed in the methods section.
        config: the configuration the rows were produced with (alpha, correction,
            SRM threshold, minimum units per slice, power target).
        start_date, end_date: optional analysis window shown in the header.
        covariates: covariate column(s) per metric name, for the methods section (a
            string or a sequence of column names).
        source: optional description of the input (e.g. a file name) for the header.
        notes: extra methods notes from the caller (e.g. input checks that were not run,
            the SRM counts), shown after the standard ones.
        expected_weights: the design's split per variant (any positive scale); when given,
            the SRM banner shows observed against expected units per variant.
        arm_versions: the model versions served to each arm with their offline metrics
            (``ab.offline_vs_online``), for the "Offline vs online" section; None (the
            default) omits the section, an empty sequence says no served row named a version.
    """

    rows: Sequence[ResultRow]
    daily: Sequence[DailyPoint] = ()
    metrics: Sequence[MetricSpec] = ()
    config: AnalysisConfig = field(default_factory=AnalysisConfig)
    start_date: date | None = None
    end_date: date | None = None
    covariates: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    source: str | None = None
    notes: Sequence[str] = ()
    expected_weights: Mapping[str, float] = field(default_factory=dict)
    arm_versions: Sequence[ArmModelVersion] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(self.rows))
        object.__setattr__(self, "daily", tuple(self.daily))
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "covariates", dict(self.covariates))
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "expected_weights", dict(self.expected_weights))
        for variant, weight in self.expected_weights.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
                raise ValueError(f"expected_weights[{variant!r}] must be > 0, got {weight!r}")
        if not self.rows:
            raise ValueError("rows must be non-empty, got []")
        for row in self.rows:
            if not isinstance(row, ResultRow):
                raise TypeError(f"rows must hold ResultRow, got {row!r}")
        ids = sorted({r.experiment_id for r in self.rows})
        if len(ids) != 1:
            raise ValueError(f"rows must belong to one experiment, got experiment ids {ids!r}")
        seen: set[tuple[str, str, date]] = set()
        for point in self.daily:
            if not isinstance(point, DailyPoint):
                raise TypeError(f"daily must hold DailyPoint, got {point!r}")
            key = (point.metric, point.variant, point.day)
            if key in seen:
                raise ValueError(f"daily has a duplicate (metric, variant, day): {key!r}")
            seen.add(key)
        for spec in self.metrics:
            if not isinstance(spec, MetricSpec):
                raise TypeError(f"metrics must hold MetricSpec, got {spec!r}")
        if self.arm_versions is not None:
            object.__setattr__(self, "arm_versions", tuple(self.arm_versions))
            for arm in self.arm_versions:
                if not isinstance(arm, ArmModelVersion):
                    raise TypeError(f"arm_versions must hold ArmModelVersion, got {arm!r}")
        if not isinstance(self.config, AnalysisConfig):
            raise TypeError(f"config must be an AnalysisConfig, got {self.config!r}")
        for name in ("start_date", "end_date"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, date):
                raise TypeError(f"{name} must be a datetime.date or None, got {value!r}")
        if (
            self.start_date is not None
            and self.end_date is not None
            and self.start_date > self.end_date
        ):
            raise ValueError(
                f"start_date must be <= end_date, got {self.start_date} > {self.end_date}"
            )

    @property
    def experiment_id(self) -> str:
        """The experiment all rows belong to."""
        return self.rows[0].experiment_id

    @property
    def control(self) -> str:
        """The control variant."""
        return self.rows[0].control

    @property
    def overall_rows(self) -> tuple[ResultRow, ...]:
        """Rows of the whole population (the overall slice)."""
        return tuple(r for r in self.rows if r.slice == OVERALL_SLICE)

    @property
    def srm_p_value(self) -> float:
        """The experiment's SRM p-value (NaN when no row carries one)."""
        finite = [r.srm_p_value for r in self.rows if math.isfinite(r.srm_p_value)]
        return finite[0] if finite else math.nan

    @property
    def srm_failed(self) -> bool:
        """True when the sample-ratio-mismatch check failed for this experiment."""
        if any(r.decision == "srm_fail" for r in self.rows):
            return True
        return self.srm_p_value < self.config.srm_threshold

    def spec(self, metric: str) -> MetricSpec | None:
        """The definition of ``metric`` if it was supplied."""
        return next((s for s in self.metrics if s.name == metric), None)

    def daily_metrics(self) -> list[str]:
        """Metrics with a daily series, in first-seen order."""
        return list(dict.fromkeys(p.metric for p in self.daily))
