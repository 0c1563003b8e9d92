"""The app-side reader: published surfaces from the warehouse, the user's variant, served events.

No Spark and no JVM: Delta tables are read with ``deltalake`` (delta-rs) straight from
``<warehouse_root>/<schema>/<table>``, and experiment variants come from the pure-Python
:func:`ab_testing.assignment.assign`, bucket for bucket the same as the warehouse's
``ab_testing.assignment_spark.assign_df``.

Served events are buffered and written to ``ab.served`` in batches by a background thread
(:class:`recsys.reader.sinks.DeltaServedSink`): a call never waits for a Delta commit. Close the
reader (or use it as a context manager) at shutdown to write the last batch.

Each table is read once per Delta version (the rows of its newest ``ds``) and served from memory;
a newer version is looked for at most every ``refresh_interval_s`` seconds (see
:mod:`recsys.reader.snapshots`). Unknown users, items and genres get the trending list instead,
never an exception; so does a table that is missing or empty.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

from ab_testing.assignment import assign
from ab_testing.config import ExperimentsConfig, load_config
from recsys.reader.indexes import (
    RECOMMENDATION_COLUMNS,
    RELATED_COLUMNS,
    TRENDING_COLUMNS,
    RecommendationIndex,
    RelatedIndex,
    TrendingIndex,
)
from recsys.reader.results import (
    SURFACE_HOME,
    SURFACE_ITEM_PAGE,
    SURFACE_TRENDING,
    ServedItem,
    ServedList,
)
from recsys.reader.sinks import Closeable, DeltaServedSink, ServedEvent, ServedSink
from recsys.reader.snapshots import CompletionGate, TableCache
from recsys.warehouse.completion import Pipeline
from recsys.warehouse.tables import (
    OPS_COMPLETED_RUNS,
    SERVE_RECOMMENDATIONS,
    SERVE_RELATED_ITEMS,
    SERVE_TRENDING,
    TRENDING_ALL_GENRES,
    RecSet,
)

log = logging.getLogger(__name__)

#: Every recommendation set name (the public constants of :class:`RecSet`).
REC_SETS: Final[frozenset[str]] = frozenset(
    v for k, v in vars(RecSet).items() if k.isupper() and isinstance(v, str)
)
#: Default seconds between version checks of a table.
DEFAULT_REFRESH_S: Final = 30.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    return value


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an int, got {n!r}")
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n!r}")
    return n


def rec_set_of(
    config: ExperimentsConfig | None,
    unit_id: str,
    attributes: Mapping[str, object] | None,
    on: date,
) -> str:
    """The recommendation set a unit is served on day ``on``.

    The first of the unit's assignments (in layer order) whose variant id names a set in
    :class:`RecSet` decides; a unit in no such variant, in no experiment, or with no config is
    served :attr:`RecSet.MODEL`.
    """
    if config is None:
        return RecSet.MODEL
    for a in assign(config, unit_id, attributes, on=on):
        if a.variant in REC_SETS:
            return a.variant
    return RecSet.MODEL


class Reader(Closeable):
    """Reads published recommendations, related items and trending lists for an app.

    Thread-safe; create one per process and share it (in a pre-fork server: in each worker,
    after the fork, since the default sink's flusher thread does not survive a fork).

    Args:
        warehouse_root: Root of the warehouse, as ``RECSYS_WAREHOUSE`` (a path, or a URI
            delta-rs understands, e.g. ``s3://``).
        experiments: Experiment configuration for variants; None serves everyone
            :attr:`RecSet.MODEL`.
        sink: Where served events go; default: a :class:`DeltaServedSink` appending to
            ``ab.served`` (source ``app``) in batches from a background thread, closed by
            :meth:`close`. A sink passed in is flushed, never closed, by the reader.
        refresh_interval_s: Minimum seconds between version checks per table, >= 0.
        clock: Monotonic seconds, for the refresh interval (tests pass a fake).
        now: The current time (naive = UTC), for ``served_ts`` and the assignment day (UTC).
        storage_options: Passed to delta-rs (object-store credentials).
    """

    def __init__(
        self,
        warehouse_root: str | Path,
        *,
        experiments: ExperimentsConfig | None = None,
        sink: ServedSink | None = None,
        refresh_interval_s: float = DEFAULT_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utc_now,
        storage_options: dict[str, str] | None = None,
    ) -> None:
        if not isinstance(warehouse_root, (str, Path)):
            raise TypeError(f"warehouse_root: expected a path or URI, got {warehouse_root!r}")
        if not str(warehouse_root).strip():
            raise ValueError(f"warehouse_root: must not be empty, got {warehouse_root!r}")
        if experiments is not None and not isinstance(experiments, ExperimentsConfig):
            raise TypeError(f"experiments: expected an ExperimentsConfig, got {experiments!r}")
        if (
            isinstance(refresh_interval_s, bool)
            or not isinstance(refresh_interval_s, (int, float))
            or not refresh_interval_s >= 0
        ):
            raise ValueError(
                f"refresh_interval_s: must be a number >= 0, got {refresh_interval_s!r}"
            )
        root = str(warehouse_root)
        self.experiments = experiments
        # The reader closes the sink it made; a sink passed in belongs to the caller.
        self._own_sink = sink is None
        self._sink: ServedSink = (
            sink if sink is not None else DeltaServedSink(root, storage_options=storage_options)
        )
        self._now = now
        interval = float(refresh_interval_s)
        self._recs = TableCache(
            SERVE_RECOMMENDATIONS.location(root),
            RECOMMENDATION_COLUMNS,
            RecommendationIndex.build,
            interval,
            clock,
            storage_options,
            # Only days whose daily run completed (see recsys.reader.snapshots).
            CompletionGate(
                OPS_COMPLETED_RUNS.location(root), Pipeline.RECSYS_DAILY, storage_options
            ),
        )
        self._related = TableCache(
            SERVE_RELATED_ITEMS.location(root),
            RELATED_COLUMNS,
            RelatedIndex.build,
            interval,
            clock,
            storage_options,
        )
        self._trending = TableCache(
            SERVE_TRENDING.location(root),
            TRENDING_COLUMNS,
            TrendingIndex.build,
            interval,
            clock,
            storage_options,
        )

    @classmethod
    def from_settings(cls, experiments_path: str | Path | None = None, **kwargs: object) -> Reader:
        """A reader of the warehouse named by ``RECSYS_WAREHOUSE`` / ``RECSYS_CONFIG``.

        Args:
            experiments_path: Experiments YAML (``ab_testing/config.py``); None: no experiments.
            **kwargs: Other :class:`Reader` arguments.
        """
        from recsys.settings import load_settings

        config = None if experiments_path is None else load_config(experiments_path)
        return cls(load_settings().warehouse_root, experiments=config, **kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ public surfaces

    def recommendations_for(
        self,
        user_id: int,
        n: int = 10,
        *,
        attributes: Mapping[str, object] | None = None,
        surface: str = SURFACE_HOME,
    ) -> ServedList:
        """The user's top ``n`` of the recommendation set their variant chooses; records it.

        Args:
            user_id: Raw user id (``serve.recommendations.user_id``).
            n: Items wanted, >= 1 (fewer when fewer are published).
            attributes: Unit attributes the experiments' targeting reads (e.g. ``{"age": 31}``).
            surface: ``ab.served.surface`` of the event.

        Returns:
            The list; an unknown user (or one missing from the chosen set) gets the overall
            trending list with ``is_fallback`` set. One event goes to the sink either way.

        Raises:
            TypeError: ``user_id`` or ``n`` is not an int, or an attribute's type does not fit
                its targeting filter.
            ValueError: ``n`` < 1.
        """
        _check_id("user_id", user_id)
        _check_n(n)
        served_ts = _as_utc(self._now())
        rec_set = self.rec_set_for(user_id, attributes=attributes, on=served_ts.date())
        index = self._recs.get()
        found = None if index is None else index.lookup(rec_set, user_id, n)
        if index is not None and found is not None:
            result = ServedList(
                surface, found.items, index.ds, index.version, rec_set, found.model_version
            )
        else:
            fallback = self._trending_list(TRENDING_ALL_GENRES, n)
            result = replace(fallback, surface=surface, rec_set=rec_set, is_fallback=True)
        self._record(
            ServedEvent(
                str(user_id),
                surface,
                served_ts,
                rec_set,
                tuple(result.item_ids),
                result.model_version,
            )
        )
        return result

    def related_to(self, item_id: int, n: int = 10) -> ServedList:
        """The top ``n`` items related to ``item_id`` (cosine of item embeddings).

        An unknown item gets the overall trending list with ``is_fallback`` set.

        Raises:
            TypeError: ``item_id`` or ``n`` is not an int.
            ValueError: ``n`` < 1.
        """
        _check_id("item_id", item_id)
        _check_n(n)
        index = self._related.get()
        found = None if index is None else index.lookup(item_id, n)
        if index is None or found is None:
            fallback = self._trending_list(TRENDING_ALL_GENRES, n)
            return replace(fallback, surface=SURFACE_ITEM_PAGE, is_fallback=True)
        return ServedList(
            SURFACE_ITEM_PAGE, found.items, index.ds, index.version, None, found.model_version
        )

    def trending(self, genre: str | None = None, n: int = 10) -> ServedList:
        """Trending items of ``genre`` (None: overall), top ``n``.

        A genre without a list (matched exactly, then case-insensitively) gets the overall list
        with ``is_fallback`` set.

        Raises:
            TypeError: ``genre`` is neither a str nor None, or ``n`` is not an int.
            ValueError: ``n`` < 1.
        """
        if genre is not None and not isinstance(genre, str):
            raise TypeError(f"genre: expected a str or None, got {genre!r}")
        _check_n(n)
        return self._trending_list(TRENDING_ALL_GENRES if genre is None else genre, n)

    def rec_set_for(
        self,
        user_id: int,
        *,
        attributes: Mapping[str, object] | None = None,
        on: date | None = None,
    ) -> str:
        """The recommendation set the user's variant serves on day ``on`` (default: today, UTC).

        See :func:`rec_set_of` for the rule.
        """
        _check_id("user_id", user_id)
        day = self._now().date() if on is None else on
        return rec_set_of(self.experiments, str(user_id), attributes, day)

    def refresh(self) -> None:
        """Check every table for a newer version now (otherwise done every interval)."""
        for cache in (self._recs, self._related, self._trending):
            cache.refresh()

    def flush(self) -> None:
        """Persist buffered served events now (see :class:`DeltaServedSink`)."""
        self._sink.flush()

    def close(self) -> None:
        """Write buffered served events and stop the default sink's flusher (idempotent).

        A sink passed to the constructor is only flushed: its owner closes it.
        """
        if self._own_sink and isinstance(self._sink, DeltaServedSink):
            self._sink.close()
        else:
            self._sink.flush()

    # ------------------------------------------------------------------ helpers

    def _trending_list(self, genre: str, n: int) -> ServedList:
        index = self._trending.get()
        if index is None:
            return ServedList(SURFACE_TRENDING, (), None, None, is_fallback=True)
        found = index.lookup(genre, n)
        if found is not None:
            return ServedList(SURFACE_TRENDING, found[1], index.ds, index.version)
        overall = index.lookup(TRENDING_ALL_GENRES, n)
        items: tuple[ServedItem, ...] = () if overall is None else overall[1]
        return ServedList(SURFACE_TRENDING, items, index.ds, index.version, is_fallback=True)

    def _record(self, event: ServedEvent) -> None:
        try:
            self._sink.record(event)
        except Exception:  # serving must not fail because the log is unavailable
            log.exception("served event for unit %s not recorded", event.unit_id)
