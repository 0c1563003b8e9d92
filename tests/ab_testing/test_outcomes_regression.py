"""Spark's regression moments (``outcomes.sufficient_stats``) agree with pure Python.

Two covariates per metric (a mean and a ratio metric): the ``moments`` sums equal brute-force
sums over the units, and the engine's answer on the Spark rows (``analysis_input`` ->
``analyze_experiment``) equals :func:`regression_test_arrays` on the unit-level values -- the
analyst CLI's computation -- to 1e-9, with an always-valid p-value over the looks.
"""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from ab_testing.analysis_input import experiment_data
from ab_testing.metrics_config import EventAggregate, MetricDefinition
from ab_testing.outcomes import sufficient_stats
from ab_testing.settings import AnalysisConfig
from ab_testing.stats import analyze_experiment, regression_test_arrays, sandwich_keys
from tests.ab_testing.outcome_reference import Event, Exposure, event_total, input_frames

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

CLICKS = MetricDefinition(
    "clicks",
    "mean",
    EventAggregate("click", "count"),
    window_days=5,
    covariates=(
        EventAggregate("click", "count", pre_window_days=14),
        EventAggregate("impression", "count", pre_window_days=7),
    ),
)
CTR = MetricDefinition(
    "ctr",
    "ratio",
    EventAggregate("click", "count"),
    window_days=5,
    denominator=EventAggregate("impression", "count"),
    covariates=(
        EventAggregate("click", "count", pre_window_days=14),
        EventAggregate("purchase", "sum", pre_window_days=10),
    ),
)
METRICS = [CLICKS, CTR]
LOOKS = [date(2026, 1, d) for d in (1, 2, 3, 6)]


def _data() -> tuple[list[Exposure], list[Event]]:
    rng = random.Random(18)
    exposures: list[Exposure] = []
    events: list[Event] = []
    for i in range(90):
        unit, variant = f"u{i}", ("control", "treat")[i % 2]
        fe = datetime(2026, 1, 1) + timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
        exposures.append(("e", variant, unit, fe))
        activity = rng.uniform(0.2, 3.0)  # drives pre-period and outcome alike
        for _ in range(int(rng.expovariate(1.0) * 6 * activity)):
            kind = rng.choice(["click", "impression", "impression", "purchase"])
            ts = datetime(2025, 12, 18) + timedelta(seconds=rng.randrange(0, 24 * 86_400))
            value = round(rng.uniform(1, 20), 2) if kind == "purchase" else None
            events.append((unit, kind, ts, value))
        if variant == "treat":  # a few extra clicks after exposure
            for _ in range(rng.randrange(0, 3)):
                events.append((unit, "click", fe + timedelta(hours=rng.uniform(1, 90)), None))
    return exposures, events


def _unit_values(
    exposures: list[Exposure], events: list[Event], m: MetricDefinition, look: date
) -> dict[str, list[tuple[float, float, list[float]]]]:
    """Per variant, (y, d, [x_1..x_K]) of each unit exposed by ``look``: the definition."""
    end = datetime.combine(look + timedelta(days=1), datetime.min.time())
    out: dict[str, list[tuple[float, float, list[float]]]] = {"control": [], "treat": []}
    for _, variant, unit, fe in exposures:
        if fe.date() > look:
            continue
        hi = min(fe + timedelta(days=m.window_days), end)
        y = event_total(events, m.numerator, unit, fe, hi)
        d = 1.0 if m.denominator is None else event_total(events, m.denominator, unit, fe, hi)
        xs = [
            event_total(events, c, unit, fe - timedelta(days=c.pre_window_days or 0), fe)
            for c in m.covariates
        ]
        out[variant].append((y, d, xs))
    return out


@pytest.fixture(scope="module")
def spark_rows(spark: SparkSession) -> tuple[list[dict[str, Any]], list[Exposure], list[Event]]:
    exposures, events = _data()
    rows = sufficient_stats(*input_frames(spark, exposures, events), METRICS, LOOKS).collect()
    return [r.asDict() for r in rows], exposures, events


def test_moments_equal_brute_force_sums(
    spark_rows: tuple[list[dict[str, Any]], list[Exposure], list[Event]],
) -> None:
    rows, exposures, events = spark_rows
    assert len(rows) == len(METRICS) * 2 * len(LOOKS)
    for row in rows:
        m = next(m for m in METRICS if m.name == row["metric"])
        units = _unit_values(exposures, events, m, row["look_date"])[row["variant"]]
        outcomes = 2 if m.denominator is not None else 1
        v = np.array([[1.0, *xs, y, *([d] if outcomes == 2 else [])] for y, d, xs in units])
        keys = sandwich_keys(v.shape[1], outcomes)
        want = [float(np.prod(v[:, list(k)], axis=1).sum()) for k in keys]
        assert row["covariates"] == list(m.covariate_names)
        assert row["moments"] == pytest.approx(want, rel=1e-12, abs=1e-9), row["metric"]
        assert row["n"] == len(units)


@pytest.mark.parametrize("metric", METRICS, ids=lambda m: m.name)
def test_engine_on_spark_rows_matches_unit_level_regression(
    spark_rows: tuple[list[dict[str, Any]], list[Exposure], list[Event]],
    metric: MetricDefinition,
) -> None:
    rows, exposures, events = spark_rows
    data, looks = experiment_data("e", "control", {"control": 1.0, "treat": 1.0}, [metric], rows)
    assert looks == LOOKS
    (row,) = analyze_experiment(data, AnalysisConfig(min_units_per_slice=10))
    units = _unit_values(exposures, events, metric, LOOKS[-1])
    arrays = []
    for variant in ("control", "treat"):
        y = np.array([u[0] for u in units[variant]])
        d = np.array([u[1] for u in units[variant]])
        x = np.array([u[2] for u in units[variant]]).T
        arrays.append((y, x, d if metric.denominator is not None else None))
    (y_c, x_c, d_c), (y_t, x_t, d_t) = arrays
    ref = regression_test_arrays(
        y_c, x_c, y_t, x_t, list(metric.covariate_names), den_control=d_c, den_treatment=d_t
    )
    assert row.method == "regression_hc1" == ref.adjusted.method
    assert row.covariates == metric.covariate_names
    for got, want in (
        (row.abs_lift, ref.adjusted.abs_lift),
        (row.abs_se, ref.adjusted.abs_se),
        (row.statistic, ref.adjusted.statistic),
        (row.p_value, ref.adjusted.p_value),
        (row.mean_control_adjusted, ref.adjusted.mean_control),
        (row.mean_variant_adjusted, ref.adjusted.mean_treatment),
        (row.variance_reduction, ref.variance_reduction),
        (row.abs_se_unadjusted, ref.unadjusted.abs_se),
    ):
        assert got == pytest.approx(float(want), rel=1e-9, abs=1e-12)
    assert row.theta_control == pytest.approx([float(t) for t in ref.theta_control], rel=1e-9)
    assert not math.isnan(row.p_value_sequential)
    assert row.p_value <= row.p_value_sequential <= 1.0
