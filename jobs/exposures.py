"""Record first exposures of one day: ab.served x ab.assignments -> ab.exposures.

Usage (also through ``spark-submit jobs/exposures.py ...``)::

    python -m jobs.exposures --ds 2026-01-10 [--source app] [--run-id ID]

Reads the served recommendations of day ``--ds`` (``ab.served``, every source or only
``--source``) and the assignments of the same day (``ab.assignments``, written by
``jobs.assign``). A list served to a unit exposes it to every experiment it is assigned to that
day (``exposures_from_served`` of :mod:`ab_testing.assignment_spark`); the earliest one per
(experiment, unit) is merged into ``ab.exposures`` (``record_exposures``, same module):
new units are inserted, a known unit is only replaced by an earlier exposure, so the table keeps
each unit's first exposure over all days and a rerun for the same day changes nothing.

Served rows that cannot be an exposure are not dropped: they go to ``bronze.quarantine``
(``target_table = 'ab.exposures'``, the row as JSON, a reason) and the rows this job quarantined
for the day before are replaced, so reruns never duplicate them. Reasons: ``served_ts`` not on
day ``ds`` (``timestamp_out_of_range``), empty ``unit_id`` or ``surface`` (``null_field``), no
item shown (``invalid_value``). Exit status: 0 done, 1 no assignments for the day, 2 invalid
arguments.
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
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from ab_testing.assignment_spark import exposures_from_served, record_exposures
from jobs.common import configure_logging
from recsys.settings import Reason
from recsys.warehouse.io import with_conflict_retry
from recsys.warehouse.session import build_spark
from recsys.warehouse.tables import (
    AB_ASSIGNMENTS,
    AB_EXPOSURES,
    AB_SERVED,
    BRONZE_QUARANTINE,
    Col,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger("jobs.exposures")

#: Delivery names and run ids, as bronze writes them.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class NoAssignmentsError(RuntimeError):
    """``ab.assignments`` has no row for the day: run ``jobs.assign`` first."""


@dataclass(frozen=True, slots=True)
class ExposuresJob:
    """One validated run: the day, the served source (None: all) and the run id."""

    ds: date
    source: str | None
    run_id: str


def parse_args(argv: Sequence[str] | None) -> ExposuresJob:
    """Command line -> validated :class:`ExposuresJob`.

    Raises:
        ValueError: ``--source`` or ``--run-id`` is malformed.
    """
    parser = argparse.ArgumentParser(prog="jobs.exposures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ds", required=True, type=date.fromisoformat, help="day, YYYY-MM-DD")
    parser.add_argument("--source", help="only ab.served rows of this source (default: all)")
    parser.add_argument("--run-id", help="id stamped on quarantined rows (default: a new UUID)")
    args = parser.parse_args(argv)
    run_id = args.run_id or uuid.uuid4().hex
    for name, value in (("source", args.source), ("run_id", run_id)):
        if value is not None and not _NAME_RE.match(value):
            raise ValueError(f"{name}: expected {_NAME_RE.pattern}, got {value!r}")
    return ExposuresJob(args.ds, args.source, run_id)


def problem(ds: date) -> tuple[Column, Column]:
    """(reason, detail) of a served row of partition ``ds`` that is no exposure; NULL if fine."""
    checks = [
        (
            F.to_date(Col.SERVED_TS) != F.lit(ds),
            Reason.TIMESTAMP_OUT_OF_RANGE,
            "served_ts is not on ds",
        ),
        (F.length(F.trim(Col.UNIT_ID)) == 0, Reason.NULL_FIELD, "empty unit_id"),
        (F.length(F.trim(Col.SURFACE)) == 0, Reason.NULL_FIELD, "empty surface"),
        (F.size(Col.ITEM_IDS) < 1, Reason.INVALID_VALUE, "no item shown (empty item_ids)"),
    ]
    reason: Column = F.lit(None).cast("string")
    detail: Column = F.lit(None).cast("string")
    for cond, why, text in reversed(checks):  # the first failing check wins
        reason = F.when(cond, F.lit(why.value)).otherwise(reason)
        detail = F.when(cond, F.lit(text)).otherwise(detail)
    return reason, detail


def split_served(served: DataFrame, ds: date) -> tuple[DataFrame, DataFrame]:
    """(good, bad) served rows of day ``ds``; ``bad`` carries ``reason`` and ``detail``."""
    reason, detail = problem(ds)
    flagged = served.withColumn(Col.REASON, reason).withColumn(Col.DETAIL, detail)
    good = flagged.where(F.col(Col.REASON).isNull()).drop(Col.REASON, Col.DETAIL)
    return good, flagged.where(F.col(Col.REASON).isNotNull())


def quarantine_rows(bad: DataFrame, run_id: str, ds: date) -> DataFrame:
    """``bronze.quarantine`` rows for bad served rows (the row verbatim as JSON)."""
    payload = [c for c in bad.columns if c not in (Col.REASON, Col.DETAIL)]
    return bad.select(
        F.lit(AB_EXPOSURES.qualified_name).alias(Col.TARGET_TABLE),
        F.lit(AB_SERVED.qualified_name).alias(Col.SOURCE_FILE),
        F.to_json(F.struct(*payload)).alias(Col.RAW_LINE),
        Col.REASON,
        Col.DETAIL,
        Col.SOURCE,
        F.lit(run_id).alias(Col.RUN_ID),
        F.lit(ds).alias(Col.DS),
    )


def run(spark: SparkSession, job: ExposuresJob) -> dict[str, int]:
    """Quarantine bad served rows, merge the day's first exposures; returns counts."""
    served = spark.table(AB_SERVED.qualified_name).where(F.col(Col.DS) == F.lit(job.ds))
    mine = F.col(Col.DS) == F.lit(job.ds)
    if job.source is not None:
        served = served.where(F.col(Col.SOURCE) == F.lit(job.source))
        mine = mine & (F.col(Col.SOURCE) == F.lit(job.source))
    assignments = spark.table(AB_ASSIGNMENTS.qualified_name).where(F.col(Col.DS) == F.lit(job.ds))
    if assignments.limit(1).count() == 0:
        raise NoAssignmentsError(f"{AB_ASSIGNMENTS}: no rows for {job.ds}; run jobs.assign first")
    good, bad = split_served(served, job.ds)
    quarantine = quarantine_rows(bad, job.run_id, job.ds)
    mine = mine & (F.col(Col.TARGET_TABLE) == F.lit(AB_EXPOSURES.qualified_name))
    with_conflict_retry(
        lambda: quarantine.writeTo(BRONZE_QUARANTINE.qualified_name).overwrite(mine),
        BRONZE_QUARANTINE.qualified_name,
    )
    record_exposures(exposures_from_served(good, assignments))
    first_today = spark.table(AB_EXPOSURES.qualified_name).where(F.col(Col.DS) == F.lit(job.ds))
    return {
        "served": served.count(),
        "quarantined": bad.count(),
        "first_exposures_on_ds": first_today.count(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    try:
        job = parse_args(argv)
    except (ValueError, TypeError) as err:
        log.error("%s", err)
        return 2
    spark = build_spark(app_name="exposures")
    try:
        counts = run(spark, job)
    except NoAssignmentsError as err:
        log.error("%s", err)
        return 1
    log.info("%s ds=%s (source %s): %s", AB_EXPOSURES, job.ds, job.source or "all", counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
