"""Where served events go: ``ab.served`` rows (format: ``sql/ab/served.sql``).

The exposure job (``ab_testing.assignment_spark.exposures_from_served``) turns these rows into
first exposures; the reader writes one per personal-recommendation response.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Protocol

import pyarrow as pa

from recsys.warehouse.tables import AB_SERVED, Col

if TYPE_CHECKING:
    from types import TracebackType

log = logging.getLogger(__name__)

#: ``ab.served.source`` of rows the app writes.
APP_SOURCE: Final = "app"

#: Events a :class:`DeltaServedSink` keeps while the table cannot be written; older ones are
#: dropped.
MAX_PENDING: Final = 100_000

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


class ServedSink(Protocol):
    """Receives served events; must be safe to call from several threads."""

    def record(self, event: ServedEvent) -> None:
        """Take one event (may buffer it)."""

    def flush(self) -> None:
        """Persist every buffered event."""


class InMemorySink:
    """Keeps events in a list (tests, dry runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[ServedEvent] = []

    def record(self, event: ServedEvent) -> None:
        with self._lock:
            self._events.append(event)

    def flush(self) -> None:
        """Nothing to persist."""

    @property
    def events(self) -> tuple[ServedEvent, ...]:
        """Every event recorded so far, in order."""
        with self._lock:
            return tuple(self._events)


class DeltaServedSink:
    """Appends events to ``ab.served`` with ``deltalake.write_deltalake`` (no Spark).

    Each flush is one Delta commit (a blind append, which never conflicts with other writers).
    With ``batch_size`` 1 (default) every event is committed before ``record`` returns; a larger
    batch trades durability (buffered events are lost if the process dies before
    :meth:`flush`) for fewer, larger commits. Use as a context manager, or call :meth:`flush` at
    shutdown.
    """

    def __init__(
        self,
        warehouse_root: str,
        *,
        source: str = APP_SOURCE,
        batch_size: int = 1,
        storage_options: dict[str, str] | None = None,
    ) -> None:
        """Args:
        warehouse_root: Root of the warehouse (a path or URI delta-rs understands).
        source: ``ab.served.source`` of the rows, non-empty.
        batch_size: Events buffered before a commit, >= 1.
        storage_options: Passed to delta-rs (object-store credentials).
        """
        if not isinstance(source, str) or not source.strip():
            raise ValueError(f"source: expected a non-empty string, got {source!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: must be an int >= 1, got {batch_size!r}")
        self.location = AB_SERVED.location(warehouse_root)
        self.source = source
        self.batch_size = batch_size
        self._storage_options = storage_options
        self._lock = threading.Lock()
        self._buffer: list[ServedEvent] = []

    def record(self, event: ServedEvent) -> None:
        with self._lock:
            self._buffer.append(event)
            if len(self._buffer) >= self.batch_size:
                self._write_locked()

    def flush(self) -> None:
        with self._lock:
            self._write_locked()

    def _write_locked(self) -> None:
        if not self._buffer:
            return
        from deltalake import write_deltalake

        batch, self._buffer = self._buffer, []
        try:
            write_deltalake(
                self.location,
                events_table(batch, self.source),
                mode="append",
                partition_by=[Col.DS, Col.SOURCE],
                storage_options=self._storage_options,
            )
        except Exception:
            # Keep the events for the next try, but never more than MAX_PENDING (oldest dropped).
            self._buffer = (batch + self._buffer)[-MAX_PENDING:]
            raise

    def __enter__(self) -> DeltaServedSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.flush()
