"""ab.metric_stats rows -> engine input, and the engine's answer on them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from ab_testing.analysis_input import common_looks, experiment_data, group_looks, to_stats
from ab_testing.metrics_config import EventAggregate, MetricDefinition
from ab_testing.stats import (
    CupedStats,
    RatioStats,
    RegressionStats,
    SampleStats,
    analyze_experiment,
    cuped_moments,
    sandwich_keys,
)

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
    y: npt.NDArray[np.float64],
    x: npt.NDArray[np.float64],
    d: npt.NDArray[np.float64],
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


TWO = MetricDefinition(
    "t",
    "ratio",
    EventAggregate("click"),
    denominator=EventAggregate("impression"),
    covariates=(
        EventAggregate("click", pre_window_days=7),
        EventAggregate("impression", pre_window_days=3),
    ),
)


def test_stats_types_follow_the_metric() -> None:
    y, x, d = np.array([1.0, 2.0, 0.0]), np.array([1.0, 0.0, 1.0]), np.ones(3)
    r = row("m", "control", 0, y, x, d)
    assert to_stats(r, MEAN) == SampleStats(n=3.0, sum=3.0, sum_sq=5.0)
    assert to_stats(r, RATIO) == RatioStats.from_arrays(y, d)
    # a covariate -> regression moments; without the row's moments, from the CUPED sums
    # (leading-order SE)
    cuped = to_stats(r, CUPED)
    assert isinstance(cuped, RegressionStats)
    want = cuped_moments(CupedStats.from_arrays(y, x), "pre_click_count_7d")
    np.testing.assert_allclose(cuped.m2, want.m2)
    assert cuped.covariates == ("pre_click_count_7d",)
    assert cuped.m4 is None


def test_moments_give_exact_regression_stats_with_several_covariates() -> None:
    y, d = np.array([1.0, 2.0, 0.0, 3.0]), np.array([2.0, 2.0, 1.0, 4.0])
    x = np.array([[1.0, 0.0, 1.0, 2.0], [3.0, 1.0, 0.0, 1.0]])
    v = np.column_stack([np.ones(4), x[0], x[1], y, d])
    moments = [float(np.prod(v[:, list(k)], axis=1).sum()) for k in sandwich_keys(5, 2)]
    r = row("t", "control", 0, y, x[0], d) | {"moments": moments}
    got = to_stats(r, TWO)
    want = RegressionStats.from_arrays(y, x, TWO.covariate_names, den=d)
    assert isinstance(got, RegressionStats)
    assert got.covariates == ("pre_click_count_7d", "pre_impression_count_3d")
    assert got.ratio
    np.testing.assert_allclose(got.m2, want.m2)
    assert got.m4 is not None
    assert want.m4 is not None
    read = [k for k in np.ndindex(*want.m4.shape) if sum(i >= 3 for i in k) <= 2]
    np.testing.assert_allclose([got.m4[k] for k in read], [want.m4[k] for k in read])
    with pytest.raises(ValueError, match="moments: metric 't' has 2 covariates"):
        to_stats(row("t", "control", 0, y, x[0], d), TWO)


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
