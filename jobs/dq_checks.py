"""Data-quality checks of a scoring run's STAGED day, before it is published; fails loudly.

Usage (also ``spark-submit jobs/dq_checks.py ...``)::

    python -m jobs.dq_checks --ds 2026-01-05 [--run-id ID] [--split-id leave_last_out]
        [--min-user-coverage 0.95] [--max-null-rate 0] [--min-list-length 10]
        [--max-age-hours 36] [--no-surfaces]

Checks ``serve.ranked`` of ``--ds`` (what ``jobs/score.py publish`` would copy to
``serve.recommendations``) per recommendation set (row count, NULL/NaN scores or empty
explanations, score range — probabilities in [0, 1] for the ``model`` set — ranks exactly 1..n
without repeated items, no item the user already knows, median list length, and for ``model`` the
share of users with features that got a list), that the day holds the rows of one scoring run
(``--run-id`` when given) and that its newest commit is recent, plus non-empty
``serve.related_items`` and ``serve.trending`` for the day (unless ``--no-surfaces``). In
``recsys_daily`` publishing runs only when this job passes, and its run id is ``--run-id``, which
``jobs/score.py publish --require-dq`` looks up.

Every result goes to ``ops.dq_checks`` (in one commit, replacing this job's earlier rows of the day,
the ``serve.*`` ones; other jobs' checks of the day stay; ``run_id`` = ``--run-id``, else a new
uuid) and is printed. Exit status: 0 all passed, 1 a check failed (each failure logged on one
line), 2 invalid arguments.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from pyspark.sql import functions as F

from jobs import common
from recsys.quality import CheckResult, Thresholds, evaluate
from recsys.quality.observe import observe
from recsys.warehouse.io import replace_rows
from recsys.warehouse.session import build_spark
from recsys.warehouse.tables import (
    OPS_DQ_CHECKS,
    SERVE_RANKED,
    SERVE_RELATED_ITEMS,
    SERVE_TRENDING,
    Col,
    RecSet,
)

log = logging.getLogger("jobs.dq_checks")
#: Every ``ops.dq_checks.table_name`` this job writes starts so; a rerun replaces only those rows.
OWNED_PREFIX: Final = "serve."


@dataclass(frozen=True, slots=True)
class DqArgs:
    """One check run, validated at the edge.

    Attributes:
        ds: Day checked.
        split_id: Split of the features the day was scored on.
        thresholds: What passes.
        surfaces: Also require rows of ``serve.related_items`` and ``serve.trending`` on ds.
        run_id: Scoring run whose staged rows must be checked, or None (any one run).
    """

    ds: date
    split_id: str
    thresholds: Thresholds
    surfaces: bool
    run_id: str | None = None

    def __post_init__(self) -> None:
        common.check_run_id(self.run_id)  # the scoring run's id, as jobs.score --run-id accepts it


def parse_args(argv: Sequence[str] | None) -> DqArgs:
    """Command line -> :class:`DqArgs`; ValueError on bad values."""
    d = Thresholds()
    p = common.job_parser("jobs.dq_checks", __doc__)
    common.add_ds(p, required=True)
    common.add_run_id(p, help="scoring run whose staged day is checked")
    p.add_argument("--split-id", default="leave_last_out")
    p.add_argument("--min-user-coverage", type=float, default=d.min_user_coverage)
    p.add_argument("--max-null-rate", type=float, default=d.max_null_rate)
    p.add_argument("--min-list-length", type=int, default=d.min_list_length)
    p.add_argument("--max-age-hours", type=float, default=d.max_age_hours)
    p.add_argument("--no-surfaces", action="store_true", help="skip related items and trending")
    a = p.parse_args(argv)
    t = Thresholds(a.min_user_coverage, a.max_null_rate, a.min_list_length, a.max_age_hours)
    return DqArgs(a.ds, a.split_id, t, not a.no_surfaces, a.run_id)


def run(args: DqArgs) -> list[CheckResult]:
    """Observe the staged day, judge, write ``ops.dq_checks``; returns every result."""
    spark = build_spark(app_name="dq_checks")
    ds = args.ds
    observed = observe(
        spark,
        ds,
        args.split_id,
        (SERVE_RELATED_ITEMS, SERVE_TRENDING) if args.surfaces else (),
        table=SERVE_RANKED,
        expected_run_id=args.run_id,
    )
    results = evaluate(
        observed,
        args.thresholds,
        SERVE_RANKED.qualified_name,
        RecSet.MODEL,
        (RecSet.MODEL, RecSet.POPULARITY),
    )
    run_id = args.run_id or str(uuid.uuid4())
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (r.check_name, r.table_name, r.observed, r.threshold, r.passed, r.detail, run_id, now, ds)
        for r in results
    ]
    schema = spark.table(OPS_DQ_CHECKS.qualified_name).schema
    # Only this job's rows of the day (tables under serve.): other jobs' checks of the same day,
    # e.g. the exposures job's ab.exposures[...] rows, stay.
    owned = (F.col(Col.DS) == F.lit(ds)) & F.col(Col.TABLE_NAME).startswith(OWNED_PREFIX)
    replace_rows(spark.createDataFrame(rows, schema), OPS_DQ_CHECKS, owned)
    return results


def _check(job: common.Job[DqArgs]) -> int:
    ds = job.config.ds
    results = run(job.config)
    for r in results:
        print(f"{'PASS' if r.passed else 'FAIL'}  {r.check_name:<15} {r.table_name:<40} {r.detail}")
    failed = [r for r in results if not r.passed]
    for r in failed:
        log.error(
            "DQ FAILED %s on %s: %s (threshold %s)",
            r.check_name,
            r.table_name,
            r.detail,
            r.threshold,
        )
    if failed:
        log.error("%d of %d data-quality checks failed for ds=%s", len(failed), len(results), ds)
        return 1
    log.info("all %d data-quality checks passed for ds=%s", len(results), ds)
    return 0


main = common.job_main("dq_checks", parse_args, _check)


if __name__ == "__main__":
    sys.exit(main())
