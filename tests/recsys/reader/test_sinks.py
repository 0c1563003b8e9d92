"""Served-event sinks without Spark: the ab.served format, batching off the request path, flush on
close and at exit, failed writes, several request threads, and the bounded buffer."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from recsys.reader import Reader
from recsys.reader.sinks import (
    DEFAULT_FLUSH_INTERVAL_S,
    SERVED_SCHEMA,
    DeltaServedSink,
    InMemorySink,
    ServedEvent,
)
from recsys.reader.snapshots import to_pyarrow
from recsys.warehouse.tables import AB_SERVED, Col

T0 = datetime(2031, 5, 1, 23, 59, 59, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]
LONG = 3600.0  # a flush interval no test waits for


def event(unit: int, ts: datetime = T0, version: str | None = "mv") -> ServedEvent:
    return ServedEvent(str(unit), "home", ts, "model", (unit, unit + 1), version)


class FakeWriter:
    """Collects batches; fails the first ``fail`` calls; can be held inside a write."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.calls = 0
        self.batches: list[pa.Table] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, batch: pa.Table) -> None:
        self.entered.set()
        self.release.wait(10)
        with self._lock:
            self.calls += 1
            if self.calls <= self.fail:
                raise OSError("object store unavailable")
            self.batches.append(batch)

    @property
    def units(self) -> list[str]:
        with self._lock:
            return [u for b in self.batches for u in b.column(Col.UNIT_ID).to_pylist()]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def served_rows(root: str) -> list[dict[str, Any]]:
    from deltalake import DeltaTable

    return list(to_pyarrow(DeltaTable(AB_SERVED.location(root)).scan()).to_pylist())


def commits(root: str) -> int:
    from deltalake import DeltaTable

    return DeltaTable(AB_SERVED.location(root)).version() + 1


def test_delta_sink_writes_ab_served_partitions_on_close(tmp_path: Path) -> None:
    root = str(tmp_path)
    with DeltaServedSink(root, flush_interval_s=LONG) as sink:
        sink.record(event(1))
        sink.record(event(2, T0 + timedelta(seconds=2), None))  # next UTC day
        sink.record(event(3))
        assert not (tmp_path / "ab" / "served").exists()  # buffered, nothing committed yet
        assert sink.stats().pending == 3
    from deltalake import DeltaTable

    table = DeltaTable(AB_SERVED.location(root))
    assert table.version() == 0  # one commit for the three events, on close
    assert table.metadata().partition_columns == [Col.DS, Col.SOURCE]
    by_unit = {r[Col.UNIT_ID]: r for r in served_rows(root)}
    assert by_unit["1"][Col.DS] == date(2031, 5, 1)
    assert by_unit["2"][Col.DS] == date(2031, 5, 2)
    assert by_unit["2"][Col.MODEL_VERSION] is None
    assert by_unit["3"][Col.ITEM_IDS] == [3, 4]
    assert {r[Col.SOURCE] for r in by_unit.values()} == {"app"}
    assert by_unit["1"][Col.SERVED_TS] == T0
    assert sink.stats() == type(sink.stats())(0, 3, 1, 0, 0)


def test_reader_calls_are_batched_into_few_commits(tmp_path: Path) -> None:
    root = str(tmp_path)
    sink = DeltaServedSink(root, flush_interval_s=LONG, max_batch=100)
    with Reader(root, sink=sink) as reader:
        for user in range(201):
            reader.recommendations_for(user, n=3)  # empty warehouse: fallbacks, still logged
    sink.close()
    assert len(served_rows(root)) == 201
    # max_batch wakes the flusher twice at most, then close writes the rest.
    assert commits(root) <= 3
    assert sink.stats().written == 201


def test_default_sink_of_the_reader_is_closed_with_it(tmp_path: Path) -> None:
    root = str(tmp_path)
    with Reader(root) as reader:
        sink = reader._sink
        assert isinstance(sink, DeltaServedSink)
        assert sink.flush_interval_s == DEFAULT_FLUSH_INTERVAL_S
        for user in range(5):
            reader.recommendations_for(user)
    assert len(served_rows(root)) == 5
    assert sink.stats().pending == 0
    n = commits(root)
    assert n <= 2  # the close, and at most one periodic flush on a slow machine
    reader.close()  # idempotent
    assert commits(root) == n
    reader.recommendations_for(9)  # after close: served, the event dropped and counted
    assert sink.stats().dropped == 1


def test_a_sink_passed_in_is_flushed_not_closed(tmp_path: Path) -> None:
    writer = FakeWriter()
    sink = DeltaServedSink(str(tmp_path), flush_interval_s=LONG, writer=writer)
    with Reader(str(tmp_path), sink=sink) as reader:
        reader.recommendations_for(1)
    assert writer.units == ["1"]
    reader.recommendations_for(2)  # the caller's sink still takes events
    sink.close()
    assert writer.units == ["1", "2"]


def test_flusher_commits_every_interval_without_a_flush_call() -> None:
    writer = FakeWriter()
    sink = DeltaServedSink("/unused", flush_interval_s=0.05, writer=writer)
    sink.record(event(1))
    sink.record(event(2))
    wait_for(lambda: writer.units == ["1", "2"])
    sink.record(event(3))
    wait_for(lambda: writer.units == ["1", "2", "3"])
    assert sink.stats().commits == 2
    sink.close()
    assert writer.calls == 2  # nothing left to write on close


def test_max_batch_triggers_a_commit_before_the_interval() -> None:
    writer = FakeWriter()
    sink = DeltaServedSink("/unused", flush_interval_s=LONG, max_batch=4, writer=writer)
    for u in range(3):
        sink.record(event(u))
    time.sleep(0.2)
    assert writer.calls == 0
    sink.record(event(3))
    wait_for(lambda: writer.calls == 1)
    assert writer.units == ["0", "1", "2", "3"]
    sink.close()


def test_no_event_is_lost_across_failing_writes(caplog: pytest.LogCaptureFixture) -> None:
    writer = FakeWriter(fail=2)
    sink = DeltaServedSink("/unused", flush_interval_s=0.02, writer=writer)
    import recsys.reader.sinks as sinks

    with caplog.at_level(logging.ERROR, logger=sinks.__name__):
        for u in range(10):
            sink.record(event(u))
        wait_for(lambda: writer.calls >= 1)
        for u in range(10, 20):
            sink.record(event(u))  # recorded while the first write failed
        # Two failures: retries after 1 s then 2 s of back-off; then one batch with all 20.
        wait_for(lambda: sink.stats().written == 20, timeout=15)
    assert writer.units == [str(u) for u in range(20)]  # in order, once each
    assert sink.stats().failed_writes == 2
    assert "write failed" in caplog.text
    sink.close()


def test_flush_and_close_raise_and_keep_events_when_the_write_fails() -> None:
    writer = FakeWriter(fail=2)
    sink = DeltaServedSink("/unused", flush_interval_s=LONG, writer=writer)
    sink.record(event(1))
    with pytest.raises(OSError, match="unavailable"):
        sink.flush()
    sink.record(event(2))
    with pytest.raises(OSError, match="unavailable"):
        sink.close()
    assert sink.stats().pending == 2
    sink.flush()  # the owner may still write them after a failed close
    assert writer.units == ["1", "2"]
    sink.record(event(3))  # after close: dropped, counted
    assert sink.stats().dropped == 1


def test_several_request_threads_lose_and_duplicate_nothing() -> None:
    writer = FakeWriter()
    sink = DeltaServedSink("/unused", flush_interval_s=0.01, max_batch=50, writer=writer)
    n_threads, per_thread = 8, 500
    start = threading.Barrier(n_threads)

    def serve(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            sink.record(event(t * per_thread + i))

    threads = [threading.Thread(target=serve, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    sink.close()
    units = writer.units
    assert len(units) == n_threads * per_thread
    assert set(units) == {str(u) for u in range(n_threads * per_thread)}
    for t in range(n_threads):  # each thread's events keep their order
        mine = [int(u) for u in units if int(u) // per_thread == t]
        assert mine == sorted(mine)
    assert sink.stats().commits == len(writer.batches) < n_threads * per_thread // 10


def test_a_full_buffer_drops_new_events_without_blocking(caplog: pytest.LogCaptureFixture) -> None:
    writer = FakeWriter()
    writer.release.clear()  # the first write hangs until released
    sink = DeltaServedSink(
        "/unused", flush_interval_s=LONG, max_batch=4, max_pending=10, writer=writer
    )
    for u in range(4):
        sink.record(event(u))
    assert writer.entered.wait(5)  # the flusher holds 4 events in a stuck write
    started = time.perf_counter()
    for u in range(4, 20):
        sink.record(event(u))
    assert time.perf_counter() - started < 0.5  # the request path never waited for the write
    stats = sink.stats()
    assert (stats.pending, stats.dropped) == (10, 10)
    writer.release.set()
    import recsys.reader.sinks as sinks

    with caplog.at_level(logging.WARNING, logger=sinks.__name__):
        sink.close()
    assert writer.units == [str(u) for u in range(10)]  # the oldest are kept
    assert "10 served events dropped" in caplog.text


def test_unclosed_sink_is_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    code = (
        "from datetime import UTC, datetime\n"
        "from recsys.reader.sinks import DeltaServedSink, ServedEvent\n"
        f"sink = DeltaServedSink({str(tmp_path)!r}, flush_interval_s=3600)\n"
        "for u in range(3):\n"
        "    sink.record(ServedEvent(str(u), 'home', datetime.now(UTC), 'model', (u,), None))\n"
    )  # no close(): atexit writes the buffer
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stderr
    assert sorted(r[Col.UNIT_ID] for r in served_rows(str(tmp_path))) == ["0", "1", "2"]


def test_failed_delta_write_keeps_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import deltalake

    sink = DeltaServedSink(str(tmp_path), flush_interval_s=LONG)
    real = deltalake.write_deltalake
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("object store unavailable")
        real(*args, **kwargs)

    monkeypatch.setattr(deltalake, "write_deltalake", flaky)
    sink.record(event(1))
    with pytest.raises(OSError, match="unavailable"):
        sink.flush()
    sink.record(event(2))
    sink.close()  # writes both
    assert sorted(r[Col.UNIT_ID] for r in served_rows(str(tmp_path))) == ["1", "2"]


def test_schema_matches_ab_served_ddl() -> None:
    ddl = AB_SERVED.ddl_path.read_text()
    for field in SERVED_SCHEMA:
        assert f"  {field.name} " in ddl
        assert ("NOT NULL" in ddl.split(f"  {field.name} ")[1].split("\n")[0]) == (
            not field.nullable
        )


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"source": " "}, "source"),
        ({"flush_interval_s": 0}, "flush_interval_s"),
        ({"flush_interval_s": float("nan")}, "flush_interval_s"),
        ({"flush_interval_s": True}, "flush_interval_s"),
        ({"max_batch": 0}, "max_batch"),
        ({"max_pending": 0}, "max_pending"),
        ({"max_batch": 10, "max_pending": 5}, "max_pending"),
    ],
)
def test_sink_argument_checks(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        DeltaServedSink("/tmp/x", **kwargs)


def test_event_checks_and_memory_sink() -> None:
    with pytest.raises(ValueError, match="served_ts"):
        ServedEvent("1", "home", datetime(2031, 1, 1), "model", (), None)
    with pytest.raises(TypeError, match="writer"):
        DeltaServedSink("/tmp/x", writer="not callable")  # type: ignore[arg-type]
    with InMemorySink() as sink:
        sink.record(event(5))
        sink.flush()
    assert sink.events == (event(5),)
