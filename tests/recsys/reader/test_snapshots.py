"""The reader serves only completed days of serve.recommendations (delta-rs only, no Spark).

``ops.completed_runs`` is written here with delta-rs, key columns only (what the reader reads);
``tests/recsys/warehouse/test_completion.py`` reads a Spark-written one with the same reader.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pyarrow as pa
import pytest

from recsys.reader import InMemorySink, Reader
from recsys.reader.snapshots import CompletionGate, read_completed_days
from recsys.warehouse.completion import Pipeline, newest_allowed_day
from recsys.warehouse.tables import OPS_COMPLETED_RUNS, SERVE_RECOMMENDATIONS, Col

D1, D2, D3 = date(2031, 3, 1), date(2031, 3, 2), date(2031, 3, 3)


def complete(root: str, pipeline: str, ds: date, source: str | None = None) -> None:
    """Append one completion record (one commit), as a finished run does last."""
    from deltalake import write_deltalake

    table = pa.table(
        {
            Col.PIPELINE: pa.array([pipeline], pa.string()),
            Col.SOURCE: pa.array([source], pa.string()),
            Col.RUN_ID: pa.array([f"run-{ds}"], pa.string()),
            Col.DS: pa.array([ds], pa.date32()),
        }
    )
    write_deltalake(OPS_COMPLETED_RUNS.location(root), table, mode="append", partition_by=[Col.DS])


@pytest.fixture
def two_days(rs_warehouse: Any, rows: dict[str, Callable[..., Any]]) -> Any:
    """D1 and D2 published (D1's explanations start with "old ")."""
    rs_warehouse.publish(SERVE_RECOMMENDATIONS, rows["recommendations"](D1, [1], tag="old "), D1)
    rs_warehouse.publish(SERVE_RECOMMENDATIONS, rows["recommendations"](D2, [1]), D2)
    return rs_warehouse


def reader(root: str) -> Reader:
    return Reader(root, sink=InMemorySink(), refresh_interval_s=0)


def test_without_completion_records_the_newest_day_is_served(two_days: Any) -> None:
    # An older warehouse: no ops.completed_runs at all.
    assert reader(two_days.root).recommendations_for(1).ds == D2
    # The table exists but has no record of recsys_daily (only ingest): still every day counts.
    complete(two_days.root, Pipeline.INGEST, D2, "ml-1m")
    assert reader(two_days.root).recommendations_for(1).ds == D2


def test_only_completed_days_are_served(two_days: Any, rows: dict[str, Any]) -> None:
    complete(two_days.root, Pipeline.RECSYS_DAILY, D1)
    complete(two_days.root, Pipeline.INGEST, D2, "ml-1m")  # another pipeline's record: no effect
    r = reader(two_days.root)
    got = r.recommendations_for(1)
    # D2 is published, but its run has not completed: the previous completed day, whole.
    assert (got.ds, got.items[0].reason) == (D1, "old because model 1")
    # The run completes: the next check serves D2, though serve.recommendations did not change.
    complete(two_days.root, Pipeline.RECSYS_DAILY, D2)
    assert r.recommendations_for(1).ds == D2
    # A day published later without completing is not served; a completed backfill of an
    # older day does not move the reader back.
    two_days.publish(SERVE_RECOMMENDATIONS, rows["recommendations"](D3, [1]), D3)
    complete(two_days.root, Pipeline.RECSYS_DAILY, date(2031, 2, 1))
    assert r.recommendations_for(1).ds == D2


def test_no_completed_day_in_the_table_serves_the_fallback(two_days: Any) -> None:
    complete(two_days.root, Pipeline.RECSYS_DAILY, date(2031, 1, 1))  # vacuumed long ago
    got = reader(two_days.root).recommendations_for(1)
    assert (got.ds, got.is_fallback) == (None, True)


def test_gate_reads_only_on_new_versions(rs_warehouse: Any) -> None:
    location = OPS_COMPLETED_RUNS.location(rs_warehouse.root)
    gate = CompletionGate(location, Pipeline.RECSYS_DAILY)
    assert gate.current() == (None, None)  # no table yet
    complete(rs_warehouse.root, Pipeline.RECSYS_DAILY, D1)
    assert gate.current() == (0, frozenset({D1}))
    complete(rs_warehouse.root, Pipeline.RECSYS_DAILY, D2)
    assert gate.current() == (1, frozenset({D1, D2}))
    from deltalake import DeltaTable

    assert read_completed_days(DeltaTable(location), Pipeline.INGEST) is None
    with pytest.raises(ValueError, match="pipeline"):
        CompletionGate(location, "recsys_daily' OR 1=1 --")


def test_newest_allowed_day() -> None:
    days = [D1, D3, D2]
    assert newest_allowed_day(days, None) == D3
    assert newest_allowed_day(days, frozenset({D1, D2})) == D2
    assert newest_allowed_day(days, frozenset()) is None
    assert newest_allowed_day([], None) is None
