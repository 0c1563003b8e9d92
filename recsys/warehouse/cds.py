"""A class-data-sharing (CDS) archive of the classes a Spark + Delta driver JVM loads.

Every job starts a driver JVM that loads and verifies tens of thousands of Spark, Hadoop and
Delta classes before it does any work; on this 2-core machine that is most of a short job's
start-up. ``python -m recsys.warehouse.cds`` (run by ``make setup``) starts one representative
session (Delta tables created, written, read and attached) in a JVM with
``-XX:ArchiveClassesAtExit``, which writes what it loaded into ``.cache/spark-cds/spark.jsa``
(ignored by git). Driver JVMs started afterwards map that file instead
(:func:`driver_java_options`, applied by the session factory and by the DAGs' spark-submit), and
start faster (``python -m bench.bench_startup`` measures it; figures in ``docs/benchmarks.md``).

The JVM checks the archive against its own build and class path and runs without it, silently,
when they differ (another JDK, other pyspark jars): the archive can make a start faster, never
wrong. ``make setup`` rebuilds it when pyspark or the Delta jars change.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from recsys.settings import DEFAULT_CDS_ARCHIVE

log = logging.getLogger(__name__)

#: Spark conf key of the driver JVM's options (the archive goes there).
DRIVER_JAVA_OPTIONS: Final = "spark.driver.extraJavaOptions"

# The JVM reports an archive it cannot use as a [cds] warning on stdout; it is not an error
# (the JVM simply loads classes itself), and stdout belongs to the job.
_QUIET: Final = ("-Xlog:cds=off", "-Xlog:cds+dynamic=off")

#: How long to wait for the JVM to finish writing the archive after the session stops, seconds.
DUMP_WAIT_S: Final = 120.0

_WORKLOAD: Final = """
import sys, tempfile
from recsys.settings import load_settings
from recsys.warehouse.catalog import apply_ddl, attach_tables
from recsys.warehouse.session import build_spark
from recsys.warehouse.tables import ALL_TABLES
root = tempfile.mkdtemp(prefix="recsys-cds-")
settings = load_settings(
    warehouse_root=root, master="local[2]", ui_enabled=False, driver_memory="1g",
    cds_archive="none", extra_conf={"spark.driver.extraJavaOptions": sys.argv[1]},
)
spark = build_spark(settings, app_name="cds-archive", attach=False)
apply_ddl(spark, root)
for table in ALL_TABLES:  # unregister (data kept), so attaching runs as in a job's start
    spark.sql("DROP TABLE " + table.qualified_name)
attach_tables(spark, root)
frame = spark.range(100).selectExpr("id", "id % 7 AS k", "CAST(id AS STRING) AS s")
frame.write.format("delta").mode("overwrite").save(root + "/_probe")
read = spark.read.format("delta").load(root + "/_probe")
read.groupBy("k").count().join(read, "k").orderBy("id").limit(5).collect()
spark.stop()
"""


def driver_java_options(archive: Path | None) -> str:
    """JVM options that map ``archive``: ``""`` when it is None or not (yet) a file."""
    if archive is None or not archive.is_file():
        return ""
    return " ".join(("-XX:SharedArchiveFile=" + str(archive), "-Xshare:auto", *_QUIET))


def merge_java_options(existing: str | None, extra: str) -> str:
    """``existing`` driver JVM options with ``extra`` appended (either may be empty)."""
    return " ".join(part for part in ((existing or "").strip(), extra.strip()) if part)


def with_driver_java_options(conf: Mapping[str, str], options: str) -> dict[str, str]:
    """A copy of the Spark ``conf`` whose driver JVM options end with ``options``.

    The one place both the session factory and the DAGs' spark-submit add the archive's options:
    whatever ``spark.driver.extraJavaOptions`` the caller set is kept in front of them.
    """
    merged = dict(conf)
    if options.strip():
        merged[DRIVER_JAVA_OPTIONS] = merge_java_options(conf.get(DRIVER_JAVA_OPTIONS), options)
    return merged


def build_archive(target: Path = DEFAULT_CDS_ARCHIVE, timeout_s: float = 600.0) -> Path:
    """Write the archive to ``target`` (replaced atomically) from one representative session.

    Raises:
        RuntimeError: the session failed or the JVM wrote no archive (e.g. a JDK without its
            base archive); the message holds the end of its output.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        partial = Path(tmp) / "spark.jsa"
        env = {**os.environ, "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")}
        res = subprocess.run(
            [sys.executable, "-c", _WORKLOAD, "-XX:ArchiveClassesAtExit=" + str(partial)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if res.returncode != 0:
            raise RuntimeError("CDS workload failed: " + (res.stdout + res.stderr)[-3000:])
        # The JVM writes the archive while it exits, which can outlive the Python process.
        deadline = time.monotonic() + DUMP_WAIT_S
        size = -1
        while time.monotonic() < deadline:
            if partial.is_file() and partial.stat().st_size == size and size > 0:
                break
            size = partial.stat().st_size if partial.is_file() else -1
            time.sleep(1.0)
        else:
            raise RuntimeError("the JVM wrote no CDS archive: " + res.stdout[-3000:])
        os.replace(partial, target)
    return target


def main(argv: list[str] | None = None) -> int:
    """``python -m recsys.warehouse.cds [--target PATH]``: build the archive; 1 on failure."""
    parser = argparse.ArgumentParser(prog="recsys.warehouse.cds", description=__doc__)
    parser.add_argument("--target", type=Path, default=DEFAULT_CDS_ARCHIVE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        path = build_archive(args.target)
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        log.warning("no CDS archive (jobs start without it, only slower): %s", err)
        return 1
    size_mb = path.stat().st_size / 2**20
    log.info("CDS archive %s: %.0f MB in %.1f s", path, size_mb, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
