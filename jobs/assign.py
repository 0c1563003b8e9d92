"""Assign the user population to experiments for one day and write ``ab.assignments``.

Usage (also through ``spark-submit jobs/assign.py ...``)::

    python -m jobs.assign --config ab_testing/experiments.example.yaml --ds 2026-01-10

The unit population is the latest ``bronze.users`` delivery on or before ``--ds`` (of
``--source`` when given); each user id becomes the unit id as its decimal string, and the other
columns of ``bronze.users`` are the attributes targeting filters may read. The day ``--ds`` of
``ab.assignments`` is replaced in one Delta commit, so a rerun never duplicates. Exit status: 0
done, 1 no population, 2 invalid arguments or config (checked before Spark starts).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from ab_testing.assignment_spark import assign_df, write_assignments
from ab_testing.config import ExperimentsConfig, load_config
from jobs.common import configure_logging
from recsys.warehouse.session import build_spark
from recsys.warehouse.tables import AB_ASSIGNMENTS, BRONZE_USERS, Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("jobs.assign")

#: bronze.users columns that are lineage, not unit attributes.
_NOT_ATTRIBUTES = (Col.USER_ID, Col.SOURCE, Col.RUN_ID, Col.DS)
#: Delivery names and run ids, as bronze writes them.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class NoPopulationError(RuntimeError):
    """No ``bronze.users`` delivery on or before the day to assign."""


@dataclass(frozen=True, slots=True)
class AssignJob:
    """One validated run: the config, the day, the population's source (None: any) and run id."""

    config: ExperimentsConfig
    ds: date
    source: str | None
    run_id: str


def parse_args(argv: Sequence[str] | None) -> AssignJob:
    """Command line -> validated :class:`AssignJob` (the edge where input is checked).

    Raises:
        ValueError: the config file is missing or invalid, or ``--source``/``--run-id`` is
            malformed.
    """
    parser = argparse.ArgumentParser(prog="jobs.assign", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path, help="experiments YAML file")
    parser.add_argument("--ds", required=True, type=date.fromisoformat, help="day, YYYY-MM-DD")
    parser.add_argument("--source", help="bronze.users delivery name (default: the latest)")
    parser.add_argument("--run-id", help="id stamped on every row (default: a new UUID)")
    args = parser.parse_args(argv)
    run_id = args.run_id or uuid.uuid4().hex
    for name, value in (("source", args.source), ("run_id", run_id)):
        if value is not None and not _NAME_RE.match(value):
            raise ValueError(f"{name}: expected {_NAME_RE.pattern}, got {value!r}")
    return AssignJob(load_config(args.config), args.ds, args.source, run_id)


def population(spark: SparkSession, ds: date, source: str | None) -> DataFrame:
    """Users of the latest ``bronze.users`` delivery on or before ``ds``, unit id first.

    Raises:
        NoPopulationError: there is no such delivery, or several sources share the latest day
            and ``source`` does not pick one.
    """
    users = spark.table(BRONZE_USERS.qualified_name).where(F.col(Col.DS) <= F.lit(ds))
    if source is not None:
        users = users.where(F.col(Col.SOURCE) == F.lit(source))
    latest = users.groupBy(Col.DS).agg(F.collect_set(Col.SOURCE).alias(Col.SOURCE))
    row = latest.orderBy(F.col(Col.DS).desc()).first()
    if row is None:
        raise NoPopulationError(f"{BRONZE_USERS}: no delivery on or before {ds} ({source=})")
    if len(row[Col.SOURCE]) > 1:
        raise NoPopulationError(
            f"{BRONZE_USERS}: sources {sorted(row[Col.SOURCE])} all delivered on "
            f"{row[Col.DS]}; pick one with --source"
        )
    log.info("population: %s delivery %s of %s", BRONZE_USERS, row[Col.DS], row[Col.SOURCE][0])
    delivery = users.where(
        (F.col(Col.DS) == F.lit(row[Col.DS])) & (F.col(Col.SOURCE) == F.lit(row[Col.SOURCE][0]))
    )
    attributes = [c for c in delivery.columns if c not in _NOT_ATTRIBUTES]
    return delivery.select(F.col(Col.USER_ID).cast("string").alias(Col.UNIT_ID), *attributes)


def run(spark: SparkSession, job: AssignJob) -> dict[tuple[str, str], int]:
    """Assign and write the day; returns units per (experiment, variant) as written."""
    units = population(spark, job.ds, job.source)
    assignments = assign_df(units, job.config, Col.UNIT_ID, job.ds)
    write_assignments(assignments, job.ds, job.config.version, job.run_id)
    counts = (
        spark.table(AB_ASSIGNMENTS.qualified_name)
        .where(F.col(Col.DS) == F.lit(job.ds))
        .groupBy(Col.EXPERIMENT_ID, Col.VARIANT)
        .count()
        .collect()
    )
    return {(r[Col.EXPERIMENT_ID], r[Col.VARIANT]): int(r["count"]) for r in counts}


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    try:
        job = parse_args(argv)
    except (ValueError, TypeError) as err:
        log.error("%s", err)
        return 2
    spark = build_spark(app_name="assign")
    try:
        counts = run(spark, job)
    except NoPopulationError as err:
        log.error("%s", err)
        return 1
    for (experiment, variant), n in sorted(counts.items()):
        log.info("%s ds=%s %s/%s: %d units", AB_ASSIGNMENTS, job.ds, experiment, variant, n)
    log.info(
        "assigned ds=%s with config version %d (run %s)", job.ds, job.config.version, job.run_id
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
