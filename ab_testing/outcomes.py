"""Warehouse-native outcomes: exposures joined to events, reduced to sufficient statistics.

Spark computes only sums here; :mod:`ab_testing.stats` turns them into tests. For every metric,
look day and slice, each exposed unit contributes its numerator ``y``, denominator ``d`` (1 for
binomial and mean metrics) and CUPED covariate ``x`` (0 without one), and the output holds
``n, Σy, Σy², Σd, Σd², Σyd, Σx, Σx², Σyx, Σdx`` per (experiment, variant, metric, slice, look).

Look ``L`` is the state of knowledge at the end of day ``L`` (UTC): units first exposed before its
end, and their events in ``[first_exposure, min(first_exposure + window, end of L))``. Statistics
are cumulative over looks, as the sequential test expects.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Final

from pyspark.sql import Window
from pyspark.sql import functions as F

from ab_testing.metrics_config import EventAggregate, MetricDefinition
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

OVERALL: Final = "all"
LOOK_DATE: Final = "look_date"
_Y: Final = "_y"
_D: Final = "_d"
_X: Final = "_x"
_DAY: Final = "_day"
_GRID: Final = "_grid"
#: Sufficient-statistic columns of ``ab.metric_stats``, in order.
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


def _event_value(agg: EventAggregate) -> Column:
    return F.coalesce(F.col(Col.VALUE), F.lit(0.0)) if agg.agg == "sum" else F.lit(1.0)


def _finish(agg: EventAggregate, total: Column) -> Column:
    return F.when(total > 0, F.lit(1.0)).otherwise(F.lit(0.0)) if agg.agg == "any" else total


def _covariate(exposures: DataFrame, events: DataFrame, agg: EventAggregate | None) -> DataFrame:
    """Per exposed unit: the pre-exposure aggregate (0 when there is no covariate)."""
    keys = [Col.EXPERIMENT_ID, Col.UNIT_ID]
    if agg is None or agg.pre_window_days is None:
        return exposures.select(*keys, F.lit(0.0).alias(_X))
    start = F.col(Col.FIRST_EXPOSURE_TS) - F.make_interval(days=F.lit(agg.pre_window_days))
    pre = (
        exposures.join(events.where(F.col(Col.EVENT_TYPE) == F.lit(agg.event)), Col.UNIT_ID)
        .where(
            (F.col(Col.EVENT_TS) >= start) & (F.col(Col.EVENT_TS) < F.col(Col.FIRST_EXPOSURE_TS))
        )
        .groupBy(*keys)
        .agg(F.sum(_event_value(agg)).alias(_X))
    )
    return (
        exposures.select(*keys)
        .join(pre, keys, "left")
        .select(*keys, _finish(agg, F.coalesce(F.col(_X), F.lit(0.0))).alias(_X))
    )


def unit_values(
    exposures: DataFrame, events: DataFrame, metric: MetricDefinition, looks: Sequence[date]
) -> DataFrame:
    """Per (experiment, variant, unit, look): cumulative ``_y``, ``_d`` and the covariate ``_x``.

    Args:
        exposures: ``ab.exposures`` rows (experiment_id, variant, unit_id, first_exposure_ts).
        events: ``ab.events`` rows (unit_id, event_type, event_ts, value).
        metric: The metric to compute.
        looks: Look dates, strictly increasing.
    """
    if not looks or any(a >= b for a, b in itertools.pairwise(looks)):
        raise ValueError(f"looks: expected strictly increasing dates, got {list(looks)!r}")
    keys = [Col.EXPERIMENT_ID, Col.VARIANT, Col.UNIT_ID]
    exp = exposures.select(*keys, Col.FIRST_EXPOSURE_TS)
    window_end = F.col(Col.FIRST_EXPOSURE_TS) + F.make_interval(days=F.lit(metric.window_days))
    parts = [(metric.numerator, _Y)]
    if metric.denominator is not None:
        parts.append((metric.denominator, _D))
    types = [p.event for p, _ in parts]
    in_window = exp.join(events.where(F.col(Col.EVENT_TYPE).isin(types)), Col.UNIT_ID).where(
        (F.col(Col.EVENT_TS) >= F.col(Col.FIRST_EXPOSURE_TS)) & (F.col(Col.EVENT_TS) < window_end)
    )
    # One row per unit and event day with that day's partial sums; grid rows (one per unit and
    # look, zero sums) are interleaved and a running sum over days gives each look's value.
    daily = (
        in_window.groupBy(*keys, F.to_date(Col.EVENT_TS).alias(_DAY))
        .agg(
            *[
                F.sum(
                    F.when(F.col(Col.EVENT_TYPE) == F.lit(p.event), _event_value(p)).otherwise(
                        F.lit(0.0)
                    )
                ).alias(name)
                for p, name in parts
            ]
        )
        .withColumn(_GRID, F.lit(False))
    )
    look_dates = F.array(*[F.lit(d) for d in looks])
    grid = exp.select(
        *keys,
        F.explode(look_dates).alias(_DAY),
        F.to_date(Col.FIRST_EXPOSURE_TS).alias("_exposed_on"),
    ).where(F.col(_DAY) >= F.col("_exposed_on"))
    grid = grid.select(
        *keys, _DAY, *[F.lit(0.0).alias(name) for _, name in parts], F.lit(True).alias(_GRID)
    )
    running = (
        Window.partitionBy(*keys)
        .orderBy(_DAY, _GRID)
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    stacked = daily.unionByName(grid)
    cumulative = stacked.select(
        *keys, _DAY, _GRID, *[F.sum(name).over(running).alias(name) for _, name in parts]
    ).where(F.col(_GRID))
    values = cumulative.select(
        *keys,
        F.col(_DAY).alias(LOOK_DATE),
        _finish(metric.numerator, F.col(_Y)).alias(_Y),
        (
            _finish(metric.denominator, F.col(_D)) if metric.denominator is not None else F.lit(1.0)
        ).alias(_D),
    )
    return values.join(
        _covariate(exposures, events, metric.covariate), [Col.EXPERIMENT_ID, Col.UNIT_ID]
    )


def sufficient_stats(
    exposures: DataFrame,
    events: DataFrame,
    metrics: Sequence[MetricDefinition],
    looks: Sequence[date],
    unit_slices: DataFrame | None = None,
) -> DataFrame:
    """Sufficient statistics per (experiment, variant, metric, slice, look).

    Args:
        exposures, events, looks: As for :func:`unit_values`.
        metrics: Metrics to compute (all exposures are analysed for each).
        unit_slices: Optional (unit_id, slice) rows; each unit is also counted in slice ``all``.
    """
    y, d, x = F.col(_Y), F.col(_D), F.col(_X)
    sums = [
        F.count(F.lit(1)).alias("n"),
        F.sum(y).alias("sum_y"),
        F.sum(y * y).alias("sum_y_sq"),
        F.sum(d).alias("sum_d"),
        F.sum(d * d).alias("sum_d_sq"),
        F.sum(y * d).alias("sum_yd"),
        F.sum(x).alias("sum_x"),
        F.sum(x * x).alias("sum_x_sq"),
        F.sum(y * x).alias("sum_yx"),
        F.sum(d * x).alias("sum_dx"),
    ]
    out = None
    for metric in metrics:
        values = unit_values(exposures, events, metric, looks)
        sliced = values.withColumn(Col.SLICE, F.lit(OVERALL))
        if unit_slices is not None:
            sliced = sliced.unionByName(values.join(unit_slices, Col.UNIT_ID))
        stats = sliced.groupBy(Col.EXPERIMENT_ID, Col.VARIANT, Col.SLICE, LOOK_DATE).agg(*sums)
        stats = stats.select(
            Col.EXPERIMENT_ID,
            Col.VARIANT,
            F.lit(metric.name).alias(Col.METRIC),
            Col.SLICE,
            LOOK_DATE,
            *STAT_COLUMNS,
            F.lit(metric.covariate is not None).alias(Col.HAS_COVARIATE),
        )
        out = stats if out is None else out.unionByName(stats)
    if out is None:
        raise ValueError("metrics: expected at least one metric, got none")
    return out
