"""Data-quality checks of what a scoring run published; fails loudly when one does not pass.

Usage (also ``spark-submit jobs/dq_checks.py ...``)::

    python -m jobs.dq_checks --ds 2026-01-05 [--split-id leave_last_out] [--min-user-coverage 0.95]
        [--max-null-rate 0] [--min-list-length 10] [--max-age-hours 36] [--no-surfaces]

Checks ``serve.recommendations`` of ``--ds`` per recommendation set (row count, NULL/NaN scores
or empty explanations, score range — probabilities in [0, 1] for the ``model`` set — ranks
exactly 1..n without repeated items, no item the user already knows, median list length, and
for ``model`` the share of users with features that got a list) and its freshness (the latest
view shows ``--ds`` and the newest commit is recent), plus non-empty ``serve.related_items`` and
``serve.trending`` for the day (unless ``--no-surfaces``). Every result goes to ``ops.dq_checks``
(day replaced in one commit) and is printed. Exit status: 0 all passed, 1 a check failed (each
failure logged on one line), 2 invalid arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime

from jobs.common import configure_logging
from recsys.quality import CheckResult, Thresholds, evaluate
from recsys.quality.observe import observe
from recsys.warehouse.io import replace_partition
from recsys.warehouse.session import build_spark
from recsys.warehouse.tables import (
    OPS_DQ_CHECKS,
    SERVE_RECOMMENDATIONS,
    SERVE_RELATED_ITEMS,
    SERVE_TRENDING,
    RecSet,
)

log = logging.getLogger("jobs.dq_checks")


def parse_args(argv: Sequence[str] | None) -> tuple[date, str, Thresholds, bool]:
    """Command line -> (ds, split_id, thresholds, check surfaces); ValueError on bad values."""
    d = Thresholds()
    p = argparse.ArgumentParser(prog="jobs.dq_checks", description=__doc__.split("\n\n")[0])
    p.add_argument("--ds", type=date.fromisoformat, required=True)
    p.add_argument("--split-id", default="leave_last_out")
    p.add_argument("--min-user-coverage", type=float, default=d.min_user_coverage)
    p.add_argument("--max-null-rate", type=float, default=d.max_null_rate)
    p.add_argument("--min-list-length", type=int, default=d.min_list_length)
    p.add_argument("--max-age-hours", type=float, default=d.max_age_hours)
    p.add_argument("--no-surfaces", action="store_true", help="skip related items and trending")
    a = p.parse_args(argv)
    t = Thresholds(a.min_user_coverage, a.max_null_rate, a.min_list_length, a.max_age_hours)
    return a.ds, a.split_id, t, not a.no_surfaces


def run(ds: date, split_id: str, thresholds: Thresholds, surfaces: bool) -> list[CheckResult]:
    """Observe, judge, write ``ops.dq_checks``; returns every result."""
    spark = build_spark(app_name="dq_checks")
    observed = observe(
        spark, ds, split_id, (SERVE_RELATED_ITEMS, SERVE_TRENDING) if surfaces else ()
    )
    results = evaluate(
        observed,
        thresholds,
        SERVE_RECOMMENDATIONS.qualified_name,
        RecSet.MODEL,
        (RecSet.MODEL, RecSet.POPULARITY),
    )
    run_id, now = str(uuid.uuid4()), datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (r.check_name, r.table_name, r.observed, r.threshold, r.passed, r.detail, run_id, now, ds)
        for r in results
    ]
    schema = spark.table(OPS_DQ_CHECKS.qualified_name).schema
    replace_partition(spark.createDataFrame(rows, schema), OPS_DQ_CHECKS, ds)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    try:
        ds, split_id, thresholds, surfaces = parse_args(argv)
    except ValueError as err:
        log.error("%s", err)
        return 2
    results = run(ds, split_id, thresholds, surfaces)
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


if __name__ == "__main__":
    sys.exit(main())
