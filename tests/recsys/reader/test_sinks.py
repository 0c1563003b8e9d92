"""Served-event sinks without Spark: the ab.served format, batching, and failed writes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recsys.reader.sinks import SERVED_SCHEMA, DeltaServedSink, InMemorySink, ServedEvent
from recsys.reader.snapshots import to_pyarrow
from recsys.warehouse.tables import AB_SERVED, Col

T0 = datetime(2031, 5, 1, 23, 59, 59, tzinfo=UTC)


def event(unit: int, ts: datetime = T0, version: str | None = "mv") -> ServedEvent:
    return ServedEvent(str(unit), "home", ts, "model", (unit, unit + 1), version)


def test_delta_sink_batches_and_partitions(tmp_path: Path) -> None:
    from deltalake import DeltaTable

    root = str(tmp_path)
    with DeltaServedSink(root, batch_size=2) as sink:
        sink.record(event(1))
        assert not (tmp_path / "ab" / "served").exists()  # buffered
        sink.record(event(2, T0 + timedelta(seconds=2), None))  # next UTC day
        sink.record(event(3))
    table = DeltaTable(AB_SERVED.location(root))
    assert table.version() == 1  # two commits: a full batch, then the flush on exit
    assert table.metadata().partition_columns == [Col.DS, Col.SOURCE]
    rows = to_pyarrow(table.scan()).to_pylist()
    by_unit = {r[Col.UNIT_ID]: r for r in rows}
    assert by_unit["1"][Col.DS] == date(2031, 5, 1)
    assert by_unit["2"][Col.DS] == date(2031, 5, 2)
    assert by_unit["2"][Col.MODEL_VERSION] is None
    assert by_unit["3"][Col.ITEM_IDS] == [3, 4]
    assert {r[Col.SOURCE] for r in rows} == {"app"}
    assert by_unit["1"][Col.SERVED_TS] == T0


def test_failed_write_keeps_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import deltalake

    sink = DeltaServedSink(str(tmp_path), batch_size=1)
    real = deltalake.write_deltalake
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("object store unavailable")
        real(*args, **kwargs)

    monkeypatch.setattr(deltalake, "write_deltalake", flaky)
    with pytest.raises(OSError, match="unavailable"):
        sink.record(event(1))
    sink.record(event(2))  # writes both
    table = deltalake.DeltaTable(AB_SERVED.location(str(tmp_path)))
    assert sorted(r[Col.UNIT_ID] for r in to_pyarrow(table.scan()).to_pylist()) == ["1", "2"]


def test_schema_matches_ab_served_ddl() -> None:
    ddl = AB_SERVED.ddl_path.read_text()
    for field in SERVED_SCHEMA:
        assert f"  {field.name} " in ddl
        assert ("NOT NULL" in ddl.split(f"  {field.name} ")[1].split("\n")[0]) == (
            not field.nullable
        )


def test_event_checks_and_memory_sink() -> None:
    with pytest.raises(ValueError, match="served_ts"):
        ServedEvent("1", "home", datetime(2031, 1, 1), "model", (), None)
    with pytest.raises(ValueError, match="batch_size"):
        DeltaServedSink("/tmp/x", batch_size=0)
    with pytest.raises(ValueError, match="source"):
        DeltaServedSink("/tmp/x", source=" ")
    sink = InMemorySink()
    sink.record(event(5))
    sink.flush()
    assert sink.events == (event(5),)
