"""One harness for the Spark scoring benchmarks: temp warehouse, session, meter, one JSON line.

Each benchmark supplies its parsed arguments (``tmp_dir`` and ``keep`` are read here) and a
``run(spark, args, root, meter)`` generator of ``(key, value)`` figures; :func:`spark_bench`
starts the session with the UI off in a throw-away warehouse, adds the process-wide figures
(lifetime peak RSS of the JVM and of the Python driver, JVM heap, load averages) and prints the
whole record as ONE JSON line on stdout.

The end-to-end benchmarks that run the real jobs (``replay_power``, ``validate_ab_pipeline``)
use its parts: :func:`warehouse_spark` (the throw-away warehouse and session) and
:func:`finish_timed` (wall time, load, the text table on stderr and the JSON line).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from bench import _arrow, _measure

log = logging.getLogger("bench")

Run = Callable[[Any, Any, Path, _measure.Meter], Iterator[tuple[str, Any]]]


def add_args(parser: argparse.ArgumentParser, single_process: str | None = None) -> None:
    """The harness's options, ``--tmp-dir`` and ``--keep`` (read by :func:`spark_bench`); with
    ``single_process`` (the names of the benchmark's single-process arms) also ``--repeat`` and
    ``--torch-threads``."""
    if single_process is not None:
        parser.add_argument(
            "--repeat", type=int, default=1, help="timed runs per arm; fastest kept"
        )
        parser.add_argument(
            "--torch-threads",
            type=int,
            default=0,
            help=f"threads of the single-process arms ({single_process}); 0 = the library "
            "default (cores)",
        )
    parser.add_argument("--tmp-dir", type=Path, help="parent of the throw-away directory")
    parser.add_argument("--keep", action="store_true", help="keep the data, print its path")


def add_work_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir`` and ``--keep``: where :func:`warehouse_spark` puts its throw-away
    warehouse and whether it stays, for the benchmarks that run the real jobs."""
    parser.add_argument("--work-dir", type=Path, help="parent of the throw-away warehouse")
    parser.add_argument("--keep", action="store_true", help="keep the warehouse and the report")


@contextlib.contextmanager
def warehouse_spark(
    prefix: str, parent: Path | None, keep: bool, app_name: str
) -> Iterator[tuple[Any, Any, Path]]:
    """A throw-away directory (``prefix`` + random, under ``parent`` or the system temp) whose
    ``warehouse`` is the session's, logging configured and a Spark session with the UI off.

    Yields ``(spark, settings, root)``; on exit the session stops and ``root`` is removed
    unless ``keep`` (then its path is logged).
    """
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.environ["RECSYS_WAREHOUSE"] = str(root / "warehouse")
    os.environ.setdefault("RECSYS_SPARK_UI", "false")
    from jobs.common import configure_logging
    from recsys.settings import load_settings
    from recsys.warehouse.session import build_spark

    configure_logging()
    settings = load_settings()
    spark = build_spark(settings, app_name=app_name, attach=False)
    try:
        yield spark, settings, root
    finally:
        spark.stop()
        if keep:
            log.info("kept %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)


def print_record(record: Mapping[str, Any], table: str | None = None) -> None:
    """The benchmark's output: ``table`` (if any) on stderr, then ``record`` as ONE JSON line
    on stdout (values JSON does not know, e.g. dates, as their ``str``)."""
    if table is not None:
        print(table, file=sys.stderr, flush=True)
    print(json.dumps(record, default=str), flush=True)


def finish_timed(
    record: dict[str, Any], started: float, load_1m: list[float], table: Callable[[Any], str]
) -> None:
    """Add the run's wall seconds since ``started`` (``time.perf_counter``), the cores and the
    1-minute load averages sampled during it to ``record``, then :func:`print_record` it with
    ``table(record)``."""
    record["seconds"] = round(time.perf_counter() - started, 1)
    record["cores"] = os.cpu_count()
    record["loadavg_1m"] = [round(x, 2) for x in load_1m]
    print_record(record, table(record))


def spark_bench(
    name: str,
    args: Any,
    run: Run,
    module: str,
    extra: Callable[[], Mapping[str, Any]] | None = None,
) -> int:
    """Run one benchmark invocation and print its JSON line; returns the exit status 0.

    Args:
        name: The ``bench`` field and the prefix of the temp directory and the Spark app name.
        args: Parsed arguments with ``tmp_dir`` (str | None) and ``keep`` (bool).
        run: Yields the benchmark's figures.
        module: The benchmark's module name, shipped by value to the Python workers.
        extra: More process-wide figures, taken after ``run``.
    """
    _arrow.ship_by_value(_arrow, sys.modules[module])
    meter = _measure.Meter()
    try:
        session = warehouse_spark(f"bench-{name}-", args.tmp_dir, args.keep, f"bench_{name}")
        with session as (spark, settings, root):
            record: dict[str, Any] = {"bench": name, "load_avg_start": _measure.load_average()}
            record.update(run(spark, args, root, meter))
            jvm = _measure.jvm_pid(spark)
            record["peak_rss_mib_jvm_lifetime"] = _measure.jvm_peak_rss_mib(jvm)
            record["peak_rss_mib_driver_py_lifetime"] = _measure.python_peak_rss_mib()
            record["jvm_heap_mib_end"] = _measure.jvm_heap_mib(spark)
            record["driver_memory"] = settings.driver_memory
            if extra is not None:
                record.update(extra())
            record["cores"] = os.cpu_count()
            record["load_avg_end"] = _measure.load_average()
            if args.keep:
                record["data"] = str(root)
            print_record(record)
    finally:
        meter.close()
    return 0
