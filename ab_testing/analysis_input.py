"""Rows of ``ab.metric_stats`` -> the stats engine's :class:`ExperimentData` (pure Python).

The Spark side (:mod:`ab_testing.outcomes`) writes cumulative sums per look; this module picks
the sufficient-statistics type each metric needs and lines the looks up for the sequential test.

A metric with covariates (one or several) becomes :class:`RegressionStats` built from the row's
``moments`` (:meth:`RegressionStats.from_sums`: the order-2 and order-4 sums), so the engine runs
Lin's regression adjustment with the exact HC1 SE (``method`` "regression_hc1"), the same
estimator and variance as the analyst CLI on unit-level data. A row without ``moments`` (written
by an older version, or by a path that computes only the CUPED sums) falls back, for a metric with
one covariate, to the leading-order SE from those sums (``method`` "regression_hc1_leading").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from ab_testing.metrics_config import MetricDefinition
from ab_testing.settings import OVERALL_SLICE
from ab_testing.stats import (
    Cell,
    CupedRatioStats,
    CupedStats,
    ExperimentData,
    RatioStats,
    SampleStats,
)
from ab_testing.stats.moments import RegressionStats
from ab_testing.stats.sufficient import AnyStats, cuped_moments

#: A row of ``ab.metric_stats`` as a mapping (e.g. ``Row.asDict()``).
StatsRow = Mapping[str, Any]

#: Sufficient-statistic columns of ``ab.metric_stats``, in order (written by
#: :mod:`ab_testing.outcomes`): ``y`` the outcome or numerator, ``d`` the denominator, ``x`` the
#: first covariate, sums over units of each and of their products.
STAT_COLUMNS: Final[tuple[str, ...]] = (
    "n",
    "sum_y",
    "sum_y_sq",
    "sum_d",
    "sum_d_sq",
    "sum_yd",
    "sum_x",
    "sum_x_sq",
    "sum_yx",
    "sum_dx",
)
_Y: Final = (("sum", "sum_y"), ("sum_sq", "sum_y_sq"))
_RATIO: Final = (
    ("sum_num", "sum_y"),
    ("sum_num_sq", "sum_y_sq"),
    ("sum_den", "sum_d"),
    ("sum_den_sq", "sum_d_sq"),
    ("sum_num_den", "sum_yd"),
)
_X: Final = (("sum_x", "sum_x"), ("sum_x_sq", "sum_x_sq"))
#: Each sums type's fields besides ``n`` and the ``ab.metric_stats`` column each is read from.
_COLUMNS: Final[dict[type[AnyStats], tuple[tuple[str, str], ...]]] = {
    SampleStats: _Y,
    CupedStats: (*_Y, *_X, ("sum_xy", "sum_yx")),
    RatioStats: _RATIO,
    CupedRatioStats: (*_RATIO, *_X, ("sum_num_x", "sum_yx"), ("sum_den_x", "sum_dx")),
}
#: The sums type by (ratio metric, has a covariate).
_KINDS: Final[
    dict[tuple[bool, bool], type[SampleStats | RatioStats | CupedStats | CupedRatioStats]]
] = {
    (False, False): SampleStats,
    (False, True): CupedStats,
    (True, False): RatioStats,
    (True, True): CupedRatioStats,
}


@dataclass(frozen=True, slots=True)
class ArmLooks:
    """Cumulative statistics of one (variant, metric, slice) at each look date."""

    variant: str
    metric: str
    slice: str
    by_look: Mapping[date, StatsRow]


def to_stats(row: StatsRow, metric: MetricDefinition) -> AnyStats:
    """The engine's statistics object for one ``ab.metric_stats`` row: regression moments for a
    metric with covariates (see the module docstring), else the metric kind's sums.

    Raises:
        ValueError: a metric with several covariates whose row has no ``moments``.
    """
    ratio = metric.kind == "ratio"
    if metric.covariates:
        moments = row.get("moments")
        if moments:
            return RegressionStats.from_sums(
                [float(v) for v in moments], metric.covariate_names, ratio=ratio
            )
        if len(metric.covariates) > 1:
            raise ValueError(
                f"moments: metric {metric.name!r} has {len(metric.covariates)} covariates and "
                f"needs the row's moments, got {moments!r}"
            )
        cuped = _cuped(row, metric)
        if not isinstance(cuped, CupedStats | CupedRatioStats):  # pragma: no cover - by _cuped
            raise TypeError(f"expected CUPED sums for {metric.name!r}, got {cuped!r}")
        return cuped_moments(cuped, metric.covariate_names[0])
    return _cuped(row, metric)


def _cuped(row: StatsRow, metric: MetricDefinition) -> AnyStats:
    """The metric kind's sums (with the first covariate's CUPED sums when it has one)."""
    kind = _KINDS[(metric.kind == "ratio", metric.covariate is not None)]
    return kind(n=float(row["n"]), **{field: row[column] for field, column in _COLUMNS[kind]})


def group_looks(rows: Iterable[StatsRow]) -> list[ArmLooks]:
    """Group stats rows by (variant, metric, slice), keyed by look date."""
    grouped: dict[tuple[str, str, str], dict[date, StatsRow]] = defaultdict(dict)
    for row in rows:
        grouped[(row["variant"], row["metric"], row["slice"])][row["look_date"]] = row
    return [ArmLooks(v, m, s, looks) for (v, m, s), looks in sorted(grouped.items())]


def common_looks(arms: Sequence[ArmLooks]) -> list[date]:
    """Look dates at which every overall-slice arm has at least 2 units (testable looks)."""
    overall = [a for a in arms if a.slice == OVERALL_SLICE]
    if not overall:
        return []
    dates = set.intersection(*(set(a.by_look) for a in overall))
    return sorted(d for d in dates if all(a.by_look[d]["n"] >= 2 for a in overall))


def experiment_data(
    experiment_id: str,
    control: str,
    weights: Mapping[str, float],
    metrics: Sequence[MetricDefinition],
    rows: Iterable[StatsRow],
) -> tuple[ExperimentData, list[date]]:
    """Build the engine input for one experiment from its ``ab.metric_stats`` rows.

    Each cell's ``stats`` are those of its last look; overall-slice cells also carry ``daily``
    statistics at every common look (see :func:`common_looks`) for the sequential p-value.

    Returns:
        The experiment data and the look dates of the daily series.
    """
    by_name = {m.name: m for m in metrics}
    arms = [a for a in group_looks(rows) if a.metric in by_name]
    looks = common_looks(arms)
    cells = []
    for arm in arms:
        metric = by_name[arm.metric]
        last = arm.by_look[max(arm.by_look)]
        daily: tuple[AnyStats, ...] = ()
        if arm.slice == OVERALL_SLICE and len(looks) >= 2:
            daily = tuple(to_stats(arm.by_look[d], metric) for d in looks)
        cells.append(
            Cell(
                variant=arm.variant,
                metric=arm.metric,
                stats=to_stats(last, metric),
                slice=arm.slice,
                daily=daily,
            )
        )
    data = ExperimentData(
        experiment_id=experiment_id,
        control=control,
        expected_weights=dict(weights),
        metrics=[m.spec for m in metrics],
        cells=cells,
    )
    return data, looks if len(looks) >= 2 else []
