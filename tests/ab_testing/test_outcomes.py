"""Outcome joins reduced to sufficient statistics, checked against hand-computed sums."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pytest

from ab_testing.analysis_input import STAT_COLUMNS
from ab_testing.metrics_config import EventAggregate, MetricDefinition
from ab_testing.outcomes import sufficient_stats
from tests.ab_testing.outcome_reference import (
    EVENTS_SCHEMA,
    EXPOSURES_SCHEMA,
    Event,
    Exposure,
    event_total,
    input_frames,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark

CLICKS = MetricDefinition(
    "clicks_per_user",
    "mean",
    EventAggregate("click", "count"),
    window_days=7,
    covariate=EventAggregate("click", "count", pre_window_days=14),
)
CONVERTED = MetricDefinition("converted", "binomial", EventAggregate("click", "any"), window_days=7)
CTR = MetricDefinition(
    "ctr",
    "ratio",
    EventAggregate("click", "count"),
    window_days=7,
    denominator=EventAggregate("impression", "count"),
)
LOOKS = [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 9)]


def frames(spark: SparkSession) -> tuple[DataFrame, DataFrame, DataFrame]:
    exposures = spark.createDataFrame(
        [
            ("e1", "control", "u1", datetime(2026, 1, 1, 10)),
            ("e1", "control", "u2", datetime(2026, 1, 2, 9)),
            ("e1", "treat", "u3", datetime(2026, 1, 1, 12)),
        ],
        EXPOSURES_SCHEMA,
    )
    events = spark.createDataFrame(
        [
            ("u1", "click", datetime(2026, 1, 1, 11), None),
            ("u1", "click", datetime(2026, 1, 3, 8), None),
            ("u1", "click", datetime(2025, 12, 30, 8), None),  # pre-period: covariate only
            ("u1", "click", datetime(2026, 1, 9, 11), None),  # after the 7-day window
            ("u1", "click", datetime(2025, 12, 1, 8), None),  # before the 14-day pre-window
            ("u2", "impression", datetime(2026, 1, 2, 10), None),
            ("u2", "click", datetime(2026, 1, 2, 10, 5), None),
            ("u3", "click", datetime(2026, 1, 1, 11), None),  # before u3's exposure: covariate
            ("u3", "impression", datetime(2026, 1, 2, 8), None),
            ("u4", "click", datetime(2026, 1, 2, 8), None),
        ],  # never exposed: ignored
        EVENTS_SCHEMA,
    )
    slices = spark.createDataFrame(
        [("u1", "heavy"), ("u2", "light"), ("u3", "light")], "unit_id string, slice string"
    )
    return exposures, events, slices


def stats(spark: SparkSession) -> dict[tuple[str, str, str, date], dict[str, Any]]:
    exposures, events, slices = frames(spark)
    rows = sufficient_stats(exposures, events, [CLICKS, CONVERTED, CTR], LOOKS, slices).collect()
    return {(r.metric, r.variant, r.slice, r.look_date): r.asDict() for r in rows}


def sums(row: dict[str, Any]) -> tuple[float, ...]:
    return tuple(row[c] for c in STAT_COLUMNS)


def test_cumulative_looks_windows_and_covariates(spark: SparkSession) -> None:
    got = stats(spark)
    # (n, Σy, Σy², Σd, Σd², Σyd, Σx, Σx², Σyx, Σdx)
    # Day 1: only u1 (1 click at 11:00; 1 pre-period click) exposed in control.
    assert sums(got[("clicks_per_user", "control", "all", LOOKS[0])]) == (
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
        1,
    )
    # u3 exposed at 12:00: its 11:00 click is its covariate, not its outcome.
    assert sums(got[("clicks_per_user", "treat", "all", LOOKS[0])]) == (
        1,
        0,
        0,
        1,
        1,
        0,
        1,
        1,
        0,
        1,
    )
    # Day 2: u2 joins control with one click and no pre-period clicks.
    assert sums(got[("clicks_per_user", "control", "all", LOOKS[1])]) == (
        2,
        2,
        2,
        2,
        2,
        2,
        1,
        1,
        1,
        1,
    )
    # Day 3: u1's second click: y = (2, 1), x = (1, 0).
    assert sums(got[("clicks_per_user", "control", "all", LOOKS[2])]) == (
        2,
        3,
        5,
        2,
        2,
        3,
        1,
        1,
        2,
        1,
    )
    # Day 9: the click on 9 Jan is past u1's window (1 Jan 10:00 + 7 days): nothing changes.
    assert sums(got[("clicks_per_user", "control", "all", LOOKS[3])]) == sums(
        got[("clicks_per_user", "control", "all", LOOKS[2])]
    )
    assert got[("clicks_per_user", "control", "all", LOOKS[0])]["has_covariate"] is True


def test_binomial_ratio_and_slices(spark: SparkSession) -> None:
    got = stats(spark)
    conv = got[("converted", "control", "all", LOOKS[2])]
    assert (conv["n"], conv["sum_y"], conv["sum_y_sq"], conv["sum_x"]) == (2, 2, 2, 0)
    assert conv["has_covariate"] is False
    # ctr, control on day 3: u1 (y=2, d=0), u2 (y=1, d=1).
    ctr = got[("ctr", "control", "all", LOOKS[2])]
    assert sums(ctr)[:6] == (2, 3, 5, 1, 1, 1)
    ctr_t = got[("ctr", "treat", "all", LOOKS[2])]
    assert sums(ctr_t)[:6] == (1, 0, 0, 1, 1, 0)
    assert got[("clicks_per_user", "control", "heavy", LOOKS[2])]["n"] == 1
    assert got[("clicks_per_user", "control", "light", LOOKS[2])]["sum_y"] == 1
    assert ("clicks_per_user", "treat", "heavy", LOOKS[2]) not in got


def test_looks_must_increase(spark: SparkSession) -> None:
    exposures, events, _ = frames(spark)
    with pytest.raises(ValueError, match="looks"):
        sufficient_stats(exposures, events, [CLICKS], [LOOKS[1], LOOKS[0]])


RANDOM_METRICS = [
    MetricDefinition("buyer", "binomial", EventAggregate("click", "any"), window_days=2),
    MetricDefinition(
        "revenue",
        "mean",
        EventAggregate("purchase", "sum"),
        window_days=5,
        covariate=EventAggregate("purchase", "sum", pre_window_days=7),
    ),
    MetricDefinition(
        "ctr3",
        "ratio",
        EventAggregate("click", "count"),
        window_days=3,
        denominator=EventAggregate("impression", "count"),
        covariate=EventAggregate("click", "any", pre_window_days=3),
    ),
    CLICKS,
]
RANDOM_LOOKS = [date(2026, 1, d) for d in (1, 2, 3, 5, 8)]


def _reference(
    exposures: list[Exposure], events: list[Event], slices: list[tuple[str, str]]
) -> dict[tuple[str, str, str, str, date], list[float]]:
    """Sufficient statistics by brute force in pure Python (the definition in outcomes.py)."""
    from datetime import timedelta

    def total(agg: EventAggregate, unit: str, lo: datetime, hi: datetime) -> float:
        return event_total(events, agg, unit, lo, hi)

    out: dict[tuple[str, str, str, str, date], list[float]] = {}
    for exp, variant, unit, fe in exposures:
        names = ["all"] + [s for u, s in slices if u == unit]
        for look in RANDOM_LOOKS:
            if fe.date() > look:
                continue
            end = datetime.combine(look + timedelta(days=1), datetime.min.time())
            for m in RANDOM_METRICS:
                hi = min(fe + timedelta(days=m.window_days), end)
                y = total(m.numerator, unit, fe, hi)
                d = 1.0 if m.denominator is None else total(m.denominator, unit, fe, hi)
                x = 0.0
                if m.covariate is not None and m.covariate.pre_window_days is not None:
                    x = total(
                        m.covariate, unit, fe - timedelta(days=m.covariate.pre_window_days), fe
                    )
                for name in names:
                    acc = out.setdefault((exp, variant, m.name, name, look), [0.0] * 10)
                    terms = (1, y, y * y, d, d * d, y * d, x, x * x, y * x, d * x)
                    for i, t in enumerate(terms):
                        acc[i] += t
    return out


def test_matches_brute_force_on_random_data(spark: SparkSession) -> None:
    import random
    from datetime import timedelta

    rng = random.Random(7)
    units = [f"r{i}" for i in range(30)]
    exposures = []
    for exp in ("ex_a", "ex_b"):
        for unit in rng.sample(units, 22):  # most units are in both experiments
            fe = datetime(2026, 1, 1) + timedelta(minutes=rng.randrange(0, 9 * 24 * 60))
            exposures.append((exp, rng.choice(["control", "treat"]), unit, fe))
    events = []
    for _ in range(600):
        kind = rng.choice(["click", "impression", "purchase", "other"])
        ts = datetime(2025, 12, 20) + timedelta(seconds=rng.randrange(0, 24 * 86_400))
        value = None if rng.random() < 0.3 else round(rng.uniform(0, 10), 2)
        events.append((rng.choice([*units, "nobody"]), kind, ts, value))
    slices = [(u, s) for u in units for s in ("s1", "s2") if rng.random() < 0.4]
    got = sufficient_stats(
        *input_frames(spark, exposures, events),
        RANDOM_METRICS,
        RANDOM_LOOKS,
        spark.createDataFrame(slices, "unit_id string, slice string"),
    ).collect()
    want = _reference(exposures, events, slices)
    rows = {(r.experiment_id, r.variant, r.metric, r.slice, r.look_date): r for r in got}
    assert len(rows) == len(got)
    assert rows.keys() == want.keys()
    for key, expected in want.items():
        row = rows[key]
        assert row["n"] == expected[0], key
        assert [row[c] for c in STAT_COLUMNS[1:]] == pytest.approx(expected[1:], rel=1e-9), key
        assert row["has_covariate"] is (key[2] != "buyer")
