"""ab.metric_stats rows -> engine input, and the engine's answer on them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np

from ab_testing.analysis_input import common_looks, experiment_data, group_looks, to_stats
from ab_testing.metrics_config import EventAggregate, MetricDefinition
from ab_testing.stats import CupedStats, RatioStats, SampleStats, analyze_experiment

MEAN = MetricDefinition("m", "mean", EventAggregate("click"))
CUPED = MetricDefinition(
    "c", "mean", EventAggregate("click"), covariate=EventAggregate("click", pre_window_days=7)
)
RATIO = MetricDefinition(
    "r", "ratio", EventAggregate("click"), denominator=EventAggregate("impression")
)
DAY0 = date(2026, 1, 1)


def row(
    metric: str,
    variant: str,
    day: int,
    y: np.ndarray,
    x: np.ndarray,
    d: np.ndarray,
    slice_: str = "all",
) -> dict[str, Any]:
    return dict(
        experiment_id="e",
        variant=variant,
        metric=metric,
        slice=slice_,
        look_date=DAY0 + timedelta(days=day),
        n=len(y),
        sum_y=y.sum(),
        sum_y_sq=(y * y).sum(),
        sum_d=d.sum(),
        sum_d_sq=(d * d).sum(),
        sum_yd=(y * d).sum(),
        sum_x=x.sum(),
        sum_x_sq=(x * x).sum(),
        sum_yx=(y * x).sum(),
        sum_dx=(d * x).sum(),
    )


def test_stats_types_follow_the_metric() -> None:
    y, x, d = np.array([1.0, 2.0, 0.0]), np.array([1.0, 0.0, 1.0]), np.ones(3)
    r = row("m", "control", 0, y, x, d)
    assert to_stats(r, MEAN) == SampleStats(n=3.0, sum=3.0, sum_sq=5.0)
    assert to_stats(r, CUPED) == CupedStats.from_arrays(y, x)
    assert to_stats(r, RATIO) == RatioStats.from_arrays(y, d)


def test_daily_looks_feed_the_sequential_test() -> None:
    rng = np.random.default_rng(7)
    rows = []
    units = {
        "control": rng.poisson(1.0, 400).astype(float),
        "treat": rng.poisson(1.3, 400).astype(float),
    }
    for day in range(5):
        for variant, y in units.items():
            seen = y[: 80 * (day + 1)]  # 80 more units exposed each day
            rows.append(row("m", variant, day, seen, np.zeros_like(seen), np.ones_like(seen)))
    rows.append(row("m", "control", 0, np.ones(1), np.zeros(1), np.ones(1), "tiny"))
    assert len(group_looks(rows)) == 3
    assert common_looks(group_looks(rows)) == [DAY0 + timedelta(days=i) for i in range(5)]
    data, looks = experiment_data("e", "control", {"control": 1, "treat": 1}, [MEAN], rows)
    assert len(looks) == 5
    overall = [c for c in data.cells if c.slice == "all"]
    assert all(len(c.daily) == 5 for c in overall)
    results = {(r.slice, r.variant): r for r in analyze_experiment(data)}
    main = results[("all", "treat")]
    assert main.n_control == 400
    assert main.decision == "ship"
    assert 0 <= main.p_value_sequential <= 1
    assert main.p_value_sequential >= main.p_value  # always-valid pays for peeking
    assert results[("tiny", "treat")].decision in ("suppressed", "not_analysable")
