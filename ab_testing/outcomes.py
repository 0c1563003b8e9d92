"""Warehouse-native outcomes: exposures joined to events, reduced to sufficient statistics.

Spark computes only sums here; :mod:`ab_testing.stats` turns them into tests. For every metric,
look day and slice, each exposed unit contributes its numerator ``y``, denominator ``d`` (1 for
binomial and mean metrics) and CUPED covariate ``x`` (its first covariate; 0 without one), and the
output holds ``n, Σy, Σy², Σd, Σd², Σyd, Σx, Σx², Σyx, Σdx`` per (experiment, variant, metric,
slice, look).

For regression adjustment (metrics with one or more covariates ``x_1..x_K``) it also holds
``moments``: per unit the vector ``v = (1, x_1, ..., x_K, y)`` (``(1, x_1, ..., x_K, y, d)`` for
ratio metrics), and for every key of :func:`ab_testing.stats.sandwich_keys` the sum over units of
``Π v[key]`` -- every order-2 sum (Σx_j, Σy, Σy², Σx_j x_k, Σx_j y, ...) and the order-4 sums the
exact HC1 sandwich reads (at most two outcome factors: Σx_j x_k x_l x_m, Σy x_j x_k x_l,
Σy² x_j x_k, ...); see :mod:`ab_testing.stats.moments` for why exactly those. They are ordinary
aggregates of the same pass; nothing per unit leaves the executors. ``covariates`` names the
``x_j`` (:attr:`ab_testing.metrics_config.EventAggregate.covariate_name`); both are empty for a
metric without covariates. Covariates are pre-exposure aggregates (0 without events), never
missing, so no missing indicators arise here.

Look ``L`` is the state of knowledge at the end of day ``L`` (UTC): units first exposed before its
end, and their events in ``[first_exposure, min(first_exposure + window, end of L))``. Statistics
are cumulative over looks, as the sequential test expects.

All metrics come from one pass: exposures are joined to their events once, each exposure's
cumulative sums at every look (and its covariates) are aggregated in one row, and that row is
expanded to its looks (those from its exposure day on) and summed per metric. Each exposure is
assumed to be one row per (experiment, unit), as in ``ab.exposures``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Final

from pyspark.sql import functions as F

from ab_testing.analysis_input import STAT_COLUMNS
from ab_testing.metrics_config import EventAggregate, MetricDefinition
from ab_testing.settings import OVERALL_SLICE
from ab_testing.stats.moments import sandwich_keys
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

LOOK_DATE: Final = "look_date"
_Y: Final = "_y"
_D: Final = "_d"
_X: Final = "_x"
_EXPOSED_ON: Final = "_exposed_on"
_EVENT_UNIT: Final = "_event_unit"
_HASH: Final = "_unit_hash"
_TYPE: Final = "_event_type"
_EVENT_HASH: Final = "_event_unit_hash"
_SLICES: Final = "_slices"
_KEYS: Final = (Col.EXPERIMENT_ID, Col.VARIANT, Col.UNIT_ID)


def _event_value(agg: EventAggregate) -> Column:
    return F.coalesce(F.col(Col.VALUE), F.lit(0.0)) if agg.agg == "sum" else F.lit(1.0)


def _finish(agg: EventAggregate, total: Column) -> Column:
    return F.when(total > 0, F.lit(1.0)).otherwise(F.lit(0.0)) if agg.agg == "any" else total


@dataclass(frozen=True, slots=True)
class _Sum:
    """A raw per-exposure sum: events of one type, counted or valued, in a window.

    ``days > 0``: outcome window ``[first_exposure, + days)``, one sum per look;
    ``days < 0``: covariate window ``[first_exposure - |days|, first_exposure)``, one sum.
    ``any`` and ``count`` share a sum (``_finish`` tells them apart).
    """

    event: str
    valued: bool
    days: int

    @classmethod
    def of(cls, agg: EventAggregate, days: int) -> _Sum:
        return cls(agg.event, agg.agg == "sum", days)

    def value(self) -> Column:
        return F.coalesce(F.col(Col.VALUE), F.lit(0.0)) if self.valued else F.lit(1.0)


def _check_looks(looks: Sequence[date]) -> None:
    if not looks or any(a >= b for a, b in itertools.pairwise(looks)):
        raise ValueError(f"looks: expected strictly increasing dates, got {list(looks)!r}")


def _sums_of(metrics: Sequence[MetricDefinition]) -> tuple[list[_Sum], list[_Sum]]:
    """Distinct outcome and covariate sums the metrics need, in first-use order."""
    outcomes: dict[_Sum, None] = {}
    covariates: dict[_Sum, None] = {}
    for m in metrics:
        outcomes[_Sum.of(m.numerator, m.window_days)] = None
        if m.denominator is not None:
            outcomes[_Sum.of(m.denominator, m.window_days)] = None
        for c in m.covariates:
            if c.pre_window_days is not None:
                covariates[_Sum.of(c, -c.pre_window_days)] = None
    return list(outcomes), list(covariates)


def _per_exposure(
    exposures: DataFrame,
    events: DataFrame,
    outcomes: Sequence[_Sum],
    covariates: Sequence[_Sum],
    looks: Sequence[date],
) -> DataFrame:
    """One row per exposure: keys, ``_exposed_on``, outcome sum ``o`` at look ``k`` as
    ``_o{o}_{k}`` (events up to the end of that look's day) and covariate sum ``c`` as ``_c{c}``.

    Exposures after the last look and events after its end never count, so both are dropped
    before the join; so are events outside every window of their type, since they add zero to
    every sum. The join is outer: an exposure without events gets zero sums.
    """
    ts = F.col(Col.EVENT_TS)
    # The end of each look's day (UTC in the session): ``to_date(t) <= look`` <=> ``t < end``.
    ends = [F.lit(look + timedelta(days=1)).cast("timestamp") for look in looks]
    # Per event type, the span of its windows in days from first exposure: [lo, hi).
    spans: dict[str, tuple[int, int]] = {}
    for s in (*outcomes, *covariates):
        lo, hi = spans.get(s.event, (0, 0))
        spans[s.event] = (min(lo, s.days), max(hi, s.days))
    # Window bounds once per exposure, not per joined event: first exposure + ``d`` days.
    offsets = sorted({0, *(s.days for s in (*outcomes, *covariates))})

    def bound(days: int) -> Column:
        return F.col(f"_at{days}".replace("-", "m"))

    fe = F.col(Col.FIRST_EXPOSURE_TS)
    unit_hash = F.xxhash64(Col.UNIT_ID)
    exp = exposures.where(fe < ends[-1]).select(
        unit_hash.alias(_HASH),
        *_KEYS,
        Col.FIRST_EXPOSURE_TS,
        *[
            (fe + F.make_interval(days=F.lit(d))).alias(f"_at{d}".replace("-", "m"))
            for d in offsets
        ],
    )
    # Event types travel as their index in ``types`` (a byte, not a string) and only the value
    # of events that need it (``sum`` aggregates) is kept.
    types = sorted(spans)
    code = F.lit(None).cast("byte")
    for i, event in enumerate(types):
        code = F.when(F.col(Col.EVENT_TYPE) == F.lit(event), F.lit(i).cast("byte")).otherwise(code)
    ev = events.where(F.col(Col.EVENT_TYPE).isin(types) & (ts < ends[-1])).select(
        unit_hash.alias(_EVENT_HASH),
        F.col(Col.UNIT_ID).alias(_EVENT_UNIT),
        code.alias(_TYPE),
        Col.EVENT_TS,
        Col.VALUE,
    )

    def is_type(event: str) -> Column:
        return F.col(_TYPE) == F.lit(types.index(event)).cast("byte")

    # The only equi-join key is the unit's 64-bit hash, so the sort-merge join sorts on one long
    # (a radix sort) rather than on unit-id strings. The units themselves must still be equal:
    # that test sits inside the window condition (the event's time, null for another unit), where
    # the planner keeps it as a join condition instead of adding it to the sort keys.
    unit_ts = F.when(F.col(Col.UNIT_ID) == F.col(_EVENT_UNIT), ts)
    contributes = F.lit(False)
    for event, (lo, hi) in spans.items():
        contributes = contributes | (
            is_type(event) & (unit_ts >= bound(lo)) & (unit_ts < bound(hi))
        )
    joined = exp.join(ev, (F.col(_HASH) == F.col(_EVENT_HASH)) & contributes, "left")

    def in_window(s: _Sum) -> Column:
        if s.days > 0:
            return is_type(s.event) & (ts >= bound(0)) & (ts < bound(s.days))
        return is_type(s.event) & (ts < bound(0)) & (ts >= bound(s.days))

    # Per joined row: counted sums as a flag (summed with count_if, whose buffer is never
    # null), valued ones as the value or 0.
    zero = F.lit(0.0)
    contributions = joined.select(
        _HASH,
        *_KEYS,
        Col.FIRST_EXPOSURE_TS,
        Col.EVENT_TS,
        *[
            (F.when(in_window(s), s.value()).otherwise(zero) if s.valued else in_window(s)).alias(
                f"_o{i}"
            )
            for i, s in enumerate(outcomes)
        ],
        *[
            (F.when(in_window(s), s.value()).otherwise(zero) if s.valued else in_window(s)).alias(
                f"_c{i}"
            )
            for i, s in enumerate(covariates)
        ],
    )

    def total(s: _Sum, column: str, until: Column | None = None) -> Column:
        c = F.col(column)
        if s.valued:
            return F.sum(c if until is None else F.when(ts < until, c).otherwise(zero))
        return F.count_if(c if until is None else c & (ts < until)).cast("double")

    # The hash is a grouping key too, so that the join's partitioning serves the aggregation.
    return contributions.groupBy(_HASH, *_KEYS, Col.FIRST_EXPOSURE_TS).agg(
        *[
            total(s, f"_o{i}", end).alias(f"_o{i}_{k}")
            for i, s in enumerate(outcomes)
            for k, end in enumerate(ends)
        ],
        *[total(s, f"_c{i}").alias(f"_c{i}") for i, s in enumerate(covariates)],
        F.to_date(F.col(Col.FIRST_EXPOSURE_TS)).alias(_EXPOSED_ON),
    )


def _metric_values(
    per_exposure: DataFrame,
    metrics: Sequence[MetricDefinition],
    outcomes: Sequence[_Sum],
    covariates: Sequence[_Sum],
    looks: Sequence[date],
    extra: Sequence[str] = (),
) -> DataFrame:
    """Per exposure and look (from its exposure day on): keys, ``look_date`` and each metric's
    ``_y{m}``, ``_d{m}``, ``_x{m}`` (its first covariate, 0 without) and ``_x{m}_{k}`` (its k-th
    covariate); ``extra`` columns of ``per_exposure`` are kept."""
    at_look = F.inline(
        F.array(
            *[
                F.struct(
                    F.lit(look).alias(LOOK_DATE),
                    *[F.col(f"_o{i}_{k}").alias(f"_o{i}") for i in range(len(outcomes))],
                )
                for k, look in enumerate(looks)
            ]
        )
    )
    cov_cols = [f"_c{i}" for i in range(len(covariates))]
    expanded = per_exposure.select(*_KEYS, _EXPOSED_ON, *extra, *cov_cols, at_look).where(
        F.col(LOOK_DATE) >= F.col(_EXPOSED_ON)
    )

    def raw(agg: EventAggregate, days: int) -> Column:
        return F.col(f"_o{outcomes.index(_Sum.of(agg, days))}")

    columns = []
    for j, m in enumerate(metrics):
        y = _finish(m.numerator, raw(m.numerator, m.window_days))
        d = (
            _finish(m.denominator, raw(m.denominator, m.window_days))
            if m.denominator is not None
            else F.lit(1.0)
        )
        xs = [
            _finish(c, F.col(f"_c{covariates.index(_Sum.of(c, -c.pre_window_days))}"))
            for c in m.covariates
            if c.pre_window_days is not None
        ]
        x = xs[0] if xs else F.lit(0.0)
        columns += [y.alias(f"{_Y}{j}"), d.alias(f"{_D}{j}"), x.alias(f"{_X}{j}")]
        columns += [xk.alias(f"{_X}{j}_{k}") for k, xk in enumerate(xs)]
    return expanded.select(*_KEYS, LOOK_DATE, *extra, *columns)


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
    _check_looks(looks)
    outcomes, covariates = _sums_of([metric])
    per_exposure = _per_exposure(exposures, events, outcomes, covariates, looks)
    values = _metric_values(per_exposure, [metric], outcomes, covariates, looks)
    return values.select(
        Col.EXPERIMENT_ID,
        Col.UNIT_ID,
        Col.VARIANT,
        LOOK_DATE,
        F.col(_Y + "0").alias(_Y),
        F.col(_D + "0").alias(_D),
        F.col(_X + "0").alias(_X),
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
    if not metrics:
        raise ValueError("metrics: expected at least one metric, got none")
    _check_looks(looks)
    outcomes, covariates = _sums_of(metrics)
    per_exposure = _per_exposure(exposures, events, outcomes, covariates, looks)
    if unit_slices is None:
        per_exposure = per_exposure.withColumn(Col.SLICE, F.lit(OVERALL_SLICE))
    else:
        # Each unit in ``all`` and once per (unit, slice) row: one row per unit expanded,
        # rather than a second pass over its values.
        listed = unit_slices.groupBy(Col.UNIT_ID).agg(F.collect_list(Col.SLICE).alias(_SLICES))
        per_exposure = per_exposure.join(listed, Col.UNIT_ID, "left").withColumn(
            Col.SLICE,
            F.explode(
                F.concat(
                    F.array(F.lit(OVERALL_SLICE)),
                    F.coalesce(F.col(_SLICES), F.array().cast("array<string>")),
                )
            ),
        )
    values = _metric_values(per_exposure, metrics, outcomes, covariates, looks, [Col.SLICE])
    # Only the sums that are not constant: without a denominator d = 1 (Σd = Σd² = n,
    # Σyd = Σy, Σdx = Σx) and without a covariate x = 0 (its four sums are 0); the same values,
    # fewer aggregates.
    sums = [F.count(F.lit(1)).alias("n")]
    derived: list[dict[str, Column]] = []
    for j, m in enumerate(metrics):
        y, d, x = F.col(f"{_Y}{j}"), F.col(f"{_D}{j}"), F.col(f"{_X}{j}")
        products = {"sum_y": y, "sum_y_sq": y * y}
        if m.denominator is not None:
            products |= {"sum_d": d, "sum_d_sq": d * d, "sum_yd": y * d}
        if m.covariate is not None:
            products |= {"sum_x": x, "sum_x_sq": x * x, "sum_yx": y * x}
            if m.denominator is not None:
                products["sum_dx"] = d * x
        sums += [F.sum(p).alias(f"{c}{j}") for c, p in products.items()]
        n, zero = F.col("n").cast("double"), F.lit(0.0)
        fallback = {
            "sum_d": n,
            "sum_d_sq": n,
            "sum_yd": F.col(f"sum_y{j}"),
            "sum_x": zero,
            "sum_x_sq": zero,
            "sum_yx": zero,
            "sum_dx": F.col(f"sum_x{j}") if m.covariate is not None else zero,
        }
        derived.append(
            {c: F.col(f"{c}{j}") if c in products else fallback[c] for c in STAT_COLUMNS[1:]}
        )
    moments: list[Column] = []
    for j, m in enumerate(metrics):
        sums += _moment_sums(m, j)
        moments.append(_moments_array(m, j))
    stats = values.groupBy(Col.EXPERIMENT_ID, Col.VARIANT, Col.SLICE, LOOK_DATE).agg(*sums)
    per_metric = F.inline(
        F.array(
            *[
                F.struct(
                    F.lit(m.name).alias(Col.METRIC),
                    *[derived[j][c].alias(c) for c in STAT_COLUMNS[1:]],
                    F.lit(m.covariate is not None).alias(Col.HAS_COVARIATE),
                    F.array(*[F.lit(c) for c in m.covariate_names])
                    .cast("array<string>")
                    .alias(Col.COVARIATES),
                    moments[j].alias(Col.MOMENTS),
                )
                for j, m in enumerate(metrics)
            ]
        )
    )
    return stats.select(
        Col.EXPERIMENT_ID, Col.VARIANT, Col.SLICE, LOOK_DATE, "n", per_metric
    ).select(
        Col.EXPERIMENT_ID,
        Col.VARIANT,
        Col.METRIC,
        Col.SLICE,
        LOOK_DATE,
        *STAT_COLUMNS,
        Col.HAS_COVARIATE,
        Col.COVARIATES,
        Col.MOMENTS,
    )


def _moment_vector(m: MetricDefinition, j: int) -> list[Column]:
    """Metric ``j``'s per-unit ``v = (1, x_1..x_K, y[, d])`` as columns (index 0 unused)."""
    x = [F.col(f"{_X}{j}_{k}") for k in range(len(m.covariates))]
    tail = [F.col(f"{_Y}{j}")] + ([F.col(f"{_D}{j}")] if m.denominator is not None else [])
    return [F.lit(1.0), *x, *tail]


def _moment_keys(m: MetricDefinition) -> list[tuple[int, ...]]:
    if not m.covariates:
        return []
    outcomes = 2 if m.denominator is not None else 1
    return sandwich_keys(1 + len(m.covariates) + outcomes, outcomes)


def _moment_sums(m: MetricDefinition, j: int) -> list[Column]:
    """One aggregate per sandwich key of metric ``j`` (key (0,0,0,0) is ``n``, not summed)."""
    v = _moment_vector(m, j)
    sums = []
    for i, key in enumerate(_moment_keys(m)):
        factors = [v[k] for k in key if k != 0]
        if not factors:
            continue
        product = factors[0]
        for f in factors[1:]:
            product = product * f
        sums.append(F.sum(product).alias(f"_m{j}_{i}"))
    return sums


def _moments_array(m: MetricDefinition, j: int) -> Column:
    """Metric ``j``'s sandwich sums in key order (empty without covariates)."""
    cols = [
        F.col("n").cast("double") if key == (0, 0, 0, 0) else F.col(f"_m{j}_{i}")
        for i, key in enumerate(_moment_keys(m))
    ]
    return F.array(*cols).cast("array<double>")
