"""Benchmark a job's Spark start-up with and without the driver JVM's CDS archive.

Usage::

    python -m bench.bench_startup               # 3 rounds, archive from make setup
    python -m bench.bench_startup --rounds 5 --archive PATH

Each run is a fresh Python process doing what every job does before its own work: build the
session (JVM start, Delta's SQL extension), attach every warehouse table by name, and run one
action; it prints the seconds of each phase. Arms alternate within a round (``off`` then ``on``)
so that a change in the machine's load hits both. ``off`` sets ``RECSYS_CDS_ARCHIVE=none``;
``on`` uses the archive (:mod:`recsys.warehouse.cds`). The warehouse is a throw-away one with
every table created (set up once, untimed).

Prints ONE JSON line: per arm the median (and all) wall seconds of the process and of its
phases, the ratio on/off of the medians, and the 1-minute load average before and after.

Measured 2026-12-01 on the idle 2-core machine, 3 rounds: see README "Benchmarks".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from recsys.settings import DEFAULT_CDS_ARCHIVE

_PROBE = """
import json, time
t0 = time.perf_counter()
from recsys.warehouse.session import build_spark
t1 = time.perf_counter()
spark = build_spark(app_name="bench-startup", attach=True)
t2 = time.perf_counter()
spark.table("bronze.interactions").count()
t3 = time.perf_counter()
phases = {"import": t1 - t0, "session_attach": t2 - t1, "first_query": t3 - t2}
print("PHASES " + json.dumps(phases))
"""

_SETUP = """
from recsys.settings import load_settings
from recsys.warehouse.catalog import apply_ddl
from recsys.warehouse.session import build_spark
spark = build_spark(app_name="bench-startup-setup", attach=False)
apply_ddl(spark, load_settings().warehouse_root)
"""


def _run(code: str, env: dict[str, str]) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if res.returncode != 0:
        raise RuntimeError((res.stdout + res.stderr)[-3000:])
    phases: dict[str, float] = {}
    for line in res.stdout.splitlines():
        if line.startswith("PHASES "):
            phases = json.loads(line.removeprefix("PHASES "))
    return wall, phases


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its JSON line."""
    parser = argparse.ArgumentParser(prog="bench.bench_startup")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--archive", type=Path, default=DEFAULT_CDS_ARCHIVE)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        raise ValueError(f"--rounds: expected >= 1, got {args.rounds}")
    if not args.archive.is_file():
        print(f"no archive at {args.archive}: run `make setup`", file=sys.stderr)
        return 1
    root = tempfile.mkdtemp(prefix="bench-startup-")
    base = {
        **os.environ,
        "RECSYS_WAREHOUSE": root,
        "RECSYS_SPARK_UI": "false",
        "RECSYS_SPARK_MASTER": "local[2]",
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    _run(_SETUP, {**base, "RECSYS_CDS_ARCHIVE": "none"})
    arms = {
        "off": {**base, "RECSYS_CDS_ARCHIVE": "none"},
        "on": {**base, "RECSYS_CDS_ARCHIVE": str(args.archive)},
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in arms}
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
        for name, env in arms.items():
            wall, phases = _run(_PROBE, env)
            runs[name].append({"wall": wall, **phases})
    record: dict[str, Any] = {
        "bench": "startup",
        "rounds": args.rounds,
        "archive_mb": round(args.archive.stat().st_size / 2**20),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    for name, rows in runs.items():
        record[name] = {
            key: {
                "median_s": round(statistics.median(r[key] for r in rows), 2),
                "all_s": [round(r[key], 2) for r in rows],
            }
            for key in rows[0]
        }
    record["ratio_on_off"] = {
        key: round(record["on"][key]["median_s"] / record["off"][key]["median_s"], 3)
        for key in record["off"]
    }
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
