"""Replay of held-out future interactions: served lists, impressions and clicks of an experiment.

An offline stand-in for a live recommendation experiment (issue 5 part 5). Pure DataFrame
transformations (no reads, no writes); ``jobs/replay.py`` feeds them from the warehouse.

**Calendar.** MovieLens time runs long before the experiment's calendar, so the data's time is
mapped onto it by one global, monotone clock::

    replay_ts = start 00:00 UTC + (data_ts - data_start) / speed

``data_start`` (a data instant, normally the end of the training window of the model that made
the recommendations, e.g. a ``time_cutoff`` split's cutoff) becomes the first replay day's
midnight; ``speed`` data days pass per replay day (1 = real time). Interactions at or after
``data_start`` are the held-out future; earlier ones are the users' history.

**Per-user origins** (``origins`` of :func:`replay`). A split that holds out each user's own
last interactions (``leave_last_out``) has no global cutoff: one global clock puts some users'
held-out interactions before the experiment and others' after it, and the replay then measures
a different population and window than offline evaluation. With ``origins`` (user_id, event_ts:
the first instant of the user's held-out window) each user has its own clock::

    replay_ts = start 00:00 UTC + (data_ts - origin_of_user) / speed

so every user's held-out interactions start on the first replay day and its history falls in the
pre-period. Users without an origin (nothing held out) have no clicks and no pre-period clicks.

**Serving.** On each replay day ``d`` in ``[start, end]``, every unit assigned to the experiment on
``d`` (``ab.assignments``) is served once, at ``d`` 00:00 UTC on ``surface``: the top
``list_size`` items (by ``rank``) of its variant's recommendation set (:func:`rec_set_for`: a
variant id that names a :class:`~recsys.warehouse.tables.RecSet` serves that set, any other
variant serves ``model``). A unit without a list in that set is served the ``fallback`` set
(``model_version`` NULL, as for fallbacks in apps), so both arms expose every assigned unit and
missing lists cannot cause a sample-ratio mismatch. An assignment that cannot be served at all
(unit id not a user id, or no list in either set) is returned in ``rejected`` with a reason.

**Events** (``ab.events`` rows, ``source`` = :data:`REPLAY_SOURCE`):

* ``impression``: one per item of each served list (so ``clicks / impressions`` is an item-level
  click-through rate), at the serving time, with the item id.
* ``click``: an interaction of the user with an item of a list served to it, at replay time ``t``
  with ``served_ts <= t < served_ts + click_window_days`` and ``t`` before the end of day ``end``
  (the replay's "now"). A consumption is attributed to the latest serving that covers it, and each
  (serving, item) is clicked at most once (its first consumption), so nothing is double counted.
  Interactions before serving, with items not in the list, or outside the window are no clicks.
* pre-period ``click``: every interaction of the user (any item) in the ``pre_days`` days before
  its first serving, at its replay time: the pre-exposure covariate for CUPED. They all lie
  before the first serving, so they never overlap the clicks above.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Final

from pyspark.sql import Window
from pyspark.sql import functions as F

from ab_testing.settings import check_int_in
from recsys.settings import Reason
from recsys.warehouse.tables import Col, RecSet

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

#: ``source`` of every ``ab.served`` and ``ab.events`` row a replay writes.
REPLAY_SOURCE: Final = "replay"
IMPRESSION: Final = "impression"
CLICK: Final = "click"
#: Every recommendation set a variant can name (see :func:`rec_set_for`).
REC_SETS: Final[tuple[str, ...]] = (RecSet.MODEL, RecSet.POPULARITY)
#: Columns of ``ab.served`` / ``ab.events`` rows returned by :func:`replay`, in table order.
SERVED_COLUMNS: Final = (
    Col.UNIT_ID,
    Col.SURFACE,
    Col.SERVED_TS,
    Col.REC_SET,
    Col.ITEM_IDS,
    Col.MODEL_VERSION,
    Col.SOURCE,
    Col.DS,
)
EVENT_COLUMNS: Final = (
    Col.UNIT_ID,
    Col.EVENT_TYPE,
    Col.EVENT_TS,
    Col.VALUE,
    Col.ITEM_ID,
    Col.SOURCE,
    Col.DS,
)
#: Columns of rejected assignment rows: the assignment, then why it could not be served.
REJECTED_COLUMNS: Final = (Col.UNIT_ID, Col.VARIANT, Col.DS, Col.REASON, Col.DETAIL)

_SURFACE_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,62}")  # fullmatch: no trailing newline
_US: Final = 1_000_000
_LIST: Final = "_list"
_FALLBACK: Final = "_fallback"
_FALLBACK_VERSION: Final = "_fallback_version"
_USER: Final = "_user"
_REPLAY_TS: Final = "_replay_ts"
_FIRST: Final = "_first_served"
_RN: Final = "_rn"
_ORIGIN: Final = "_origin"


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    """One replay, validated on construction.

    Attributes:
        start: First replay (serving) day, UTC.
        end: Last replay day, inclusive (``>= start``); nothing after its end is known.
        data_start: Data instant (timezone-aware) mapped to ``start`` 00:00 UTC (unused when
            :func:`replay` gets per-user ``origins``).
        speed: Data days per replay day, 1-3650.
        list_size: Items served per list (top ranks), 1-1000.
        click_window_days: Days after a serving in which consuming a served item is its click,
            1-365.
        pre_days: Days before a unit's first serving whose interactions are pre-period clicks,
            0-365 (0: none).
        surface: ``ab.served.surface`` of every served list (``[a-z][a-z0-9_]*``).
        fallback: Set served when the variant's set has no list for the user; None: none.
    """

    start: date
    end: date
    data_start: datetime
    speed: int = 1
    list_size: int = 10
    click_window_days: int = 1
    pre_days: int = 14
    surface: str = "home"
    fallback: str | None = RecSet.POPULARITY

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, datetime) or not isinstance(value, date):
                raise TypeError(f"{name}: expected a datetime.date, got {value!r}")
        if self.end < self.start:
            raise ValueError(f"end: must be on or after start {self.start}, got {self.end}")
        if not isinstance(self.data_start, datetime) or self.data_start.tzinfo is None:
            raise TypeError(
                f"data_start: expected a timezone-aware datetime, got {self.data_start!r}"
            )
        check_int_in("speed", self.speed, 1, 3650)
        check_int_in("list_size", self.list_size, 1, 1000)
        check_int_in("click_window_days", self.click_window_days, 1, 365)
        check_int_in("pre_days", self.pre_days, 0, 365)
        if not isinstance(self.surface, str) or not _SURFACE_RE.fullmatch(self.surface):
            raise ValueError(f"surface: expected {_SURFACE_RE.pattern}, got {self.surface!r}")
        if self.fallback is not None and self.fallback not in REC_SETS:
            raise ValueError(f"fallback: expected one of {REC_SETS} or None, got {self.fallback!r}")

    @property
    def start_ts(self) -> datetime:
        """``start`` 00:00 UTC."""
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def now(self) -> datetime:
        """End of day ``end`` (exclusive): the replay knows nothing at or after it."""
        return self.start_ts + timedelta(days=(self.end - self.start).days + 1)

    def to_replay(self, data_ts: datetime) -> datetime:
        """The replay time of data instant ``data_ts`` (timezone-aware), to the microsecond."""
        if not isinstance(data_ts, datetime) or data_ts.tzinfo is None:
            raise TypeError(f"data_ts: expected a timezone-aware datetime, got {data_ts!r}")
        delta_us = (data_ts - self.data_start) // timedelta(microseconds=1)
        return self.start_ts + timedelta(microseconds=delta_us // self.speed)


def rec_set_for(variant: str) -> str:
    """The recommendation set a variant serves: the set it names, else ``model``."""
    if not isinstance(variant, str):
        raise TypeError(f"variant: expected a string, got {variant!r}")
    return variant if variant in REC_SETS else RecSet.MODEL


def rec_set_col(variant: Column) -> Column:
    """Column twin of :func:`rec_set_for`: the set the variant in ``variant`` serves."""
    out: Column = F.lit(RecSet.MODEL)
    for name in REC_SETS:
        out = F.when(variant == F.lit(name), F.lit(name)).otherwise(out)
    return out


def replay_time(data_ts: Column, config: ReplayConfig, origin: Column | None = None) -> Column:
    """Column twin of :meth:`ReplayConfig.to_replay` for a TIMESTAMP column (microseconds).

    Args:
        data_ts: Data instants (TIMESTAMP).
        config: The replay.
        origin: Per-row data instant (TIMESTAMP) mapped to ``start`` 00:00 instead of
            ``config.data_start``; None: ``data_start`` for every row.
    """
    t0 = config.data_start.astimezone(UTC)
    t0_us = (t0 - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    start_us = (config.start_ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    zero = F.lit(t0_us) if origin is None else F.unix_micros(origin)
    delta = F.unix_micros(data_ts) - zero
    # Floor division of a BIGINT by a positive int: subtract the non-negative remainder first.
    scaled = ((delta - F.pmod(delta, F.lit(config.speed))) / F.lit(config.speed)).cast("long")
    return F.timestamp_micros(F.lit(start_us) + scaled)


def _check_columns(name: str, df: DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}, has {df.columns}")


def rec_lists(recommendations: DataFrame, list_size: int) -> DataFrame:
    """(rec_set, user_id, _list, model_version): the top ``list_size`` items by rank, in order.

    Args:
        recommendations: ``serve.recommendations`` rows of ONE ds (rec_set, user_id, rank,
            item_id, model_version).
        list_size: Items per list.
    """
    _check_columns(
        "recommendations",
        recommendations,
        (Col.REC_SET, Col.USER_ID, Col.RANK, Col.ITEM_ID, Col.MODEL_VERSION),
    )
    check_int_in("list_size", list_size, 1, 1000)
    top = recommendations.where(F.col(Col.RANK) <= F.lit(list_size))
    return top.groupBy(Col.REC_SET, Col.USER_ID).agg(
        F.transform(
            F.sort_array(F.collect_list(F.struct(Col.RANK, Col.ITEM_ID))), lambda s: s[Col.ITEM_ID]
        ).alias(_LIST),
        F.max(Col.MODEL_VERSION).alias(Col.MODEL_VERSION),
    )


def served_lists(
    assignments: DataFrame, recommendations: DataFrame, config: ReplayConfig
) -> tuple[DataFrame, DataFrame]:
    """The lists served on the replay days, and the assignments that could not be served.

    Args:
        assignments: ``ab.assignments`` rows of ONE experiment (unit_id, variant, ds); days
            outside ``[start, end]`` are ignored.
        recommendations: ``serve.recommendations`` rows of one ds.
        config: The replay.

    Returns:
        ``(served, rejected)``: ``served`` has :data:`SERVED_COLUMNS`, one row per (unit, day);
        ``rejected`` has :data:`REJECTED_COLUMNS`.
    """
    _check_columns("assignments", assignments, (Col.UNIT_ID, Col.VARIANT, Col.DS))
    days = (F.col(Col.DS) >= F.lit(config.start)) & (F.col(Col.DS) <= F.lit(config.end))
    units = (
        assignments.where(days)
        .select(Col.UNIT_ID, Col.VARIANT, Col.DS)
        .distinct()
        .withColumn(_USER, F.col(Col.UNIT_ID).try_cast("bigint"))
        .withColumn(Col.REC_SET, rec_set_col(F.col(Col.VARIANT)))
    )
    # A unit id is a user id only as its canonical decimal string ("007" or " 7" are not).
    is_user = F.col(_USER).isNotNull() & (F.col(_USER).cast("string") == F.col(Col.UNIT_ID))
    lists = rec_lists(recommendations, config.list_size)
    primary = lists.withColumnRenamed(Col.USER_ID, _USER)
    joined = units.join(primary, [_USER, Col.REC_SET], "left")
    if config.fallback is not None:
        fallback = lists.where(F.col(Col.REC_SET) == F.lit(config.fallback)).select(
            F.col(Col.USER_ID).alias(_USER),
            F.col(_LIST).alias(_FALLBACK),
        )
        joined = joined.join(fallback, _USER, "left")
    else:
        joined = joined.withColumn(_FALLBACK, F.lit(None).cast("array<bigint>"))
    has_own = F.col(_LIST).isNotNull()
    has_any = has_own | F.col(_FALLBACK).isNotNull()
    served = joined.where(is_user & has_any).select(
        Col.UNIT_ID,
        F.lit(config.surface).alias(Col.SURFACE),
        F.col(Col.DS).cast("timestamp").alias(Col.SERVED_TS),
        F.when(has_own, F.col(Col.REC_SET)).otherwise(F.lit(config.fallback)).alias(Col.REC_SET),
        F.coalesce(F.col(_LIST), F.col(_FALLBACK)).alias(Col.ITEM_IDS),
        F.when(has_own, F.col(Col.MODEL_VERSION)).alias(Col.MODEL_VERSION),
        F.lit(REPLAY_SOURCE).alias(Col.SOURCE),
        Col.DS,
    )
    rejected = joined.where(~is_user | ~has_any).select(
        Col.UNIT_ID,
        Col.VARIANT,
        Col.DS,
        F.when(~is_user, F.lit(Reason.INVALID_VALUE.value))
        .otherwise(F.lit(Reason.UNKNOWN_USER.value))
        .alias(Col.REASON),
        F.when(~is_user, F.lit("unit_id is not a decimal user id"))
        .otherwise(
            F.concat(
                F.lit("no recommendations for the user in rec_set "),
                F.col(Col.REC_SET),
                F.lit(" nor in the fallback " + str(config.fallback)),
            )
        )
        .alias(Col.DETAIL),
    )
    return served, rejected


def _events(df: DataFrame, event_type: str, ts: str) -> DataFrame:
    return df.select(
        Col.UNIT_ID,
        F.lit(event_type).alias(Col.EVENT_TYPE),
        F.col(ts).alias(Col.EVENT_TS),
        F.lit(None).cast("double").alias(Col.VALUE),
        Col.ITEM_ID,
        F.lit(REPLAY_SOURCE).alias(Col.SOURCE),
        F.to_date(F.col(ts)).alias(Col.DS),
    )


def consumptions(
    interactions: DataFrame, config: ReplayConfig, origins: DataFrame | None = None
) -> DataFrame:
    """Distinct (user_id, item_id, _replay_ts) of the interactions, on the replay calendar.

    Only what can matter is kept: from ``pre_days`` before ``start`` to the end of ``end``.

    Args:
        interactions: user_id (BIGINT), item_id (BIGINT) and event_ts (TIMESTAMP, data time),
            e.g. ``bronze.interactions`` or ``features.interactions_split`` rows.
        config: The replay.
        origins: user_id, event_ts (the user's data origin, see the module docstring), at most
            one row per user; None: the global ``data_start``. Users without a row are dropped.
    """
    _check_columns("interactions", interactions, (Col.USER_ID, Col.ITEM_ID, Col.EVENT_TS))
    lo = config.start_ts - timedelta(days=config.pre_days)
    origin: Column | None = None
    if origins is not None:
        _check_columns("origins", origins, (Col.USER_ID, Col.EVENT_TS))
        own = origins.select(Col.USER_ID, F.col(Col.EVENT_TS).alias(_ORIGIN))
        interactions = interactions.join(own, Col.USER_ID)
        origin = F.col(_ORIGIN)
    mapped = interactions.select(
        Col.USER_ID,
        Col.ITEM_ID,
        replay_time(F.col(Col.EVENT_TS), config, origin).alias(_REPLAY_TS),
    )
    return mapped.where(
        (F.col(_REPLAY_TS) >= F.lit(lo)) & (F.col(_REPLAY_TS) < F.lit(config.now))
    ).distinct()


def clicks(served: DataFrame, consumed: DataFrame, config: ReplayConfig) -> DataFrame:
    """``click`` events: served items consumed within the window (see the module docstring).

    Args:
        served: Output of :func:`served_lists`.
        consumed: Output of :func:`consumptions`.
    """
    shown = served.select(
        Col.UNIT_ID,
        F.col(Col.UNIT_ID).cast("bigint").alias(Col.USER_ID),
        Col.SERVED_TS,
        F.explode(Col.ITEM_IDS).alias(Col.ITEM_ID),
    )
    t, s = F.col(_REPLAY_TS), F.col(Col.SERVED_TS)
    in_window = (t >= s) & (t < s + F.make_interval(days=F.lit(config.click_window_days)))
    hits = shown.join(consumed, [Col.USER_ID, Col.ITEM_ID]).where(in_window)
    # Each consumption once: to the latest serving that covers it ...
    latest = Window.partitionBy(Col.USER_ID, Col.ITEM_ID, _REPLAY_TS).orderBy(s.desc())
    hits = hits.withColumn(_RN, F.row_number().over(latest)).where(F.col(_RN) == 1)
    # ... and each served item once: its first consumption.
    first = Window.partitionBy(Col.USER_ID, Col.SERVED_TS, Col.ITEM_ID).orderBy(t)
    hits = hits.withColumn(_RN, F.row_number().over(first)).where(F.col(_RN) == 1)
    return _events(hits, CLICK, _REPLAY_TS)


def pre_period_clicks(served: DataFrame, consumed: DataFrame, config: ReplayConfig) -> DataFrame:
    """Pre-period ``click`` events: interactions in the ``pre_days`` before a unit's first serving.

    Args:
        served: Output of :func:`served_lists`.
        consumed: Output of :func:`consumptions`.
    """
    first = served.groupBy(Col.UNIT_ID).agg(F.min(Col.SERVED_TS).alias(_FIRST))
    first = first.withColumn(Col.USER_ID, F.col(Col.UNIT_ID).cast("bigint"))
    t, f = F.col(_REPLAY_TS), F.col(_FIRST)
    lo = f - F.make_interval(days=F.lit(config.pre_days))
    pre = first.join(consumed, Col.USER_ID).where((t >= lo) & (t < f))
    return _events(pre, CLICK, _REPLAY_TS)


@dataclass(frozen=True, slots=True)
class ReplayOutput:
    """What a replay produces: ``ab.served`` rows, ``ab.events`` rows, unservable assignments."""

    served: DataFrame
    events: DataFrame
    rejected: DataFrame


def replay(
    assignments: DataFrame,
    recommendations: DataFrame,
    interactions: DataFrame,
    config: ReplayConfig,
    origins: DataFrame | None = None,
) -> ReplayOutput:
    """Serve, show and click as the module docstring describes (lazy; nothing is computed).

    Args:
        assignments: ``ab.assignments`` rows of one experiment (unit_id, variant, ds).
        recommendations: ``serve.recommendations`` rows of one ds.
        interactions: user_id, item_id, event_ts (data time) of every user's interactions.
        config: The replay.
        origins: Per-user data origins (user_id, event_ts; see the module docstring), or None
            for the global clock of ``config.data_start``.

    Returns:
        Served lists (:data:`SERVED_COLUMNS`), impression + click + pre-period click events
        (:data:`EVENT_COLUMNS`) and rejected assignments (:data:`REJECTED_COLUMNS`).
    """
    if not isinstance(config, ReplayConfig):
        raise TypeError(f"config: expected a ReplayConfig, got {config!r}")
    served, rejected = served_lists(assignments, recommendations, config)
    users = served.select(F.col(Col.UNIT_ID).cast("bigint").alias(Col.USER_ID)).distinct()
    consumed = consumptions(interactions.join(users, Col.USER_ID, "left_semi"), config, origins)
    impressions = _events(
        served.select(Col.UNIT_ID, Col.SERVED_TS, F.explode(Col.ITEM_IDS).alias(Col.ITEM_ID)),
        IMPRESSION,
        Col.SERVED_TS,
    )
    events = impressions.unionByName(clicks(served, consumed, config))
    if config.pre_days > 0:
        events = events.unionByName(pre_period_clicks(served, consumed, config))
    return ReplayOutput(served, events, rejected)
