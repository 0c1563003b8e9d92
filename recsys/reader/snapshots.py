"""The newest published day of a Delta table, read once with delta-rs and kept in memory.

A :class:`TableCache` holds one immutable snapshot: the rows of the newest ``ds`` at one Delta
version, indexed for lookups. At most every ``refresh_interval_s`` seconds one caller checks the
table's version (a read of the newest log entries, no data); only when a newer version was
committed does it read the newest day again, from that version, and swap the snapshot in. A
publish is one Delta commit, so a snapshot is always one whole day of one version: readers see
the old day or the new one, never a mix. While one thread reloads, the others keep serving the
old snapshot.

**Completed days only.** A cache given a :class:`CompletionGate` (``serve.recommendations`` in
:class:`recsys.reader.Reader`) serves the newest day that also has a completion record of its
pipeline in ``ops.completed_runs`` (:mod:`recsys.warehouse.completion`): a day published by a run
that has not finished (or was killed after the publish commit) is not served; the previous
completed day is. A new completion record triggers a reload as a new table version does. When
``ops.completed_runs`` is absent, or holds no record of the pipeline at all (a warehouse set up
before completion records), every day counts, as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from recsys.warehouse.completion import KEY_COLUMNS, Pipeline, check_pipeline, newest_allowed_day
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from deltalake import DeltaTable

log = logging.getLogger(__name__)

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Loaded:
    """Rows of the newest day of a table at one version."""

    table: pa.Table
    ds: date
    version: int


def read_newest_day(
    table: DeltaTable, columns: Sequence[str], allowed: frozenset[date] | None = None
) -> Loaded | None:
    """The rows of the newest ``ds`` of ``table`` at its current version, or None when it has
    none. The day and its rows come from that one version.

    Args:
        table: The Delta table.
        columns: Columns to read.
        allowed: Only these days may be chosen (the completed ones); None: any day.
    """
    days = {p[Col.DS] for p in table.partitions() if p.get(Col.DS) is not None}
    newest = newest_allowed_day((date.fromisoformat(d) for d in days), allowed)
    if newest is None:
        return None
    # DataFusion scan of exactly that day at the table's loaded version (handles deletion vectors
    # and column mapping); the predicate is built from a date, never from caller text.
    reader = table.scan(columns=list(columns), predicate=f"{Col.DS} = '{newest.isoformat()}'")
    rows = to_pyarrow(reader)
    return Loaded(rows, newest, table.version())


def read_completed_days(table: DeltaTable, pipeline: Pipeline | str) -> frozenset[date] | None:
    """Days with a completion record of ``pipeline`` in ``ops.completed_runs`` (``table``, at its
    loaded version; any source), or None when it holds no record of the pipeline at all (every day
    counts: see :mod:`recsys.warehouse.completion`). Reads only the key columns."""
    name = check_pipeline(pipeline)
    # The predicate is built from an enum value, never from caller text.
    reader = table.scan(columns=list(KEY_COLUMNS), predicate=f"{Col.PIPELINE} = '{name.value}'")
    rows = to_pyarrow(reader)
    if rows.num_rows == 0:
        return None
    return frozenset(d for d in rows.column(Col.DS).to_pylist() if d is not None)


class CompletionGate:
    """The completed days of one pipeline, read with delta-rs from ``ops.completed_runs`` and
    re-read only when that table has a new version. Not thread-safe: a :class:`TableCache` calls
    it under its lock.

    Args:
        location: Location of ``ops.completed_runs``.
        pipeline: Whose records count (e.g. :attr:`Pipeline.RECSYS_DAILY`).
        storage_options: Passed to delta-rs.
    """

    def __init__(
        self,
        location: str,
        pipeline: Pipeline | str,
        storage_options: dict[str, str] | None = None,
    ) -> None:
        self.location = location
        self.pipeline = check_pipeline(pipeline)
        self._storage_options = storage_options
        self._table: DeltaTable | None = None
        self._version: int | None = None
        self._allowed: frozenset[date] | None = None

    def current(self) -> tuple[int | None, frozenset[date] | None]:
        """``(version, allowed days)``: the table's version (None while it does not exist) and
        the completed days (None: completion not tracked, every day counts)."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        if self._table is None:
            try:
                self._table = DeltaTable(self.location, storage_options=self._storage_options)
            except TableNotFoundError:
                return None, None  # an older warehouse: looked for again at the next check
        else:
            self._table.update_incremental()
        version = self._table.version()
        if version != self._version:
            self._allowed = read_completed_days(self._table, self.pipeline)
            self._version = version
        return self._version, self._allowed


def to_pyarrow(stream: Any) -> pa.Table:
    """An Arrow stream from delta-rs as a pyarrow table.

    DataFusion returns strings and binaries as view types, which pyarrow 14 (pinned for
    petastorm) cannot import; they are cast to plain ``string``/``binary`` with arro3 first.
    """
    import arro3.core as a3

    table = a3.Table.from_arrow(stream)
    columns: dict[str, Any] = {}
    for name in table.column_names:
        column = table.column(name)
        if a3.DataType.is_string_view(column.type):
            column = column.cast(a3.DataType.string())
        elif a3.DataType.is_binary_view(column.type):
            column = column.cast(a3.DataType.binary())
        columns[name] = column
    return pa.table(a3.Table.from_pydict(columns) if columns else table)


class TableCache(Generic[S]):
    """A snapshot ``S`` built from the newest day of one table, refreshed on new versions.

    Args:
        location: The Delta table's location.
        columns: Columns to read.
        build: Turns the rows of one day into the snapshot (indexes them); must not keep
            references that change later.
        refresh_interval_s: Minimum seconds between version checks, >= 0 (0: every call).
        clock: Monotonic seconds (tests pass a fake).
        storage_options: Passed to delta-rs.
        completion: Serve only days this gate says are complete; None: any day.
    """

    def __init__(
        self,
        location: str,
        columns: Sequence[str],
        build: Callable[[Loaded], S],
        refresh_interval_s: float,
        clock: Callable[[], float],
        storage_options: dict[str, str] | None = None,
        completion: CompletionGate | None = None,
    ) -> None:
        self.location = location
        self._columns = tuple(columns)
        self._build = build
        self._interval = refresh_interval_s
        self._clock = clock
        self._storage_options = storage_options
        self._lock = threading.Lock()
        self._table: DeltaTable | None = None  # opened lazily
        self._snapshot: S | None = None
        self._version: int | None = None
        self._completion = completion
        self._completion_version: int | None = None
        self._checked_at: float | None = None

    def get(self) -> S | None:
        """The current snapshot (None while nothing is published); checks for a newer version
        when the interval has passed. Never raises: a failed check keeps the old snapshot."""
        now = self._clock()
        due = self._checked_at is None or now - self._checked_at >= self._interval
        if due:
            # A thread that finds another one reloading serves the old snapshot meanwhile.
            blocking = self._snapshot is None
            if self._lock.acquire(blocking=blocking):
                try:
                    if self._checked_at is None or now - self._checked_at >= self._interval:
                        self._refresh_locked()
                        self._checked_at = now
                finally:
                    self._lock.release()
        return self._snapshot

    def refresh(self) -> None:
        """Check for a newer version now, whatever the interval."""
        with self._lock:
            self._refresh_locked()
            self._checked_at = self._clock()

    def _open(self) -> DeltaTable | None:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        if self._table is None:
            try:
                self._table = DeltaTable(self.location, storage_options=self._storage_options)
            except TableNotFoundError:
                return None
        else:
            self._table.update_incremental()
        return self._table

    def _refresh_locked(self) -> None:
        try:
            table = self._open()
            if table is None:
                return
            gate_version, allowed = (
                (None, None) if self._completion is None else self._completion.current()
            )
            if (table.version(), gate_version) == (self._version, self._completion_version):
                return
            loaded = read_newest_day(table, self._columns, allowed)
            self._version, self._completion_version = table.version(), gate_version
            if loaded is None:
                return
            self._snapshot = self._build(loaded)
            log.info("%s: serving ds=%s (version %d)", self.location, loaded.ds, loaded.version)
        except Exception:  # a reader must keep serving; the next check retries
            log.exception("%s: refresh failed, keeping version %s", self.location, self._version)


IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Groups:
    """Row ranges of a table sorted by one integer key: rows ``starts[i]:ends[i]`` hold
    ``keys[i]``."""

    keys: IntArray
    starts: IntArray
    ends: IntArray

    @classmethod
    def of_sorted(cls, keys: npt.ArrayLike) -> Groups:
        """Groups of an already sorted key column."""
        arr = np.asarray(keys, dtype=np.int64)
        if arr.size == 0:
            empty = np.empty(0, dtype=np.int64)
            return cls(empty, empty, empty)
        change = np.flatnonzero(arr[1:] != arr[:-1]) + 1
        starts = np.concatenate([[0], change]).astype(np.int64)
        ends = np.concatenate([change, [arr.size]]).astype(np.int64)
        return cls(arr[starts], starts, ends)

    def find(self, key: int) -> tuple[int, int] | None:
        """``(start, end)`` of ``key``'s rows, or None when absent."""
        i = int(np.searchsorted(self.keys, key))
        if i < self.keys.size and int(self.keys[i]) == key:
            return int(self.starts[i]), int(self.ends[i])
        return None
