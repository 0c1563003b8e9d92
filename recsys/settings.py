"""Typed settings of the warehouse: where tables live and how Spark is started.

Values come, in increasing precedence, from the defaults below, an optional TOML file (path in
``RECSYS_CONFIG``; keys are the field names, under a ``[warehouse]`` table), the ``RECSYS_*``
environment variables, and keyword overrides passed to :func:`load_settings`. They are validated
once, here, and every later layer trusts them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

#: Root of the repository (recsys/settings.py -> two levels up).
PROJECT_ROOT: Final[Path] = Path(__file__).resolve().parents[1]

#: Where `make setup` resolves Delta Lake's JVM jars (ignored by git).
DEFAULT_JAR_CACHE: Final[Path] = PROJECT_ROOT / ".cache" / "spark-jars"

#: Where `make setup` writes the driver JVM's class-data-sharing archive (recsys.warehouse.cds).
DEFAULT_CDS_ARCHIVE: Final[Path] = PROJECT_ROOT / ".cache" / "spark-cds" / "spark.jsa"

_SCHEMES_WITHOUT_LOCAL_PATH: Final = ("s3a://", "s3://", "gs://", "abfss://", "hdfs://", "file:/")
_MEMORY_RE: Final = re.compile(r"[1-9][0-9]*[kmgt]")  # each pattern here: fullmatch only
_MASTER_RE: Final = re.compile(
    r"local(\[(\*|[1-9][0-9]*)(,[0-9]+)?\])?|spark://.+|yarn|k8s://.+"
)

_ENV: Final[Mapping[str, str]] = {
    "master": "RECSYS_SPARK_MASTER",
    "warehouse_root": "RECSYS_WAREHOUSE",
    "shuffle_partitions": "RECSYS_SHUFFLE_PARTITIONS",
    "driver_memory": "RECSYS_DRIVER_MEMORY",
    "driver_host": "RECSYS_DRIVER_HOST",
    "ui_enabled": "RECSYS_SPARK_UI",
    "jar_cache": "RECSYS_JAR_CACHE",
    "log_level": "RECSYS_SPARK_LOG_LEVEL",
    "cds_archive": "RECSYS_CDS_ARCHIVE",
    "max_result_size": "RECSYS_MAX_RESULT_SIZE",
    "shuffle_partition_bytes": "RECSYS_SHUFFLE_PARTITION_BYTES",
}
_LOG_LEVELS: Final = ("ERROR", "WARN", "INFO", "DEBUG")

#: Shuffled bytes assumed per input byte when sizing shuffles: joins, co-visitation windows and
#: per-user arrays grow the data; adaptive execution merges the partitions a small shuffle does
#: not fill, so a high estimate costs little and a low one makes partitions too large to sort.
SHUFFLE_EXPANSION: Final = 4
#: Ceiling of the size-derived ``spark.sql.shuffle.partitions``.
MAX_SHUFFLE_PARTITIONS: Final = 2000


def _default_shuffle_partitions() -> int:
    # Two tasks per core keeps both cores busy through skew without the per-task overhead that
    # Spark's default of 200 partitions costs on small data.
    return max(2, 2 * (os.cpu_count() or 1))


@dataclass(frozen=True, slots=True)
class WarehouseSettings:
    """Where the warehouse lives and how the Spark session is built.

    Attributes:
        master: Spark master URL: ``local[*]``, ``local[N]``, ``spark://host:port``, ``yarn`` or
            ``k8s://...``. Ignored when the process was launched by ``spark-submit`` (its
            ``--master`` wins) unless set explicitly in the environment.
        warehouse_root: Root directory or object-store URI under which every table lives as
            ``<root>/<schema>/<table>``. Local paths are made absolute.
        shuffle_partitions: ``spark.sql.shuffle.partitions`` on small data, >= 1: the floor of
            the size-derived count (see ``shuffle_partition_bytes``).
        driver_memory: JVM heap of the driver, e.g. ``4g`` (only applies when this process starts
            the JVM).
        driver_host: Address the driver binds to and advertises; loopback by default. A real
            cluster needs an address its executors can reach.
        ui_enabled: Whether Spark's web UI runs (bound to ``driver_host``); off in tests.
        jar_cache: Directory holding Delta Lake's jars, filled by ``make setup``.
        log_level: Spark's log level, one of ERROR, WARN, INFO, DEBUG.
        cds_archive: Class-data-sharing archive the driver JVM maps to start faster (written by
            ``make setup``; unused while the file is absent); ``none`` (or None) turns it off.
        max_result_size: ``spark.driver.maxResultSize``, e.g. ``1g``: the most a job may bring
            to the driver in one action. Kept low on purpose: no job collects data proportional
            to users, items or interactions, and one that starts to fails loudly here instead of
            exhausting the driver's heap.
        shuffle_partition_bytes: Input bytes per shuffle partition, >= 1 MiB; the session sets
            ``spark.sql.shuffle.partitions`` to ``ceil(SHUFFLE_EXPANSION · input / this)`` (at
            least ``shuffle_partitions``, at most :data:`MAX_SHUFFLE_PARTITIONS`), where input is
            the size of the largest bronze table on local disk; 0 turns the sizing off.
        extra_conf: Further ``spark.*`` settings passed through unchanged.
        master_explicit: True when ``master`` was set by the caller rather than defaulted.
    """

    master: str = "local[*]"
    warehouse_root: str = str(PROJECT_ROOT / "warehouse")
    shuffle_partitions: int = field(default_factory=_default_shuffle_partitions)
    driver_memory: str = "4g"
    driver_host: str = "127.0.0.1"
    ui_enabled: bool = True
    jar_cache: Path = DEFAULT_JAR_CACHE
    log_level: str = "WARN"
    cds_archive: Path | None = DEFAULT_CDS_ARCHIVE
    max_result_size: str = "1g"
    shuffle_partition_bytes: int = 128 * 2**20
    extra_conf: Mapping[str, str] = field(default_factory=dict)
    master_explicit: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.master, str) or not _MASTER_RE.fullmatch(self.master):
            raise ValueError(f"master: unsupported Spark master URL {self.master!r}")
        if not isinstance(self.shuffle_partitions, int) or self.shuffle_partitions < 1:
            raise ValueError(
                f"shuffle_partitions: must be an int >= 1, got {self.shuffle_partitions!r}"
            )
        if not _MEMORY_RE.fullmatch(str(self.driver_memory).lower()):
            raise ValueError(f"driver_memory: expected e.g. '4g', got {self.driver_memory!r}")
        if not _MEMORY_RE.fullmatch(str(self.max_result_size).lower()):
            raise ValueError(f"max_result_size: expected e.g. '1g', got {self.max_result_size!r}")
        bytes_per = self.shuffle_partition_bytes
        if not isinstance(bytes_per, int) or (bytes_per != 0 and bytes_per < 2**20):
            raise ValueError(
                f"shuffle_partition_bytes: must be 0 (off) or an int >= 1048576, got {bytes_per!r}"
            )
        if self.log_level not in _LOG_LEVELS:
            raise ValueError(f"log_level: expected one of {_LOG_LEVELS}, got {self.log_level!r}")
        root = str(self.warehouse_root)
        if not root or "'" in root or "\\" in root or "\n" in root:
            raise ValueError(f"warehouse_root: empty or contains a quote/backslash: {root!r}")
        if not root.startswith(_SCHEMES_WITHOUT_LOCAL_PATH):
            object.__setattr__(self, "warehouse_root", str(Path(root).expanduser().resolve()))
        else:
            object.__setattr__(self, "warehouse_root", root.rstrip("/"))
        object.__setattr__(self, "jar_cache", Path(self.jar_cache).expanduser().resolve())
        if self.cds_archive is not None:
            archive = Path(self.cds_archive).expanduser().resolve()
            if any(c.isspace() for c in str(archive)):
                # It goes into the driver's JVM options, a space-separated string.
                raise ValueError(f"cds_archive: the path contains whitespace: {str(archive)!r}")
            object.__setattr__(self, "cds_archive", archive)
        for key in self.extra_conf:
            if not key.startswith("spark."):
                raise ValueError(f"extra_conf: keys must start with 'spark.', got {key!r}")

    @property
    def is_local(self) -> bool:
        """True when Spark runs in this process (``local`` master)."""
        return self.master.startswith("local")


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}: expected a boolean (true/false), got {value!r}")


def _coerce(name: str, raw: Any) -> Any:
    if name in ("shuffle_partitions", "shuffle_partition_bytes"):
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected an integer, got {raw!r}") from None
    if name == "ui_enabled":
        return raw if isinstance(raw, bool) else _parse_bool(name, str(raw))
    if name == "jar_cache":
        return Path(str(raw))
    if name == "cds_archive":
        if raw is None or str(raw).strip().lower() in ("none", "off"):
            return None
        return Path(str(raw))
    if name == "log_level":
        return str(raw).upper()
    return raw


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> WarehouseSettings:
    """Build validated settings from defaults, ``RECSYS_CONFIG`` TOML, env vars and overrides.

    Args:
        env: Environment to read (defaults to ``os.environ``); tests pass a dict.
        **overrides: Field values that win over everything else.

    Raises:
        ValueError: a value is malformed, naming the setting and the value.
        TypeError: an override names no setting.
    """
    environ = os.environ if env is None else env
    known = {f.name for f in fields(WarehouseSettings)}
    values: dict[str, Any] = {}
    config_path = environ.get("RECSYS_CONFIG")
    if config_path:
        path = Path(config_path)
        if not path.is_file():
            raise ValueError(f"RECSYS_CONFIG: no such file {config_path!r}")
        section = tomllib.loads(path.read_text(encoding="utf-8")).get("warehouse", {})
        for key, raw in section.items():
            if key not in known or key == "master_explicit":
                raise ValueError(f"RECSYS_CONFIG: unknown setting {key!r} in [warehouse]")
            values[key] = raw if key == "extra_conf" else _coerce(key, raw)
        if "master" in section:
            values["master_explicit"] = True
    for name, var in _ENV.items():
        if var in environ and environ[var] != "":
            values[name] = _coerce(name, environ[var])
            if name == "master":
                values["master_explicit"] = True
    for key, raw in overrides.items():
        if key not in known:
            raise TypeError(f"load_settings: unknown setting {key!r}")
        values[key] = raw if key == "extra_conf" else _coerce(key, raw)
        if key == "master":
            values["master_explicit"] = True
    return replace(WarehouseSettings(), **values)


# --------------------------------------------------------------------------------------------
# Allowed values of the ingest layer.


class Layout(StrEnum):
    """MovieLens directory layouts the loader understands (plus the synthetic generator's)."""

    ML_LATEST_SMALL = "ml-latest-small"  # CSV with header: ratings, movies, tags (and links)
    ML_100K = "ml-100k"  # u.data (tab), u.item / u.user ('|'), Latin-1
    ML_1M = "ml-1m"  # ratings/movies/users.dat ('::'), Latin-1


class FileKind(StrEnum):
    """Kinds of input file, one per entity."""

    RATINGS = "ratings"
    MOVIES = "movies"
    TAGS = "tags"
    USERS = "users"


class Reason(StrEnum):
    """Why an input line was quarantined (``bronze.quarantine.reason``)."""

    INVALID_UTF8 = "invalid_utf8"
    WRONG_FIELD_COUNT = "wrong_field_count"
    MALFORMED_QUOTING = "malformed_quoting"
    NULL_FIELD = "null_field"
    UNPARSEABLE_NUMBER = "unparseable_number"
    UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"
    RATING_OUT_OF_RANGE = "rating_out_of_range"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    INVALID_VALUE = "invalid_value"
    DUPLICATE = "duplicate"
    UNKNOWN_ITEM = "unknown_item"
    UNKNOWN_USER = "unknown_user"


_SOURCE_RE: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """What one ingest run does, validated at the edge (the job's argument parser).

    Attributes:
        input_path: Directory holding one MovieLens layout (plain or ``.gz`` files).
        ds: Delivery date; a rerun with the same (source, ds) replaces that delivery.
        source: Delivery name, ``[a-z0-9][a-z0-9_.-]*`` (defaults to the layout name).
        layout: Layout of ``input_path``; detected from file names when None.
        run_id: Id recorded on every row written; a fresh UUID when None.
        max_bad_fraction: Fail the run when more than this fraction (0-1) of any file's lines is
            quarantined; bronze tables are then left untouched.
        positive_threshold: Ratings at or above this value set ``is_positive`` (MovieLens 0.5-5).
    """

    input_path: Path
    ds: date
    source: str
    layout: Layout | None = None
    run_id: str | None = None
    max_bad_fraction: float = 0.01
    positive_threshold: float = 4.0

    def __post_init__(self) -> None:
        if not isinstance(self.ds, date):
            raise TypeError(f"ds: expected a datetime.date, got {self.ds!r}")
        if not _SOURCE_RE.fullmatch(self.source):
            raise ValueError(f"source: expected [a-z0-9][a-z0-9_.-]{{0,63}}, got {self.source!r}")
        if self.layout is not None and not isinstance(self.layout, Layout):
            raise TypeError(f"layout: expected a Layout, got {self.layout!r}")
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction: must be in [0, 1], got {self.max_bad_fraction!r}")
        if not 0.0 < self.positive_threshold <= 5.0:
            raise ValueError(
                f"positive_threshold: must be in (0, 5], got {self.positive_threshold!r}"
            )
        if self.run_id is not None and not _SOURCE_RE.fullmatch(self.run_id.lower()):
            raise ValueError(f"run_id: expected [A-Za-z0-9_.-]{{1,64}}, got {self.run_id!r}")
