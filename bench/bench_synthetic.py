"""Benchmark the synthetic generator: generate + write one delivery into a throw-away warehouse.

Usage::

    python bench/bench_synthetic.py                       # quick: 100k users x 10k items x 5M
    python bench/bench_synthetic.py --users 1000000 --items 100000 --interactions 50000000

Prints ONE JSON line on stdout (logs go to stderr): sizes, delivered interactions, seconds to
generate and write the three bronze tables (Spark start-up and table creation excluded), rows
per second, and the peak resident memory of the driver JVM and of this Python process, in MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # python bench/bench_synthetic.py: the repository root first
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _measure


def _size_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--interactions", type=int, default=5_000_000, help="draws")
    parser.add_argument("--partitions", type=int, help="default: the job's (1 per 1M draws)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--driver-memory", help="driver JVM heap, e.g. 6g (default: settings)")
    parser.add_argument("--csv", action="store_true", help="also write the MovieLens CSVs")
    parser.add_argument("--tmp-dir", type=Path, help="parent of the throw-away warehouse")
    parser.add_argument("--keep", action="store_true", help="keep the warehouse, print its path")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-synthetic-", dir=args.tmp_dir))
    os.environ["RECSYS_WAREHOUSE"] = str(root)
    os.environ.setdefault("RECSYS_SPARK_UI", "false")
    if args.driver_memory:
        os.environ["RECSYS_DRIVER_MEMORY"] = args.driver_memory
    from jobs.common import configure_logging
    from jobs.generate_synthetic import generate
    from jobs.generate_synthetic import parse_args as job_args
    from recsys.settings import load_settings
    from recsys.warehouse.catalog import apply_ddl
    from recsys.warehouse.session import build_spark

    configure_logging()
    ds = datetime.now(UTC).date().isoformat()
    flags = [
        "--users",
        str(args.users),
        "--items",
        str(args.items),
        "--interactions",
        str(args.interactions),
        "--seed",
        str(args.seed),
        "--ds",
        ds,
        "--run-id",
        "bench",
    ]
    if args.partitions:
        flags += ["--partitions", str(args.partitions)]
    if args.csv:
        flags += ["--csv-out", str(root / "csv")]
    job = job_args(flags)
    settings = load_settings()
    started = time.perf_counter()
    spark = build_spark(settings, app_name="bench_synthetic", attach=False)
    apply_ddl(spark, settings.warehouse_root)
    spark_start_s = time.perf_counter() - started
    try:
        t0 = time.perf_counter()
        out = generate(spark, job)
        seconds = time.perf_counter() - t0
        jvm = _measure.jvm_pid(spark)
        record = {
            "bench": "synthetic",
            "users": args.users,
            "items": args.items,
            "draws": args.interactions,
            "interactions": out.n_interactions,
            "kept_fraction": round(out.n_interactions / args.interactions, 4),
            "partitions": job.synthetic.partitions,
            "csv": args.csv,
            "seconds": round(seconds, 1),
            "rows_per_s": round(out.n_interactions / seconds),
            "draws_per_s": round(args.interactions / seconds),
            "spark_start_s": round(spark_start_s, 1),
            "peak_driver_rss_mib": _measure.jvm_peak_rss_mib(jvm),
            "peak_python_rss_mib": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
            "driver_memory": settings.driver_memory,
            "cores": os.cpu_count(),
            "warehouse_mib": round(_size_bytes(root) / 2**20, 1),
        }
        if args.keep:
            record["warehouse"] = str(root)
        print(json.dumps(record), flush=True)
    finally:
        spark.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
