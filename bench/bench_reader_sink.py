"""Benchmark the app-side reader's served-event sinks: per-call latency of
``Reader.recommendations_for`` and what each sink writes to ``ab.served``.

Usage::

    python -m bench.bench_reader_sink                      # 2000 calls at 250/s, 201 sync calls
    python -m bench.bench_reader_sink --calls 5000 --rate 500 --sync-calls 0

A throw-away warehouse (delta-rs only, no Spark) holds one published day of
``serve.recommendations`` (``--users`` users, 10 items each) and ``serve.trending``. Arms, each
with its own reader (snapshots loaded and 50 warm-up calls made before timing):

- ``memory``: :class:`recsys.reader.InMemorySink` (nothing persisted): the floor;
- ``default``: the reader's default sink (:class:`recsys.reader.sinks.DeltaServedSink`, batched
  off the request path, default flush interval and batch size), closed at the end;
- ``sync_per_call``: one Delta commit per call in the request thread, as the sink did before it
  was batched (``--sync-calls``; 0 skips it).

Calls are paced at ``--rate`` per second (the pause between calls is not timed) so the default
sink's flusher commits while calls are being served; users are drawn with a fixed seed, 5%
unknown (served the trending fallback, still recorded). Prints ONE JSON line on stdout: per arm
the p50/p99/max/mean milliseconds per call, and for the Delta arms the commits, data files and
log entries written and the rows in ``ab.served``; the p99 goal (< 1 ms with the default sink);
the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

GOAL_P99_MS = 1.0
WARM_UP_CALLS = 50
DAY = date(2031, 1, 15)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_reader_sink", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per batched arm")
    parser.add_argument("--rate", type=float, default=250.0, help="calls per second")
    parser.add_argument("--sync-calls", type=int, default=201, help="calls of sync_per_call")
    parser.add_argument("--users", type=int, default=1000, help="users published")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.rate <= 0 or args.sync_calls < 0 or args.users < 1:
        parser.error("--calls, --rate and --users must be > 0, --sync-calls >= 0")
    return args


def publish(root: str, users: int) -> None:
    """One day of recommendations and trending, written with delta-rs."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from recsys.warehouse.tables import (
        SERVE_RECOMMENDATIONS,
        SERVE_TRENDING,
        TRENDING_ALL_GENRES,
        Col,
        RecSet,
    )

    n = 10
    user_col = [u for u in range(1, users + 1) for _ in range(n)]
    ranks = list(range(1, n + 1)) * users
    recs = pa.table(
        {
            Col.REC_SET: pa.array([RecSet.MODEL] * len(ranks), pa.string()),
            Col.USER_ID: pa.array(user_col, pa.int64()),
            Col.RANK: pa.array(ranks, pa.int32()),
            Col.ITEM_ID: pa.array(
                [u * 100 + r for u, r in zip(user_col, ranks, strict=True)], pa.int64()
            ),
            Col.SCORE: pa.array([1.0 / r for r in ranks], pa.float32()),
            Col.EXPLANATION: pa.array(["Because you watched 1"] * len(ranks), pa.string()),
            Col.SOURCE: pa.array(["two_tower"] * len(ranks), pa.string()),
            Col.MODEL_VERSION: pa.array(["mv"] * len(ranks), pa.string()),
            Col.RUN_ID: pa.array(["bench"] * len(ranks), pa.string()),
            Col.DS: pa.array([DAY] * len(ranks), pa.date32()),
        }
    )
    write_deltalake(SERVE_RECOMMENDATIONS.location(root), recs, partition_by=[Col.DS])
    trending = pa.table(
        {
            Col.GENRE: pa.array([TRENDING_ALL_GENRES] * n, pa.string()),
            Col.RANK: pa.array(list(range(1, n + 1)), pa.int32()),
            Col.ITEM_ID: pa.array(list(range(1, n + 1)), pa.int64()),
            Col.SCORE: pa.array([float(n - r) for r in range(n)], pa.float64()),
            Col.RECENT_COUNT: pa.array([5.0] * n, pa.float64()),
            Col.BASELINE_COUNT: pa.array([1.0] * n, pa.float64()),
            Col.RUN_ID: pa.array(["bench"] * n, pa.string()),
            Col.DS: pa.array([DAY] * n, pa.date32()),
        }
    )
    write_deltalake(SERVE_TRENDING.location(root), trending, partition_by=[Col.DS])


class SyncPerCallSink:
    """One commit per event in the caller's thread, under a lock: the sink before batching."""

    def __init__(self, root: str) -> None:
        import threading

        from recsys.reader.sinks import APP_SOURCE, delta_writer
        from recsys.warehouse.tables import AB_SERVED

        self._write = delta_writer(AB_SERVED.location(root))
        self._source = APP_SOURCE
        self._lock = threading.Lock()

    def record(self, event: Any) -> None:
        from recsys.reader.sinks import events_table

        with self._lock:
            self._write(events_table([event], self._source))

    def flush(self) -> None:
        """Nothing buffered."""


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    k = max(0, min(len(sorted_ms) - 1, round(q / 100 * len(sorted_ms) + 0.5) - 1))
    return sorted_ms[k]


def timed_calls(reader: Any, calls: int, rate: float, users: int, seed: int) -> dict[str, Any]:
    """``calls`` paced calls; per-call milliseconds summarised."""
    rng = random.Random(seed)
    ids = [
        rng.randint(1, users) if rng.random() >= 0.05 else users + 1 + rng.randint(0, 99)
        for _ in range(calls + WARM_UP_CALLS)
    ]
    for u in ids[:WARM_UP_CALLS]:
        reader.recommendations_for(u)
    step = 1.0 / rate
    next_at = time.perf_counter()
    ms: list[float] = []
    for u in ids[WARM_UP_CALLS:]:
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        t0 = time.perf_counter_ns()
        reader.recommendations_for(u)
        ms.append((time.perf_counter_ns() - t0) / 1e6)
        next_at += step
    ms.sort()
    return {
        "calls": calls,
        "p50_ms": round(percentile(ms, 50), 4),
        "p99_ms": round(percentile(ms, 99), 4),
        "max_ms": round(ms[-1], 3),
        "mean_ms": round(sum(ms) / len(ms), 4),
    }


def written(root: str) -> dict[str, int]:
    """Commits, data files and log entries of ``ab.served``, and its rows."""
    from deltalake import DeltaTable

    from recsys.reader.snapshots import to_pyarrow
    from recsys.warehouse.tables import AB_SERVED

    location = AB_SERVED.location(root)
    if not Path(location).exists():
        return {"commits": 0, "data_files": 0, "log_entries": 0, "rows": 0}
    table = DeltaTable(location)
    logs = list((Path(location) / "_delta_log").glob("*.json"))
    adds = to_pyarrow(table.get_add_actions(flatten=True))
    return {
        "commits": table.version() + 1,
        "data_files": adds.num_rows,
        "log_entries": len(logs),
        "rows": sum(int(n) for n in adds.column("num_records").to_pylist()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from recsys.reader import InMemorySink, Reader

    base = Path(tempfile.mkdtemp(prefix="bench-reader-sink-"))
    record: dict[str, Any] = {"bench": "reader_sink", "load_avg_before": os.getloadavg()[0]}
    try:
        arms: dict[str, Any] = {}
        root = str(base / "memory")
        publish(root, args.users)
        with Reader(root, sink=InMemorySink()) as reader:
            arms["memory"] = timed_calls(reader, args.calls, args.rate, args.users, args.seed)

        root = str(base / "default")
        publish(root, args.users)
        reader = Reader(root)  # the default sink
        arms["default"] = timed_calls(reader, args.calls, args.rate, args.users, args.seed)
        t0 = time.perf_counter()
        reader.close()
        arms["default"]["close_s"] = round(time.perf_counter() - t0, 3)
        arms["default"].update(written(root))
        arms["default"]["recorded"] = args.calls + WARM_UP_CALLS

        if args.sync_calls:
            root = str(base / "sync")
            publish(root, args.users)
            with Reader(root, sink=SyncPerCallSink(root)) as reader:
                arms["sync_per_call"] = timed_calls(
                    reader, args.sync_calls, args.rate, args.users, args.seed
                )
            arms["sync_per_call"].update(written(root))
            arms["sync_per_call"]["recorded"] = args.sync_calls + WARM_UP_CALLS
        record.update(
            {
                "rate_per_s": args.rate,
                "users": args.users,
                "arms": arms,
                "goal_p99_ms": GOAL_P99_MS,
                "goal_met": arms["default"]["p99_ms"] < GOAL_P99_MS,
                "load_avg_after": os.getloadavg()[0],
                "cores": os.cpu_count(),
            }
        )
        print(json.dumps(record), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
