"""Record first exposures of one day or a range: ab.served x ab.assignments -> ab.exposures.

Usage (also through ``spark-submit jobs/exposures.py ...``)::

    python -m jobs.exposures --ds 2026-01-10 [--from-ds 2026-01-01] [--source app] [--run-id ID] \
        [--max-rec-set-mismatch-share 0.01]

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
item shown (``invalid_value``).

``--from-ds D0`` processes every day ``D0..--ds`` (both included, at most 366) in one Spark
session and gives exactly the tables that single-day runs of those days in order would: the
served rows of the range are checked against their own partition's day, joined to the
assignments of their own day, and the earliest exposure per (experiment, unit) over the range is
merged once (the merge keeps the earliest, so one merge of the range's minimum equals one merge
per day). Two Delta commits for the whole range, as for one day: the quarantine rows of every day
of the range are replaced in one, the exposures merged in the other. Every day of the range must
have assignments, else nothing is written.

What was served is cross-checked against the arm: for every experiment whose variants name
recommendation sets (``popularity``, ``model``), each served row of an assigned unit must carry
the set its variant serves (:func:`ab_testing.replay.rec_set_for`). Exposures stay keyed to the
assigned variant (intent to treat); the mismatches per (experiment, day) — a stale app config, a
fallback list — are counted, logged as a warning, and written as the data-quality check
``exposure_rec_set_mismatch`` to ``ops.dq_checks`` (table ``ab.exposures[<experiment>]``, with
``@<source>`` under ``--source``; this job's rows of those days replaced, other checks' rows
untouched). A share above ``--max-rec-set-mismatch-share`` (default 0.01) fails the check and
logs ``DQ FAILED``; the exposures are recorded either way and the exit status stays 0.

Exit status: 0 done, 1 no assignments for the day (any day of the range), 2 invalid arguments
(also ``--from-ds`` after ``--ds`` or a range over 366 days).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from ab_testing.assignment_spark import (
    exposures_from_served,
    rec_set_mismatches,
    record_exposures,
)
from jobs import common
from recsys.quality.exposure_checks import (
    CHECK_NAME,
    DEFAULT_MAX_MISMATCH_SHARE,
    RecSetMismatch,
    check_share,
    dq_rows,
    evaluate_mismatches,
)
from recsys.settings import Reason
from recsys.warehouse import quarantine
from recsys.warehouse.io import replace_rows
from recsys.warehouse.tables import (
    AB_ASSIGNMENTS,
    AB_EXPOSURES,
    AB_SERVED,
    BRONZE_QUARANTINE,
    OPS_DQ_CHECKS,
    Col,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from recsys.quality.checks import CheckResult

log = logging.getLogger("jobs.exposures")


class NoAssignmentsError(RuntimeError):
    """``ab.assignments`` has no row for the day: run ``jobs.assign`` first."""


@dataclass(frozen=True, slots=True)
class ExposuresJob:
    """One validated run: the last day, the served source (None: all), the run id, the first
    day (None: ``ds`` alone) and the largest served-vs-assigned mismatch share that passes."""

    ds: date
    source: str | None
    run_id: str
    from_ds: date | None = None
    max_mismatch_share: float = DEFAULT_MAX_MISMATCH_SHARE

    def __post_init__(self) -> None:
        common.day_range(self.from_ds, self.ds)  # raises ValueError on a bad range
        check_share("max_rec_set_mismatch_share", self.max_mismatch_share)

    @property
    def days(self) -> tuple[date, ...]:
        """The days to record, in order."""
        return common.day_range(self.from_ds, self.ds)


def parse_args(argv: Sequence[str] | None) -> ExposuresJob:
    """Command line -> validated :class:`ExposuresJob`.

    Raises:
        ValueError: ``--source`` or ``--run-id`` is malformed, or ``--from-ds`` is after
            ``--ds`` or over 366 days before it.
    """
    parser = common.job_parser("jobs.exposures", __doc__)
    common.add_ds(parser, required=True)
    common.add_from_ds(parser)
    common.add_source(parser, "only ab.served rows of this source (default: all)")
    common.add_run_id(parser, help="id stamped on quarantined rows (default: a new UUID)")
    parser.add_argument(
        "--max-rec-set-mismatch-share",
        type=float,
        default=DEFAULT_MAX_MISMATCH_SHARE,
        help="largest share (0-1) of an experiment's served rows on a day that may show another "
        "rec_set than the assigned variant's before the DQ check fails (default 0.01)",
    )
    args = parser.parse_args(argv)
    run_id = common.run_id_or_new(args.run_id)
    common.check_names((("source", args.source),))
    return ExposuresJob(args.ds, args.source, run_id, args.from_ds, args.max_rec_set_mismatch_share)


def problem(ds: date | None = None) -> tuple[Column, Column]:
    """(reason, detail) of a served row of partition ``ds`` that is no exposure; NULL if fine.

    ``ds`` None: the row's own partition (column ``ds``), for rows of several days.
    """
    day = F.col(Col.DS) if ds is None else F.lit(ds)
    checks = [
        (
            F.to_date(Col.SERVED_TS) != day,
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


def split_served(served: DataFrame, ds: date | None = None) -> tuple[DataFrame, DataFrame]:
    """(good, bad) served rows of day ``ds`` (None: each of its own ``ds``); ``bad`` carries
    ``reason`` and ``detail``."""
    reason, detail = problem(ds)
    flagged = served.withColumn(Col.REASON, reason).withColumn(Col.DETAIL, detail)
    good = flagged.where(F.col(Col.REASON).isNull()).drop(Col.REASON, Col.DETAIL)
    return good, flagged.where(F.col(Col.REASON).isNotNull())


def quarantine_rows(bad: DataFrame, run_id: str, ds: date | None = None) -> DataFrame:
    """``bronze.quarantine`` rows for bad served rows (the row verbatim as JSON), on day ``ds``
    (None: each served row's own ``ds``)."""
    payload = [c for c in bad.columns if c not in (Col.REASON, Col.DETAIL)]
    return quarantine.quarantine_rows(
        bad,
        target_table=AB_EXPOSURES,
        source_file=AB_SERVED,
        raw_line=quarantine.row_as_json(*payload),
        source=F.col(Col.SOURCE),
        run_id=run_id,
        ds=F.col(Col.DS) if ds is None else ds,
    )


def _days(days: Sequence[date]) -> Column:
    """``ds`` is one of ``days`` (consecutive, ascending)."""
    if len(days) == 1:
        return F.col(Col.DS) == F.lit(days[0])
    return (F.col(Col.DS) >= F.lit(days[0])) & (F.col(Col.DS) <= F.lit(days[-1]))


def _per_day(df: DataFrame, days: Sequence[date]) -> dict[date, int]:
    counts = {r[Col.DS]: int(r["count"]) for r in df.groupBy(Col.DS).count().collect()}
    return {day: counts.get(day, 0) for day in days}


def run(spark: SparkSession, job: ExposuresJob) -> dict[date, dict[str, int]]:
    """Quarantine bad served rows, merge the first exposures of the days; counts per day.

    Raises:
        NoAssignmentsError: a day of the range has no assignments (checked before any write).
    """
    days = job.days
    in_range = _days(days)
    served = spark.table(AB_SERVED.qualified_name).where(in_range)
    mine = in_range
    if job.source is not None:
        served = served.where(F.col(Col.SOURCE) == F.lit(job.source))
        mine = mine & (F.col(Col.SOURCE) == F.lit(job.source))
    assignments = spark.table(AB_ASSIGNMENTS.qualified_name).where(in_range)
    if len(days) == 1:
        assigned = {days[0]} if assignments.limit(1).count() else set()
    else:
        assigned = {r[Col.DS] for r in assignments.select(Col.DS).distinct().collect()}
    missing = [day for day in days if day not in assigned]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise NoAssignmentsError(f"{AB_ASSIGNMENTS}: no rows for {shown}; run jobs.assign first")
    # Each row is checked against its own partition's day: the same as a run per day.
    good, bad = split_served(served)
    replace_rows(
        quarantine_rows(bad, job.run_id),
        BRONZE_QUARANTINE,
        mine & quarantine.of_target(AB_EXPOSURES),
    )
    record_exposures(exposures_from_served(good, assignments))
    check_served_sets(spark, job, good, assignments)
    first = spark.table(AB_EXPOSURES.qualified_name).where(in_range)
    served_n, bad_n, first_n = (_per_day(df, days) for df in (served, bad, first))
    return {
        day: {
            "served": served_n[day],
            "quarantined": bad_n[day],
            "first_exposures_on_ds": first_n[day],
        }
        for day in days
    }


def check_served_sets(
    spark: SparkSession, job: ExposuresJob, served: DataFrame, assignments: DataFrame
) -> list[tuple[date, CheckResult]]:
    """Cross-check served ``rec_set`` against the assigned variants; write ``ops.dq_checks``.

    Replaces this job's check rows of the run's days (and source) in one commit; logs one
    warning per (experiment, day) with mismatches and ``DQ FAILED`` per failed check.
    """
    counts = [
        RecSetMismatch(
            r[Col.EXPERIMENT_ID],
            r[Col.DS],
            int(r["served_rows"]),
            int(r["mismatched_rows"]),
            int(r["mismatched_units"]),
        )
        # One row per experiment and day: aggregates only.
        for r in rec_set_mismatches(served, assignments).collect()
    ]
    results = evaluate_mismatches(counts, job.max_mismatch_share, job.source)
    for c in counts:
        if c.mismatched_rows:
            log.warning(
                "%s ds=%s: %d of %d served rows (%.2f%%, %d units) showed another rec_set than "
                "the assigned variant's; counted as the assigned arm (intent to treat)",
                c.experiment_id,
                c.ds,
                c.mismatched_rows,
                c.served_rows,
                100 * c.share,
                c.mismatched_units,
            )
    for ds, r in results:
        if not r.passed:
            log.error(
                "DQ FAILED %s on %s ds=%s: %s (threshold %s)",
                r.check_name,
                r.table_name,
                ds,
                r.detail,
                r.threshold,
            )
    now = datetime.now(UTC).replace(tzinfo=None)
    schema = spark.table(OPS_DQ_CHECKS.qualified_name).schema
    rows = spark.createDataFrame(dq_rows(results, job.run_id, now), schema)
    # Owned rows: this check, these days, and this source's label (``]`` ends the all-sources
    # label, ``@<source>`` a single source's).
    suffix = "]" if job.source is None else "]@" + job.source
    owned = (
        _days(job.days)
        & (F.col(Col.CHECK_NAME) == F.lit(CHECK_NAME))
        & F.col(Col.TABLE_NAME).endswith(suffix)
    )
    replace_rows(rows, OPS_DQ_CHECKS, owned)
    return results


def _exposures(job: common.Job[ExposuresJob]) -> int:
    for day, per_day in run(job.spark, job.config).items():
        source = job.config.source or "all"
        log.info("%s ds=%s (source %s): %s", AB_EXPOSURES, day, source, per_day)
    return 0


main = common.job_main("exposures", parse_args, _exposures, exits=((NoAssignmentsError, 1),))


if __name__ == "__main__":
    sys.exit(main())
