"""Retention of the warehouse's daily tables: drop old days, compact ``ab.served``, vacuum.

Usage (also through ``spark-submit jobs/retention.py ...``; the DAG ``warehouse_maintenance``
runs it daily)::

    python -m jobs.retention --ds 2026-12-07 [--features-days 14] [--serve-days 14]
        [--served-days 90] [--keep-days serve.candidates=3 ...] [--compact-days 2]
        [--vacuum-hours 168] [--log-retention-days 30] [--no-vacuum] [--dry-run]

Tables: every ``features.*`` and ``serve.*`` table and ``ab.served`` (the daily outputs that grow
without bound; bronze, A/B results and ops tables are kept). For each one, in this order, each
step one Delta commit or none:

1. **Log retention**: table properties ``delta.logRetentionDuration`` = ``--log-retention-days``
   and ``delta.deletedFileRetentionDuration`` = ``--vacuum-hours`` (set only when they differ).
2. **Old days**: daily partitions with ``ds <= --ds - N days`` are deleted (whole files, one
   commit), N being the table's horizon: ``--features-days``, ``--serve-days``,
   ``--served-days``, or a ``--keep-days TABLE=N`` override (default ``serve.candidates=3``,
   read only by the next ranking). N days are kept: ``--ds - N + 1`` .. ``--ds`` and later. Never
   dropped, whatever its age: a table's newest ``ds``, and the newest day of a completed
   ``recsys_daily`` run (``ops.completed_runs``) in it: that is the day the app-side reader
   serves. Tables without a ``ds`` partition column keep every row.
3. **Compaction** of ``ab.served`` (appended in small batches by the apps): ``OPTIMIZE`` of the
   days ``--ds - --compact-days + 1`` .. ``--ds`` (0: none). A day already in one file per
   partition is not rewritten.
4. **VACUUM** with a horizon of ``--vacuum-hours``: data files that no version of the last
   ``--vacuum-hours`` hours references are deleted (``--no-vacuum`` skips it). Time travel to any
   version of that window keeps working; older versions lose their files.

Idempotent: a second run for the same ``--ds`` drops, compacts and changes nothing (VACUUM still
records its start and end in the table history). Readers are never disturbed: a delete is one
commit, so a reader sees the day before or after it, and the published day is never deleted;
VACUUM only removes files no version inside the horizon needs. Conflicts with concurrent
writers are retried (``recsys.warehouse.io.with_conflict_retry``).

Exit status: 0 done, 2 invalid arguments.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Final

from jobs import common
from recsys.warehouse.completion import KEY_COLUMNS, Pipeline
from recsys.warehouse.io import with_conflict_retry
from recsys.warehouse.tables import (
    AB_SERVED,
    ALL_TABLES,
    OPS_COMPLETED_RUNS,
    SERVE_CANDIDATES,
    Col,
    TableRef,
)

if TYPE_CHECKING:
    from delta.tables import DeltaTable
    from pyspark.sql import SparkSession

log = logging.getLogger("jobs.retention")

DEFAULT_FEATURES_DAYS: Final = 14
DEFAULT_SERVE_DAYS: Final = 14
DEFAULT_SERVED_DAYS: Final = 90
#: Per-table horizons that differ from their group's (``serve.candidates``: a sample of users'
#: candidates kept for debugging, read by no job).
DEFAULT_KEEP_DAYS: Final[Mapping[str, int]] = {SERVE_CANDIDATES.qualified_name: 3}
DEFAULT_COMPACT_DAYS: Final = 2
#: Delta's own default deleted-file retention (7 days).
DEFAULT_VACUUM_HOURS: Final = 168
#: Delta's own default log retention.
DEFAULT_LOG_RETENTION_DAYS: Final = 30
#: Longest horizon accepted, days (10 years).
MAX_DAYS: Final = 3650
#: VACUUM horizons below this many hours are logged as a warning: a reader or writer that runs
#: longer than the horizon may find its files gone.
SHORT_VACUUM_HOURS: Final = 24

#: Tables this job manages: the daily outputs of features and scoring, and the apps' log.
MANAGED_TABLES: Final[tuple[TableRef, ...]] = tuple(
    t for t in ALL_TABLES if t.schema in ("features", "serve") or t == AB_SERVED
)
#: Tables whose recent days are compacted.
COMPACTED_TABLES: Final[tuple[TableRef, ...]] = (AB_SERVED,)


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name}: must be an int in [{low}, {high}], got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """One validated run.

    Attributes:
        ds: The run's day; horizons count back from it (not from the wall clock, so a late or
            repeated run decides the same).
        features_days: Days of each ``features.*`` table kept, in [1, 3650].
        serve_days: Days of each ``serve.*`` table kept, in [1, 3650].
        served_days: Days of ``ab.served`` kept, in [1, 3650].
        keep_days: Per-table overrides ``schema.table -> days`` (managed tables only).
        compact_days: Recent days of ``ab.served`` compacted, in [0, 3650] (0: none).
        vacuum_hours: VACUUM horizon and ``delta.deletedFileRetentionDuration``, hours, in
            [0, 87600]; at most ``log_retention_days * 24``.
        log_retention_days: ``delta.logRetentionDuration``, days, in [1, 3650].
        vacuum: Run VACUUM.
        dry_run: Log what would be done; commit nothing.
    """

    ds: date
    features_days: int = DEFAULT_FEATURES_DAYS
    serve_days: int = DEFAULT_SERVE_DAYS
    served_days: int = DEFAULT_SERVED_DAYS
    keep_days: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_KEEP_DAYS))
    compact_days: int = DEFAULT_COMPACT_DAYS
    vacuum_hours: int = DEFAULT_VACUUM_HOURS
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    vacuum: bool = True
    dry_run: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.ds, date) or isinstance(self.ds, datetime):
            raise TypeError(f"ds: expected a datetime.date, got {self.ds!r}")
        for name in ("features_days", "serve_days", "served_days", "log_retention_days"):
            _check_int(name, getattr(self, name), 1, MAX_DAYS)
        _check_int("compact_days", self.compact_days, 0, MAX_DAYS)
        _check_int("vacuum_hours", self.vacuum_hours, 0, MAX_DAYS * 24)
        if self.vacuum_hours > self.log_retention_days * 24:
            raise ValueError(
                f"log_retention_days: must cover vacuum_hours ({self.vacuum_hours} h) for time "
                f"travel within the horizon, got {self.log_retention_days} days"
            )
        if not isinstance(self.keep_days, Mapping):
            raise TypeError(f"keep_days: expected a mapping, got {self.keep_days!r}")
        managed = {t.qualified_name for t in MANAGED_TABLES}
        for table, days in self.keep_days.items():
            if table not in managed:
                raise ValueError(
                    f"keep_days: {table!r} is not a table this job manages ({sorted(managed)})"
                )
            _check_int(f"keep_days[{table}]", days, 1, MAX_DAYS)
        for name in ("vacuum", "dry_run"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name}: expected a bool, got {getattr(self, name)!r}")
        # Frozen, and independent of the caller's mapping.
        object.__setattr__(self, "keep_days", dict(self.keep_days))

    def horizon_days(self, table: TableRef) -> int:
        """Days of ``table`` kept (its override, else its group's)."""
        if table.qualified_name in self.keep_days:
            return self.keep_days[table.qualified_name]
        if table == AB_SERVED:
            return self.served_days
        if table.schema == "features":
            return self.features_days
        if table.schema == "serve":
            return self.serve_days
        raise ValueError(f"table: {table} is not managed by the retention job")

    def cutoff(self, table: TableRef) -> date:
        """Oldest day of ``table`` kept: days before it are dropped."""
        return self.ds - timedelta(days=self.horizon_days(table) - 1)


@dataclass(frozen=True, slots=True)
class TableOutcome:
    """What one run did to one table.

    Attributes:
        table: The table.
        status: ``done``, ``absent`` (no Delta table at its location) or ``dry_run``.
        dropped_days: Days deleted (or that would be, in a dry run), oldest first.
        protected_days: Days past the horizon kept because they are served or newest.
        properties_set: The retention properties were changed.
        compacted: Files rewritten by OPTIMIZE (removed, added); (0, 0) when none.
        vacuumed: VACUUM ran.
    """

    table: TableRef
    status: str
    dropped_days: tuple[date, ...] = ()
    protected_days: tuple[date, ...] = ()
    properties_set: bool = False
    compacted: tuple[int, int] = (0, 0)
    vacuumed: bool = False


def _path_sql(location: str) -> str:
    """``delta.`<location>``` for SQL; the location comes from settings, refused if odd."""
    if any(c in location for c in "`'\\\n"):
        raise ValueError(f"location: backticks, quotes, backslashes are not allowed: {location!r}")
    return f"delta.`{location}`"


def retention_properties(config: RetentionConfig) -> dict[str, str]:
    """The table properties every managed table gets."""
    return {
        "delta.logRetentionDuration": f"interval {config.log_retention_days} days",
        "delta.deletedFileRetentionDuration": f"interval {config.vacuum_hours} hours",
    }


def served_days(spark: SparkSession, warehouse_root: str) -> frozenset[date] | None:
    """Days with a completed ``recsys_daily`` run (``ops.completed_runs`` under
    ``warehouse_root``), or None when completion is not tracked there (every day counts)."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    location = OPS_COMPLETED_RUNS.location(warehouse_root)
    if not DeltaTable.isDeltaTable(spark, location):
        return None
    pipeline, _, ds = KEY_COLUMNS
    rows = (
        spark.read.format("delta")
        .load(location)
        .where(F.col(pipeline) == F.lit(Pipeline.RECSYS_DAILY.value))
        .select(ds)
        .distinct()
        .collect()  # one row per day: bounded by the calendar, not by users or items
    )
    return frozenset(r[ds] for r in rows) if rows else None


def _days(
    spark: SparkSession, location: str, before: date, completed: frozenset[date] | None
) -> tuple[list[date], set[date]]:
    """Days of the table older than ``before``, and the days never dropped: its newest day and
    the day the reader serves (its newest completed day). One row per day reaches the driver."""
    from pyspark.sql import functions as F

    df = spark.read.format("delta").load(location)
    old = df.where(F.col(Col.DS) < F.lit(before)).select(Col.DS).distinct().collect()
    newest = F.max(Col.DS)
    keep_rows = [df.agg(newest.alias(Col.DS)).first()]
    if completed is not None:
        done = df.where(F.col(Col.DS).isin(sorted(completed)))
        keep_rows.append(done.agg(newest.alias(Col.DS)).first())
    keep = {r[Col.DS] for r in keep_rows if r is not None and r[Col.DS] is not None}
    return sorted(r[Col.DS] for r in old), keep


def _set_properties(
    spark: SparkSession, location: str, wanted: Mapping[str, str], what: str
) -> None:
    pairs = ", ".join(f"'{k}' = '{v}'" for k, v in wanted.items())
    sql = f"ALTER TABLE {_path_sql(location)} SET TBLPROPERTIES ({pairs})"

    def alter() -> None:
        spark.sql(sql).collect()

    with_conflict_retry(alter, what)


def _compact(delta: DeltaTable, where: str, what: str) -> tuple[int, int]:
    """OPTIMIZE the files matching ``where``: (files removed, files added)."""
    result: list[tuple[int, int]] = [(0, 0)]

    def optimize() -> None:
        rows = delta.optimize().where(where).executeCompaction().collect()
        metrics = rows[0]["metrics"] if rows else None
        if metrics is not None:
            result[0] = (int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"]))

    with_conflict_retry(optimize, what)
    return result[0]


def _vacuum(delta: DeltaTable, hours: int, what: str) -> None:
    def vacuum() -> None:
        delta.vacuum(float(hours))

    with_conflict_retry(vacuum, what)


def retain_table(
    spark: SparkSession,
    table: TableRef,
    config: RetentionConfig,
    warehouse_root: str,
    completed: frozenset[date] | None,
) -> TableOutcome:
    """Apply the retention steps of the module docstring to one table."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    location = table.location(warehouse_root)
    if not DeltaTable.isDeltaTable(spark, location):
        log.info("%s: no Delta table at %s, skipped", table, location)
        return TableOutcome(table, "absent")
    delta = DeltaTable.forPath(spark, location)
    detail = delta.detail().select("partitionColumns", "properties").first()
    partitions = list(detail["partitionColumns"]) if detail is not None else []
    current = dict(detail["properties"] or {}) if detail is not None else {}
    wanted = retention_properties(config)
    what = table.qualified_name
    dry = config.dry_run

    set_props = any(current.get(k) != v for k, v in wanted.items())
    if set_props and not dry:
        _set_properties(spark, location, wanted, what)

    dropped: list[date] = []
    protected: list[date] = []
    if Col.DS in partitions:
        cutoff = config.cutoff(table)
        old, keep = _days(spark, location, cutoff, completed)
        dropped = [d for d in old if d not in keep]
        protected = [d for d in old if d in keep]
        if protected:
            log.info("%s: keeping %s past the horizon (newest or served day)", table, protected)
        if dropped and not dry:
            condition = F.col(Col.DS).isin(dropped)

            def delete() -> None:
                delta.delete(condition)

            with_conflict_retry(delete, what)
        log.info(
            "%s: %s %d day(s) before %s%s",
            table,
            "would drop" if dry else "dropped",
            len(dropped),
            cutoff,
            f" ({dropped[0]} .. {dropped[-1]})" if dropped else "",
        )
    else:
        log.info("%s: no %s partition column, no day dropped", table, Col.DS)

    compacted = (0, 0)
    if table in COMPACTED_TABLES and Col.DS in partitions and config.compact_days > 0 and not dry:
        first = config.ds - timedelta(days=config.compact_days - 1)
        where = f"{Col.DS} >= '{first.isoformat()}' AND {Col.DS} <= '{config.ds.isoformat()}'"
        compacted = _compact(delta, where, what)
        log.info("%s: compacted %s: %d files into %d", table, where, *compacted)

    vacuumed = config.vacuum and not dry
    if vacuumed:
        _vacuum(delta, config.vacuum_hours, what)
    status = "dry_run" if dry else "done"
    return TableOutcome(
        table, status, tuple(dropped), tuple(protected), set_props, compacted, vacuumed
    )


def run(
    spark: SparkSession,
    config: RetentionConfig,
    warehouse_root: str,
    tables: Sequence[TableRef] = MANAGED_TABLES,
) -> list[TableOutcome]:
    """Apply retention to ``tables`` (default: every managed table) under ``warehouse_root``.

    Tables are addressed by location, not by catalog name, so the run touches exactly the
    warehouse it is given.
    """
    unmanaged = [t for t in tables if t not in MANAGED_TABLES]
    if unmanaged:
        raise ValueError(f"tables: not managed by the retention job: {unmanaged}")
    if config.vacuum and config.vacuum_hours < SHORT_VACUUM_HOURS:
        log.warning(
            "vacuum_hours %d < %d: readers or writers running longer than that may lose files",
            config.vacuum_hours,
            SHORT_VACUUM_HOURS,
        )
    completed = served_days(spark, warehouse_root)
    return [retain_table(spark, t, config, warehouse_root, completed) for t in tables]


def _keep_pair(text: str) -> tuple[str, int]:
    table, eq, days = text.partition("=")
    if not eq:
        raise ValueError(f"--keep-days: expected TABLE=DAYS, got {text!r}")
    try:
        return table.strip(), int(days)
    except ValueError:
        raise ValueError(f"--keep-days: DAYS of {table!r} must be an int, got {days!r}") from None


def parse_args(argv: Sequence[str] | None) -> RetentionConfig:
    """Command line -> validated :class:`RetentionConfig`.

    Raises:
        ValueError: an argument is out of range, naming it and its value.
    """
    parser = common.job_parser("jobs.retention", __doc__)
    common.add_ds(parser, help="the run's day YYYY-MM-DD; horizons count back from it")
    common.add_fields(
        parser, RetentionConfig, {"features_days": None, "serve_days": None, "served_days": None}
    )
    parser.add_argument(
        "--keep-days",
        action="append",
        default=[],
        metavar="TABLE=DAYS",
        help="per-table horizon, e.g. serve.candidates=3 (repeatable)",
    )
    common.add_fields(
        parser,
        RetentionConfig,
        {"compact_days": None, "vacuum_hours": None, "log_retention_days": None},
    )
    parser.add_argument("--no-vacuum", action="store_true", help="skip VACUUM")
    parser.add_argument("--dry-run", action="store_true", help="log what would be done")
    args = parser.parse_args(argv)
    keep = dict(DEFAULT_KEEP_DAYS)
    keep.update(_keep_pair(t) for t in args.keep_days)
    return common.config_from(args, RetentionConfig, keep_days=keep, vacuum=not args.no_vacuum)


def _retention(job: common.Job[RetentionConfig]) -> int:
    from recsys.settings import load_settings

    config = job.config
    outcomes = run(job.spark, config, load_settings().warehouse_root)
    dropped = sum(len(o.dropped_days) for o in outcomes)
    log.info(
        "retention ds=%s%s: %d table(s), %d day(s) dropped, %d absent, in %.1f s",
        config.ds,
        " (dry run)" if config.dry_run else "",
        len(outcomes),
        dropped,
        sum(o.status == "absent" for o in outcomes),
        job.seconds(),
    )
    return 0


main = common.job_main("retention", parse_args, _retention)


if __name__ == "__main__":
    sys.exit(main())
