"""One harness for the Spark scoring benchmarks: temp warehouse, session, meter, one JSON line.

Each benchmark supplies its parsed arguments (``tmp_dir`` and ``keep`` are read here) and a
``run(spark, args, root, meter)`` generator of ``(key, value)`` figures; :func:`spark_bench`
starts the session with the UI off in a throw-away warehouse, adds the process-wide figures
(lifetime peak RSS of the JVM and of the Python driver, JVM heap, load averages) and prints the
whole record as ONE JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from bench import _arrow, _measure

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
    root = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir=args.tmp_dir))
    os.environ["RECSYS_WAREHOUSE"] = str(root / "warehouse")
    os.environ.setdefault("RECSYS_SPARK_UI", "false")
    from jobs.common import configure_logging
    from recsys.settings import load_settings
    from recsys.warehouse.session import build_spark

    configure_logging()
    _arrow.ship_by_value(_arrow, sys.modules[module])
    meter = _measure.Meter()
    settings = load_settings()
    spark = build_spark(settings, app_name=f"bench_{name}", attach=False)
    try:
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
        print(json.dumps(record), flush=True)
    finally:
        meter.close()
        spark.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0
