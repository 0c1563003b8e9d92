"""Where served events go: ``ab.served`` rows (format: ``sql/ab/served.sql``).

The exposure job (``ab_testing.assignment_spark.exposures_from_served``) turns these rows into
first exposures; the reader writes one per personal-recommendation response.

:class:`DeltaServedSink` keeps every Delta commit off the request path: ``record`` only appends
the event to a bounded in-memory buffer, and one background thread per sink appends the buffer to
``ab.served`` in batches (one commit per batch). Semantics for app developers are in
``docs/operations-retention.md``.
"""

from __future__ import annotations

import atexit

# The final write at interpreter exit builds an Arrow table, which imports pandas, which imports
# concurrent.futures.thread: a module that cannot be imported once shutdown has begun.
import concurrent.futures.thread  # noqa: F401
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Protocol, Self

import pyarrow as pa

from recsys.validation import check_int
from recsys.warehouse.tables import AB_SERVED, Col

if TYPE_CHECKING:
    from types import TracebackType

log = logging.getLogger(__name__)

#: ``ab.served.source`` of rows the app writes.
APP_SOURCE: Final = "app"

#: Events a :class:`DeltaServedSink` holds at most (buffered plus being written, also while the
#: table cannot be written); further events are dropped and counted until a write succeeds.
MAX_PENDING: Final = 100_000

#: Default seconds between two batch commits of a :class:`DeltaServedSink`.
DEFAULT_FLUSH_INTERVAL_S: Final = 5.0
#: Default number of buffered events that triggers a commit before the interval is over.
DEFAULT_MAX_BATCH: Final = 5_000
#: Seconds the flusher waits after a failed write before the first retry; doubles per failure.
RETRY_BACKOFF_S: Final = 1.0
#: Longest wait between two retries, seconds.
MAX_RETRY_BACKOFF_S: Final = 60.0

#: Arrow schema of ``ab.served`` (nullability as in the DDL).
SERVED_SCHEMA: Final = pa.schema(
    [
        pa.field(Col.UNIT_ID, pa.string(), nullable=False),
        pa.field(Col.SURFACE, pa.string(), nullable=False),
        pa.field(Col.SERVED_TS, pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field(Col.REC_SET, pa.string(), nullable=False),
        pa.field(Col.ITEM_IDS, pa.list_(pa.field("element", pa.int64())), nullable=False),
        pa.field(Col.MODEL_VERSION, pa.string(), nullable=True),
        pa.field(Col.SOURCE, pa.string(), nullable=False),
        pa.field(Col.DS, pa.date32(), nullable=False),
    ]
)

#: Appends one batch (an Arrow table with :data:`SERVED_SCHEMA`) as one commit, or raises.
ServedWriter = Callable[[pa.Table], None]


@dataclass(frozen=True, slots=True)
class ServedEvent:
    """One response shown to a unit: a row of ``ab.served`` without ``source`` and ``ds``.

    Attributes:
        unit_id: Randomisation unit, the user id as a decimal string.
        surface: Where it was shown (``home``, ...).
        served_ts: When, an aware UTC datetime; ``ds`` is its UTC day.
        rec_set: Recommendation set the unit's variant chose.
        item_ids: Items shown, in display order.
        model_version: Version of what was served; None for fallbacks.
    """

    unit_id: str
    surface: str
    served_ts: datetime
    rec_set: str
    item_ids: tuple[int, ...]
    model_version: str | None

    def __post_init__(self) -> None:
        if self.served_ts.tzinfo is None:
            raise ValueError(f"served_ts: expected an aware UTC datetime, got {self.served_ts!r}")


def events_table(events: list[ServedEvent], source: str) -> pa.Table:
    """``events`` as an Arrow table with :data:`SERVED_SCHEMA` (``ds`` = UTC day of served_ts)."""
    stamps = [e.served_ts.astimezone(UTC) for e in events]
    return pa.table(
        {
            Col.UNIT_ID: [e.unit_id for e in events],
            Col.SURFACE: [e.surface for e in events],
            Col.SERVED_TS: stamps,
            Col.REC_SET: [e.rec_set for e in events],
            Col.ITEM_IDS: [list(e.item_ids) for e in events],
            Col.MODEL_VERSION: [e.model_version for e in events],
            Col.SOURCE: [source] * len(events),
            Col.DS: [s.date() for s in stamps],
        },
        schema=SERVED_SCHEMA,
    )


def delta_writer(location: str, storage_options: dict[str, str] | None = None) -> ServedWriter:
    """A :data:`ServedWriter` appending to the Delta table at ``location`` with delta-rs (a blind
    append, which never conflicts with other writers; partitioned by ``ds, source``)."""

    def write(batch: pa.Table) -> None:
        from deltalake import write_deltalake

        write_deltalake(
            location,
            batch,
            mode="append",
            partition_by=[Col.DS, Col.SOURCE],
            storage_options=storage_options,
        )

    return write


class Closeable:
    """``with`` support for a class with :meth:`close`: entering gives the object, leaving
    closes it, also when the block raises."""

    def close(self) -> None:
        """Release what the object holds (each subclass says what)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ServedSink(Protocol):
    """Receives served events; must be safe to call from several threads."""

    def record(self, event: ServedEvent) -> None:
        """Take one event (may buffer it); must not block on I/O."""

    def flush(self) -> None:
        """Persist every buffered event."""


class InMemorySink(Closeable):
    """Keeps events in a list (tests, dry runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[ServedEvent] = []

    def record(self, event: ServedEvent) -> None:
        with self._lock:
            self._events.append(event)

    def flush(self) -> None:
        """Nothing to persist."""

    def close(self) -> None:
        """Nothing to release."""

    @property
    def events(self) -> tuple[ServedEvent, ...]:
        """Every event recorded so far, in order."""
        with self._lock:
            return tuple(self._events)


@dataclass(frozen=True, slots=True)
class SinkStats:
    """Counters of a :class:`DeltaServedSink` since it was created.

    Attributes:
        pending: Events buffered or being written now.
        written: Events committed.
        commits: Successful writes (one Delta commit each).
        failed_writes: Writes that raised (their events were kept for the next try).
        dropped: Events refused because :attr:`DeltaServedSink.max_pending` events were pending,
            or recorded after :meth:`DeltaServedSink.close`.
    """

    pending: int
    written: int
    commits: int
    failed_writes: int
    dropped: int


_OPEN_SINKS: weakref.WeakSet[DeltaServedSink] = weakref.WeakSet()


def _close_open_sinks() -> None:
    """``atexit``: flush every sink that was not closed (events would be lost otherwise)."""
    for sink in list(_OPEN_SINKS):
        try:
            sink.close()
        except Exception:
            log.exception("ab.served sink at %s: final flush failed", sink.location)


atexit.register(_close_open_sinks)


def _warm_up(source: str) -> None:
    """Import what a write needs now, at start-up: an import in the flusher thread would hold
    the GIL while requests are served, and one at interpreter exit may fail."""
    import deltalake  # noqa: F401

    events_table([], source)  # pyarrow imports its pandas shim on first use


class DeltaServedSink(Closeable):
    """Appends served events to ``ab.served`` in batches, from a background thread (no Spark).

    **Request path.** :meth:`record` appends the event to an in-memory buffer under a lock held
    for a few instructions; it never waits for I/O and never raises for a full buffer.

    **Flushing.** One daemon thread (started on the first event) writes everything buffered as
    one Delta commit every ``flush_interval_s`` seconds, or as soon as ``max_batch`` events are
    buffered. :meth:`flush` writes the buffer now, in the calling thread. :meth:`close` (also on
    leaving a ``with`` block, and at interpreter exit for sinks never closed) stops the thread
    and writes what is left.

    **Failures.** A failed write keeps its events, ahead of newer ones, and the thread retries
    after 1 s, 2 s, 4 s ... (at most 60 s); :meth:`flush` and :meth:`close` try at once and
    raise the error. Nothing is lost to a failing write while fewer than ``max_pending`` events
    are pending.

    **When full.** With ``max_pending`` events pending (buffered plus being written), a new event
    is dropped: counted in :attr:`SinkStats.dropped`, and the flusher logs a warning with the
    count (never the request thread). The oldest events are the ones kept: they hold each unit's
    first exposure of the outage.

    Delivery is at least once: a write that raises after its commit landed (a lost reply from
    the object store) is retried, duplicating its rows; the exposure job keeps the earliest
    event per unit, so duplicates do not change exposures. Events buffered when the process is
    killed (``SIGKILL``, OOM) are lost: at most ``flush_interval_s`` seconds of them.

    Args:
        warehouse_root: Root of the warehouse (a path or URI delta-rs understands).
        source: ``ab.served.source`` of the rows, non-empty.
        flush_interval_s: Seconds between batch commits, > 0.
        max_batch: Buffered events that trigger a commit before the interval is over, >= 1.
        max_pending: Most events held (buffered plus being written), >= ``max_batch``.
        storage_options: Passed to delta-rs (object-store credentials).
        writer: Writes one batch (default: :func:`delta_writer` of ``ab.served``); tests inject
            failing ones.
    """

    def __init__(
        self,
        warehouse_root: str,
        *,
        source: str = APP_SOURCE,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_pending: int = MAX_PENDING,
        storage_options: dict[str, str] | None = None,
        writer: ServedWriter | None = None,
    ) -> None:
        if not isinstance(source, str) or not source.strip():
            raise ValueError(f"source: expected a non-empty string, got {source!r}")
        if (
            isinstance(flush_interval_s, bool)
            or not isinstance(flush_interval_s, (int, float))
            or not 0 < flush_interval_s < float("inf")
        ):
            raise ValueError(f"flush_interval_s: must be a number > 0, got {flush_interval_s!r}")
        check_int("max_batch", max_batch, 1)
        check_int("max_pending", max_pending, 1)
        if max_pending < max_batch:
            raise ValueError(f"max_pending: must be >= max_batch ({max_batch}), got {max_pending}")
        if writer is not None and not callable(writer):
            raise TypeError(f"writer: expected a callable, got {writer!r}")
        self.location = AB_SERVED.location(warehouse_root)
        self.source = source
        self.flush_interval_s = float(flush_interval_s)
        self.max_batch = max_batch
        self.max_pending = max_pending
        if writer is None:
            _warm_up(source)
        self._write = writer if writer is not None else delta_writer(self.location, storage_options)
        # _cond guards the buffer and counters (held briefly, never during I/O); _write_lock
        # serialises writes so batches commit in order and a failed batch goes back in front.
        self._cond = threading.Condition(threading.Lock())
        self._write_lock = threading.Lock()
        self._buffer: deque[ServedEvent] = deque()
        self._in_flight = 0
        self._written = 0
        self._commits = 0
        self._failed = 0
        self._dropped = 0
        self._dropped_reported = 0
        self._retry_at = 0.0
        self._backoff = RETRY_BACKOFF_S
        self._closed = False
        self._thread: threading.Thread | None = None
        _OPEN_SINKS.add(self)

    # ------------------------------------------------------------------ request path

    def record(self, event: ServedEvent) -> None:
        """Buffer ``event`` for the next batch; never blocks on I/O (see the class doc)."""
        with self._cond:
            if self._closed or len(self._buffer) + self._in_flight >= self.max_pending:
                self._dropped += 1
                return
            self._buffer.append(event)
            if self._thread is None:
                self._start_locked()
            elif len(self._buffer) == self.max_batch:
                self._cond.notify()

    # ------------------------------------------------------------------ flushing

    def flush(self) -> None:
        """Write every buffered event now, in this thread (one commit).

        Raises:
            Exception: the writer's error; the events stay buffered for the next try.
        """
        self._write_pending()

    def close(self) -> None:
        """Stop the flusher and write what is left; later events are dropped (counted).

        Idempotent. Raises the writer's error when the final write fails (the events stay
        buffered: a later :meth:`flush` may still write them).
        """
        with self._cond:
            self._closed = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        _OPEN_SINKS.discard(self)
        self._report_drops()
        self._write_pending()

    def stats(self) -> SinkStats:
        """The sink's counters now."""
        with self._cond:
            return SinkStats(
                pending=len(self._buffer) + self._in_flight,
                written=self._written,
                commits=self._commits,
                failed_writes=self._failed,
                dropped=self._dropped,
            )

    def _start_locked(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"served-sink-{self.source}", daemon=True
        )
        self._thread.start()

    def _due_locked(self, now: float, next_flush: float) -> bool:
        if now < self._retry_at:
            return False
        return now >= next_flush or len(self._buffer) >= self.max_batch

    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_interval_s
        while True:
            with self._cond:
                while not self._closed:
                    now = time.monotonic()
                    if self._due_locked(now, next_flush):
                        break
                    wake = max(next_flush, self._retry_at)
                    if len(self._buffer) >= self.max_batch:  # held back by a retry wait only
                        wake = self._retry_at
                    self._cond.wait(max(wake - now, 0.001))
                if self._closed:
                    return  # close() writes what is left, in its own thread
            next_flush = time.monotonic() + self.flush_interval_s
            self._report_drops()
            try:
                self._write_pending()
            except Exception:
                with self._cond:
                    delay = self._backoff
                    self._retry_at = time.monotonic() + delay
                    self._backoff = min(delay * 2, MAX_RETRY_BACKOFF_S)
                    pending = len(self._buffer)
                log.exception(
                    "ab.served at %s: write failed, %d events kept, retry in %.0f s",
                    self.location,
                    pending,
                    delay,
                )

    def _write_pending(self) -> None:
        with self._write_lock:
            with self._cond:
                if not self._buffer:
                    return
                batch = list(self._buffer)
                self._buffer.clear()
                self._in_flight = len(batch)
            try:
                self._write(events_table(batch, self.source))
            except BaseException:
                with self._cond:
                    self._buffer.extendleft(reversed(batch))  # oldest first again
                    self._in_flight = 0
                    self._failed += 1
                raise
            with self._cond:
                self._in_flight = 0
                self._written += len(batch)
                self._commits += 1
                self._retry_at = 0.0
                self._backoff = RETRY_BACKOFF_S

    def _report_drops(self) -> None:
        with self._cond:
            new = self._dropped - self._dropped_reported
            self._dropped_reported = self._dropped
            total = self._dropped
        if new:
            log.warning(
                "ab.served at %s: %d served events dropped (%d in all): %d were pending "
                "(max_pending) or the sink was closed",
                self.location,
                new,
                total,
                self.max_pending,
            )
