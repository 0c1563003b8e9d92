"""Assign the user population to experiments for one day or a range of days: ``ab.assignments``.

Usage (also through ``spark-submit jobs/assign.py ...``)::

    python -m jobs.assign --config ab_testing/experiments.example.yaml --ds 2026-01-10 \
        [--from-ds 2026-01-01] [--source NAME] [--run-id ID]

The unit population of a day is the latest ``bronze.users`` delivery on or before that day (of
``--source`` when given); each user id becomes the unit id as its decimal string, and the other
columns of ``bronze.users`` are the attributes targeting filters may read. The day ``--ds`` of
``ab.assignments`` is replaced in one Delta commit, so a rerun never duplicates.

``--from-ds D0`` processes every day ``D0..--ds`` (both included, at most 366) in one Spark
session, each day exactly as a single-day run would: its own population, live experiments and
ramps, and one Delta commit per day replacing that day (the same write as a single-day run), all
stamped with the same run id. The populations of all days are resolved before anything is
written, so a day without one fails the run with nothing written; a failure after that leaves
the days before it written, and rerunning the range is idempotent.

Exit status: 0 done, 1 no population (for any day of the range), 2 invalid arguments or config
(checked before Spark starts; also ``--from-ds`` after ``--ds`` or a range over 366 days).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from ab_testing.assignment_spark import assign_df, write_assignments
from ab_testing.config import ExperimentsConfig, load_config
from jobs import common
from recsys.warehouse.tables import AB_ASSIGNMENTS, BRONZE_USERS, Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("jobs.assign")

#: bronze.users columns that are lineage, not unit attributes.
_NOT_ATTRIBUTES = (Col.USER_ID, Col.SOURCE, Col.RUN_ID, Col.DS)
#: Delivery names and run ids, as bronze writes them.


class NoPopulationError(RuntimeError):
    """No ``bronze.users`` delivery on or before the day to assign."""


@dataclass(frozen=True, slots=True)
class AssignJob:
    """One validated run: the config, the last day, the population's source (None: any), the run
    id and the first day (None: ``ds`` alone)."""

    config: ExperimentsConfig
    ds: date
    source: str | None
    run_id: str
    from_ds: date | None = None

    def __post_init__(self) -> None:
        common.day_range(self.from_ds, self.ds)  # raises ValueError on a bad range

    @property
    def days(self) -> tuple[date, ...]:
        """The days to assign, in order."""
        return common.day_range(self.from_ds, self.ds)


def parse_args(argv: Sequence[str] | None) -> AssignJob:
    """Command line -> validated :class:`AssignJob` (the edge where input is checked).

    Raises:
        ValueError: the config file is missing or invalid, ``--source``/``--run-id`` is
            malformed, or ``--from-ds`` is after ``--ds`` or over 366 days before it.
    """
    parser = common.job_parser("jobs.assign", __doc__)
    parser.add_argument("--config", required=True, type=Path, help="experiments YAML file")
    common.add_ds(parser, required=True)
    common.add_from_ds(parser)
    common.add_source(parser, "bronze.users delivery name (default: the latest)")
    common.add_run_id(parser)
    args = parser.parse_args(argv)
    run_id = common.run_id_or_new(args.run_id)
    common.check_names((("source", args.source),))
    common.day_range(args.from_ds, args.ds)  # before the config is read: the cheaper check first
    return AssignJob(load_config(args.config), args.ds, args.source, run_id, args.from_ds)


def deliveries(spark: SparkSession, last: date, source: str | None) -> dict[date, list[str]]:
    """Sources per ``bronze.users`` delivery day on or before ``last`` (only ``source``'s)."""
    users = spark.table(BRONZE_USERS.qualified_name).where(F.col(Col.DS) <= F.lit(last))
    if source is not None:
        users = users.where(F.col(Col.SOURCE) == F.lit(source))
    rows = users.groupBy(Col.DS).agg(F.collect_set(Col.SOURCE).alias(Col.SOURCE)).collect()
    return {r[Col.DS]: sorted(r[Col.SOURCE]) for r in rows}


def latest_delivery(
    found: Mapping[date, Sequence[str]], ds: date, source: str | None
) -> tuple[date, str]:
    """(day, source) of the latest delivery in ``found`` on or before ``ds``.

    Raises:
        NoPopulationError: there is no such delivery, or several sources share the latest day
            and ``source`` does not pick one.
    """
    days = [d for d in found if d <= ds]
    if not days:
        raise NoPopulationError(f"{BRONZE_USERS}: no delivery on or before {ds} ({source=})")
    day = max(days)
    if len(found[day]) > 1:
        raise NoPopulationError(
            f"{BRONZE_USERS}: sources {list(found[day])} all delivered on {day}; "
            "pick one with --source"
        )
    return day, found[day][0]


def delivery_units(spark: SparkSession, delivery_ds: date, source: str) -> DataFrame:
    """The units of one ``bronze.users`` delivery: unit id first, then the attributes."""
    delivery = spark.table(BRONZE_USERS.qualified_name).where(
        (F.col(Col.DS) == F.lit(delivery_ds)) & (F.col(Col.SOURCE) == F.lit(source))
    )
    attributes = [c for c in delivery.columns if c not in _NOT_ATTRIBUTES]
    return delivery.select(F.col(Col.USER_ID).cast("string").alias(Col.UNIT_ID), *attributes)


def run(spark: SparkSession, job: AssignJob) -> dict[date, dict[tuple[str, str], int]]:
    """Assign and write each day; returns, per day, units per (experiment, variant) as written.

    Raises:
        NoPopulationError: a day of the range has no population (checked before any write).
    """
    days = job.days
    found = deliveries(spark, days[-1], job.source)
    chosen = {day: latest_delivery(found, day, job.source) for day in days}
    for day in days:
        delivery_ds, src = chosen[day]
        log.info("ds=%s population: %s delivery %s of %s", day, BRONZE_USERS, delivery_ds, src)
        assignments = assign_df(
            delivery_units(spark, delivery_ds, src), job.config, Col.UNIT_ID, day
        )
        write_assignments(assignments, day, job.config.version, job.run_id)
    in_range = (
        F.col(Col.DS) == F.lit(days[0])
        if len(days) == 1
        else (F.col(Col.DS) >= F.lit(days[0])) & (F.col(Col.DS) <= F.lit(days[-1]))
    )
    rows = (
        spark.table(AB_ASSIGNMENTS.qualified_name)
        .where(in_range)
        .groupBy(Col.DS, Col.EXPERIMENT_ID, Col.VARIANT)
        .count()
        .collect()
    )
    counts: dict[date, dict[tuple[str, str], int]] = {day: {} for day in days}
    for r in rows:
        counts[r[Col.DS]][(r[Col.EXPERIMENT_ID], r[Col.VARIANT])] = int(r["count"])
    return counts


def _assign(job: common.Job[AssignJob]) -> int:
    counts = run(job.spark, job.config)
    for day, per_arm in counts.items():
        for (experiment, variant), n in sorted(per_arm.items()):
            log.info("%s ds=%s %s/%s: %d units", AB_ASSIGNMENTS, day, experiment, variant, n)
    days = job.config.days
    log.info(
        "assigned ds=%s..%s (%d days) with config version %d (run %s)",
        days[0],
        days[-1],
        len(days),
        job.config.config.version,
        job.config.run_id,
    )
    return 0


main = common.job_main("assign", parse_args, _assign, exits=((NoPopulationError, 1),))


if __name__ == "__main__":
    sys.exit(main())
