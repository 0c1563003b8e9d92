"""The replay on tiny literal data: serving, fallbacks, impressions, clicks, pre-period."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import functions as F

from ab_testing.replay import (
    EVENT_COLUMNS,
    SERVED_COLUMNS,
    ReplayConfig,
    rec_set_for,
    replay,
    replay_time,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark

START, END = date(2027, 1, 4), date(2027, 1, 6)
DATA_START = datetime(2017, 1, 1, tzinfo=UTC)
#: Column lists of replay's three inputs, as the tests build them.
ASSIGNMENTS_DDL = "unit_id string, variant string, ds date"
RECS_DDL = "rec_set string, user_id bigint, rank int, item_id bigint, model_version string"
INTERACTIONS_DDL = "user_id bigint, item_id bigint, event_ts timestamp"
CONFIG = ReplayConfig(
    start=START,
    end=END,
    data_start=DATA_START,
    list_size=2,
    click_window_days=2,
    pre_days=3,
)


def at(day: int, hour: int = 0, month: int = 1, year: int = 2027) -> datetime:
    """A replay-calendar instant (naive UTC, as Spark returns it in the UTC session)."""
    return datetime(year, month, day, hour)


def data_time(replay_ts: datetime) -> datetime:
    """The data instant that speed 1 maps to ``replay_ts``."""
    return (DATA_START + (replay_ts.replace(tzinfo=UTC) - CONFIG.start_ts)).replace(tzinfo=None)


def frames(spark: SparkSession) -> tuple[DataFrame, DataFrame, DataFrame]:
    assignments = spark.createDataFrame(
        [
            ("1", "model", START),
            ("1", "model", START + timedelta(days=1)),
            ("1", "model", date(2027, 1, 10)),  # after the replay: ignored
            ("2", "model", START),  # no model list: served the popularity fallback
            ("3", "popularity", START),  # no list at all: rejected
            ("x7", "model", START),  # not a user id: rejected
            ("007", "model", START),  # not canonical: rejected
        ],
        ASSIGNMENTS_DDL,
    )
    recs = spark.createDataFrame(
        [
            ("model", 1, 2, 102, "m1"),
            ("model", 1, 1, 101, "m1"),
            ("model", 1, 3, 103, "m1"),  # beyond list_size
            ("popularity", 1, 1, 201, "p1"),
            ("popularity", 1, 2, 202, "p1"),
            ("popularity", 2, 1, 201, "p1"),
            ("popularity", 2, 2, 202, "p1"),
            ("popularity", 7, 1, 201, "p1"),
        ],
        RECS_DDL,
    )
    consumed = [
        (1, 101, at(4, 10)),  # click (serving of the 4th)
        (1, 101, at(4, 15)),  # same serving, same item: not a second click
        (1, 102, at(5, 12)),  # covered by the 4th's and 5th's servings: one click (5th)
        (1, 103, at(4, 11)),  # not in the served list
        (1, 101, at(3, 23)),  # before the first serving: pre-period
        (1, 555, at(2, 0)),  # pre-period, any item
        (1, 556, at(24, 0, month=12, year=2026)),  # before the pre-period
        (1, 102, at(7, 5)),  # after the replay's end
        (2, 201, at(4, 1)),  # click
        (2, 202, at(6, 5)),  # past the 2-day window of the only serving
        (2, 201, at(3, 0)),  # pre-period
        (9, 201, at(4, 2)),  # never served
    ]
    interactions = spark.createDataFrame(
        [(u, i, data_time(t)) for u, i, t in consumed],
        INTERACTIONS_DDL,
    )
    return assignments, recs, interactions


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="end"):
        ReplayConfig(start=END, end=START, data_start=DATA_START)
    with pytest.raises(TypeError, match="data_start"):
        ReplayConfig(start=START, end=END, data_start=datetime(2017, 1, 1))
    with pytest.raises(ValueError, match="speed"):
        ReplayConfig(start=START, end=END, data_start=DATA_START, speed=0)
    with pytest.raises(ValueError, match="surface"):
        ReplayConfig(start=START, end=END, data_start=DATA_START, surface="Home page")
    with pytest.raises(ValueError, match="fallback"):
        ReplayConfig(start=START, end=END, data_start=DATA_START, fallback="trending")
    with pytest.raises(TypeError, match="variant"):
        rec_set_for(3)  # type: ignore[arg-type]
    assert [rec_set_for(v) for v in ("model", "popularity", "control")] == [
        "model",
        "popularity",
        "model",
    ]


def test_calendar_mapping(spark: SparkSession) -> None:
    fast = ReplayConfig(start=START, end=END, data_start=DATA_START, speed=7)
    assert fast.to_replay(DATA_START + timedelta(days=7, hours=7)) == fast.start_ts + timedelta(
        days=1, hours=1
    )
    # Floor, also before data_start: one microsecond earlier maps to just before midnight.
    assert fast.to_replay(DATA_START - timedelta(microseconds=1)) == fast.start_ts - timedelta(
        microseconds=1
    )
    instants = [DATA_START + timedelta(days=d, seconds=s) for d in (-30, -1, 0, 5) for s in (0, 1)]
    df = spark.createDataFrame([(t,) for t in instants], "event_ts timestamp")
    got = [r[0] for r in df.select(replay_time(F.col("event_ts"), fast)).collect()]
    assert got == [fast.to_replay(t).replace(tzinfo=None) for t in instants]


def test_served_lists_fallback_and_rejects(spark: SparkSession) -> None:
    out = replay(*frames(spark), CONFIG)
    assert tuple(out.served.columns) == SERVED_COLUMNS
    served = {(r.unit_id, r.ds): r for r in out.served.collect()}
    assert set(served) == {("1", START), ("1", START + timedelta(days=1)), ("2", START)}
    one = served[("1", START)]
    assert (one.rec_set, one.item_ids, one.model_version) == ("model", [101, 102], "m1")
    assert (one.served_ts, one.surface, one.source) == (at(4), "home", "replay")
    two = served[("2", START)]
    assert (two.rec_set, two.item_ids, two.model_version) == ("popularity", [201, 202], None)
    rejected = {r.unit_id: r.reason for r in out.rejected.collect()}
    assert rejected == {"3": "unknown_user", "x7": "invalid_value", "007": "invalid_value"}


def test_impressions_clicks_and_pre_period(spark: SparkSession) -> None:
    out = replay(*frames(spark), CONFIG)
    assert tuple(out.events.columns) == EVENT_COLUMNS
    events = out.events.collect()
    impressions = sorted(
        (e.unit_id, e.item_id, e.event_ts) for e in events if e.event_type == "impression"
    )
    assert impressions == [
        ("1", 101, at(4)),
        ("1", 101, at(5)),
        ("1", 102, at(4)),
        ("1", 102, at(5)),
        ("2", 201, at(4)),
        ("2", 202, at(4)),
    ]
    clicks = sorted((e.unit_id, e.item_id, e.event_ts) for e in events if e.event_type == "click")
    outcome = [("1", 101, at(4, 10)), ("1", 102, at(5, 12)), ("2", 201, at(4, 1))]
    pre = [("1", 101, at(3, 23)), ("1", 555, at(2, 0)), ("2", 201, at(3, 0))]
    assert clicks == sorted(outcome + pre)
    assert all(e.ds == e.event_ts.date() and e.source == "replay" for e in events)
    assert all(e.value is None for e in events)


def test_no_pre_period_and_no_fallback(spark: SparkSession) -> None:
    config = ReplayConfig(
        start=START, end=END, data_start=DATA_START, list_size=2, pre_days=0, fallback=None
    )
    out = replay(*frames(spark), config)
    assert {r.unit_id for r in out.served.collect()} == {"1"}
    assert {r.unit_id: r.reason for r in out.rejected.collect()}["2"] == "unknown_user"
    clicks = {(e.unit_id, e.item_id) for e in out.events.collect() if e.event_type == "click"}
    # Window 1 day (default): the 5th's consumption of 102 is the 5th serving's click.
    assert clicks == {("1", 101), ("1", 102)}


def test_per_user_origins_put_each_users_held_out_on_the_first_day(spark: SparkSession) -> None:
    """Leave-last-out holds out each user's own last items: one global clock misses them."""
    assignments = spark.createDataFrame(
        [("1", "model", START), ("2", "popularity", START), ("7", "popularity", START)],
        ASSIGNMENTS_DDL,
    )
    recs = spark.createDataFrame(
        [
            ("model", 1, 1, 101, "m1"),
            ("model", 1, 2, 102, "m1"),
            ("popularity", 2, 1, 201, "p1"),
            ("popularity", 2, 2, 202, "p1"),
            ("popularity", 7, 1, 201, "p1"),
            ("popularity", 7, 2, 202, "p1"),
        ],
        RECS_DDL,
    )
    one, two = DATA_START + timedelta(days=400), DATA_START - timedelta(days=900)
    naive = [
        (1, 101, one + timedelta(hours=10)),  # held out: a click at day 1, 10:00
        (1, 555, one - timedelta(days=1)),  # history: pre-period, the day before
        (1, 102, one - timedelta(days=30)),  # history before the pre-period: nothing
        (2, 202, two + timedelta(days=1, hours=2)),  # held out: a click at day 2, 02:00
        (7, 201, DATA_START + timedelta(hours=3)),  # no origin: nothing at all
    ]
    interactions = spark.createDataFrame(
        [(u, i, t.replace(tzinfo=None)) for u, i, t in naive],
        INTERACTIONS_DDL,
    )
    origins = spark.createDataFrame(
        [(1, one.replace(tzinfo=None)), (2, two.replace(tzinfo=None))],
        "user_id bigint, event_ts timestamp",
    )
    out = replay(assignments, recs, interactions, CONFIG, origins)
    clicks = sorted(
        (e.unit_id, e.item_id, e.event_ts) for e in out.events.collect() if e.event_type == "click"
    )
    assert clicks == [
        ("1", 101, at(4, 10)),
        ("1", 555, at(3)),
        ("2", 202, at(5, 2)),
    ]
    # The global clock of DATA_START puts the same held-out interactions far outside the replay.
    glob = replay(assignments, recs, interactions, CONFIG)
    got = {(e.unit_id, e.item_id) for e in glob.events.collect() if e.event_type == "click"}
    assert got == {("7", 201)}
