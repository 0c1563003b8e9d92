"""The one place a SparkSession is created.

``build_spark`` turns :class:`~recsys.settings.WarehouseSettings` into a Delta-enabled
session bound to loopback, with Delta Lake's jars taken from the project's offline cache, and
attaches every warehouse table by name (see :mod:`recsys.warehouse.catalog`).
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Final

from recsys.settings import (
    MAX_SHUFFLE_PARTITIONS,
    SHUFFLE_EXPANSION,
    WarehouseSettings,
    load_settings,
)
from recsys.warehouse.cds import driver_java_options, with_driver_java_options

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

SCALA_BINARY: Final = "2.13"
DELTA_GROUP: Final = "io.delta"
DELTA_ARTIFACT: Final = "delta-spark_" + SCALA_BINARY


class WarehouseSetupError(RuntimeError):
    """The machine is not set up for the warehouse (e.g. Delta's jars were never resolved)."""


def delta_version() -> str:
    """Version of the installed ``delta-spark`` Python package; the JVM jar must match it."""
    return version("delta-spark")


def delta_coordinate() -> str:
    """Maven coordinate of the Delta Lake jar matching the installed Python package."""
    return DELTA_GROUP + ":" + DELTA_ARTIFACT + ":" + delta_version()


def delta_jars(jar_cache: Path) -> list[Path]:
    """The jars resolved by ``make setup`` into ``jar_cache``, Delta's own first.

    Raises:
        WarehouseSetupError: the cache is missing or lacks the jar for the installed Delta.
    """
    main_jar = jar_cache / (DELTA_GROUP + "_" + DELTA_ARTIFACT + "-" + delta_version() + ".jar")
    if not main_jar.is_file():
        raise WarehouseSetupError(
            "Delta Lake jar "
            + delta_coordinate()
            + " not found in "
            + str(jar_cache)
            + ": run `make setup` once (it resolves the jars from Maven Central into that cache;"
            " jobs then start offline)."
        )
    others = sorted(p for p in jar_cache.glob("*.jar") if p != main_jar)
    return [main_jar, *others]


def launched_by_spark_submit() -> bool:
    """True when this Python process was started by ``spark-submit`` (its JVM already runs)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _check_submitted_jars(jars: str) -> None:
    # Under spark-submit the driver JVM already runs, so spark.jars set here reaches executors
    # but not the driver's class path: Delta's extension would fail to load with a bare
    # ClassNotFoundException. Say what to pass instead.
    from pyspark import SparkContext

    SparkContext._ensure_initialized()  # attach to spark-submit's JVM to read its properties
    jvm = SparkContext._jvm
    submitted = jvm.java.lang.System.getProperty("spark.jars") if jvm is not None else None
    if DELTA_ARTIFACT not in (submitted or ""):
        raise WarehouseSetupError(
            "launched by spark-submit without Delta Lake's jars on the driver: pass "
            "--jars " + jars + " (the Airflow DAGs do this)"
        )


def spark_conf(settings: WarehouseSettings, app_name: str) -> dict[str, str]:
    """The full Spark configuration for ``settings`` (pure; used by the builder and by tests)."""
    jars = ",".join(str(p) for p in delta_jars(settings.jar_cache))
    conf: dict[str, str] = {
        "spark.app.name": app_name,
        "spark.jars": jars,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # No Hive metastore: every process attaches the path-based Delta tables itself, so any
        # number of Spark processes can work on the warehouse at once (embedded Derby admits one).
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": settings.warehouse_root.rstrip("/") + "/_spark_catalog",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.default.parallelism": str(settings.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.driver.host": settings.driver_host,
        "spark.driver.bindAddress": settings.driver_host,
        "spark.ui.enabled": "true" if settings.ui_enabled else "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": settings.driver_memory,
        # A guard, not a budget: no job collects data that grows with users or interactions.
        "spark.driver.maxResultSize": settings.max_result_size,
        # Adaptive execution merges the shuffle partitions that size-derived counts leave small
        # and splits skewed join partitions (heavy users); explicit so a cluster default cannot
        # turn it off.
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.sql.adaptive.skewJoin.enabled": "true",
        # Delta's log replay on small tables: one partition per core, not 50.
        "spark.databricks.delta.snapshotPartitions": str(settings.shuffle_partitions),
    }
    conf.update(settings.extra_conf)
    return with_driver_java_options(conf, driver_java_options(settings.cds_archive))


def shuffle_partitions_for(input_bytes: int | None, settings: WarehouseSettings) -> int:
    """``spark.sql.shuffle.partitions`` for an input of ``input_bytes`` (None: unknown).

    ``ceil(SHUFFLE_EXPANSION · input_bytes / settings.shuffle_partition_bytes)``, at least
    ``settings.shuffle_partitions`` and at most :data:`~recsys.settings.MAX_SHUFFLE_PARTITIONS`;
    ``settings.shuffle_partitions`` when the input is unknown or sizing is off.

    >>> s = load_settings({}, shuffle_partitions=4, shuffle_partition_bytes=128 * 2**20)
    >>> shuffle_partitions_for(10 * 2**20, s), shuffle_partitions_for(2**30, s)
    (4, 32)
    """
    floor = settings.shuffle_partitions
    if input_bytes is None or settings.shuffle_partition_bytes == 0:
        return floor
    wanted = math.ceil(SHUFFLE_EXPANSION * input_bytes / settings.shuffle_partition_bytes)
    return min(MAX_SHUFFLE_PARTITIONS, max(floor, wanted))


def largest_input_bytes(settings: WarehouseSettings) -> int | None:
    """Bytes on disk of ``bronze.interactions``, the largest input of every job (None when the
    warehouse is not on a local file system or the table does not exist yet). Counts every
    file under the table, so it over-estimates until old versions are vacuumed."""
    from recsys.warehouse.tables import BRONZE_INTERACTIONS

    if "://" in settings.warehouse_root:
        return None
    table = Path(BRONZE_INTERACTIONS.location(settings.warehouse_root))
    if not table.is_dir():
        return None
    return sum(p.stat().st_size for p in table.rglob("*.parquet") if "_delta_log" not in p.parts)


def build_spark(
    settings: WarehouseSettings | None = None, app_name: str = "recsys", attach: bool = True
) -> SparkSession:
    """Create (or return the running) Delta-enabled SparkSession and attach warehouse tables.

    Args:
        settings: Warehouse settings; :func:`load_settings` from the environment when omitted.
        app_name: Spark application name shown in logs and UIs.
        attach: Register every existing warehouse table by name (``bronze.interactions`` ...).

    Raises:
        WarehouseSetupError: Delta's jars are not in the cache (run ``make setup``).
    """
    from pyspark.sql import SparkSession

    settings = settings or load_settings()
    if settings.driver_host in ("127.0.0.1", "localhost"):
        # The JVM picks its bind address from SPARK_LOCAL_IP before any conf is read.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers (pandas UDFs) must run this interpreter, whose venv has pyarrow and torch;
    # a cluster whose executors keep their Python elsewhere sets PYSPARK_PYTHON itself.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = spark_conf(settings, app_name)
    if launched_by_spark_submit():
        _check_submitted_jars(conf["spark.jars"])
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    if settings.master_explicit or not launched_by_spark_submit():
        builder = builder.master(settings.master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.log_level)
    partitions = shuffle_partitions_for(largest_input_bytes(settings), settings)
    if partitions != settings.shuffle_partitions:
        # A runtime SQL setting: every later query of this session plans with it.
        spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
        log.info("spark.sql.shuffle.partitions=%d (sized from the input)", partitions)
    if attach:
        from recsys.warehouse.catalog import attach_tables

        attach_tables(spark, settings.warehouse_root)
    return spark


@contextmanager
def fanned_out_shuffle(spark: SparkSession, factor: int) -> Iterator[int]:
    """Plan the queries run inside with ``factor`` times the session's shuffle partitions.

    For a query whose shuffled rows are ``factor`` times its input (co-visitation pairs: up to
    ``window`` per event), the input-sized count leaves partitions ``factor`` times too large;
    sorting one then asks for a pointer array of several hundred MiB, and two such tasks exhaust
    a 4 GiB local driver. Adaptive execution merges the partitions this leaves small, so small
    inputs pay nearly nothing. The count is capped at
    :data:`~recsys.settings.MAX_SHUFFLE_PARTITIONS`; the session's own count is restored on
    exit. Yields the count used.

    Raises:
        ValueError: ``factor`` is not an int >= 1.
    """
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor: expected an int >= 1, got {factor!r}")
    key = "spark.sql.shuffle.partitions"
    before = str(spark.conf.get(key))  # a SQL setting with a default: never unset
    count = min(MAX_SHUFFLE_PARTITIONS, int(before) * factor)
    spark.conf.set(key, str(count))
    try:
        yield count
    finally:
        spark.conf.set(key, before)
