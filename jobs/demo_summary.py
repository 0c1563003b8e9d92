"""What ``make demo`` produced: tables, offline metrics, gate decisions, DQ, experiment decision.

Usage::

    python -m jobs.demo_summary --ds 2027-01-03 --experiment recs_model_vs_popularity \
        --analysis-ds 2027-01-17 [--reports-dir reports/ab]

Reads only; exit status 1 when something the demo should have produced is missing (no published
recommendations for ``--ds``, a failed data-quality check, no results for the experiment), so
``make demo`` fails loudly instead of printing an empty summary.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pandas as pd
from pyspark.sql import functions as F

from jobs.common import Job, job_main
from recsys.settings import PROJECT_ROOT, load_settings
from recsys.warehouse.completion import Pipeline
from recsys.warehouse.session import build_spark
from recsys.warehouse.tables import (
    AB_RESULTS,
    EVAL_OFFLINE_METRICS,
    OPS_COMPLETED_RUNS,
    OPS_DQ_CHECKS,
    OPS_MODEL_DECISIONS,
    SERVE_CANDIDATES,
    SERVE_ITEM_EMBEDDINGS,
    SERVE_RECOMMENDATIONS,
    SERVE_RELATED_ITEMS,
    SERVE_TRENDING,
    SERVE_USER_EMBEDDINGS,
    Col,
)

#: (column title, metric, k) of the offline metrics table.
METRICS = (
    ("NDCG@10", "ndcg", 10),
    ("Recall@10", "recall", 10),
    ("Recall@100", "recall", 100),
    ("MRR", "mrr", 100),
    ("cov@100", "catalog_coverage", 100),
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="jobs.demo_summary", description=__doc__.split("\n\n")[0])
    p.add_argument("--ds", type=date.fromisoformat, required=True, help="recsys_daily day")
    p.add_argument("--experiment", required=True, help="experiment id")
    p.add_argument("--analysis-ds", type=date.fromisoformat, required=True)
    p.add_argument("--reports-dir", type=Path, default=PROJECT_ROOT / "reports" / "ab")
    return p.parse_args(argv)


def _summary(ctx: Job[argparse.Namespace]) -> int:
    args = ctx.config
    settings = load_settings()
    spark = build_spark(settings, app_name="demo_summary")
    problems: list[str] = []
    day = F.col(Col.DS) == F.lit(args.ds)

    print(f"\n== Warehouse {settings.warehouse_root} (ds={args.ds})")
    for table in (
        SERVE_ITEM_EMBEDDINGS,
        SERVE_USER_EMBEDDINGS,
        SERVE_CANDIDATES,
        SERVE_RECOMMENDATIONS,
        SERVE_RELATED_ITEMS,
        SERVE_TRENDING,
    ):
        n = spark.table(table.qualified_name).where(day).count()
        # serve.candidates holds a sample of users only (jobs.score --candidates-sample; 0 = none).
        sample = table == SERVE_CANDIDATES
        print(
            f"  {table.qualified_name:<28} {n:>10,} rows  {table.location(settings.warehouse_root)}"
            + ("  (a sample of users)" if sample else "")
        )
        if n == 0 and not sample:
            problems.append(f"{table} has no rows for ds={args.ds}")

    print("\n== Offline metrics (eval.offline_metrics, slice all, full ranking)")
    rows = (
        spark.table(EVAL_OFFLINE_METRICS.qualified_name)
        .where(day & (F.col(Col.SLICE) == "all"))
        .select(Col.MODEL_NAME, Col.METRIC, Col.K, Col.VALUE)
        .toPandas()
    )
    if rows.empty:
        print("  (none for this ds: training was skipped, scoring used the champions)")
    else:
        columns = {
            title: rows[(rows[Col.METRIC] == m) & (rows[Col.K] == k)].set_index(Col.MODEL_NAME)[
                Col.VALUE
            ]
            for title, m, k in METRICS
        }
        print(pd.DataFrame(columns).round(4).to_string())

    print("\n== Promotion gate (ops.model_decisions)")
    for r in spark.table(OPS_MODEL_DECISIONS.qualified_name).where(day).collect():
        print(f"  {r[Col.MODEL_NAME]:<10} {r[Col.DECISION]:<14} {r[Col.REASON]}")

    checks = spark.table(OPS_DQ_CHECKS.qualified_name).where(day)
    failed = checks.where(~F.col(Col.PASSED)).collect()
    passed = checks.count() - len(failed)
    print(f"\n== Data quality (ops.dq_checks): {passed} passed, {len(failed)} failed")
    for r in failed:
        problems.append(f"DQ {r[Col.CHECK_NAME]} failed on {r[Col.TABLE_NAME]}: {r[Col.DETAIL]}")

    print("\n== Completed runs (ops.completed_runs): what consumers may read")
    done = spark.table(OPS_COMPLETED_RUNS.qualified_name).where(day).collect()
    for r in sorted(done, key=lambda r: (r[Col.PIPELINE], r[Col.SOURCE] or "")):
        print(
            f"  {r[Col.PIPELINE]:<13} {r[Col.SOURCE] or '':<18} run {r[Col.RUN_ID]} "
            f"at {r[Col.COMPLETED_TS]:%Y-%m-%d %H:%M:%S}, {len(r[Col.TABLE_VERSIONS])} tables"
        )
    if not any(r[Col.PIPELINE] == Pipeline.RECSYS_DAILY for r in done):
        problems.append(f"no completed recsys_daily run for ds={args.ds}: apps serve an older day")

    print(f"\n== Experiment {args.experiment} on {args.analysis_ds} (ab.results, slice all)")
    results = (
        spark.table(AB_RESULTS.qualified_name)
        .where(
            (F.col(Col.DS) == F.lit(args.analysis_ds))
            & (F.col(Col.EXPERIMENT_ID) == args.experiment)
            & (F.col(Col.SLICE) == "all")
        )
        .orderBy(Col.METRIC)
        .collect()
    )
    if not results:
        problems.append(f"no ab.results for {args.experiment} on {args.analysis_ds}")
    for r in results:
        lift = "n/a" if r["rel_lift"] is None else f"{r['rel_lift']:+.1%}"
        ci = (
            "" if r["rel_ci_low"] is None else f" [{r['rel_ci_low']:+.1%}, {r['rel_ci_high']:+.1%}]"
        )
        p = "n/a" if r["p_value"] is None else f"{r['p_value']:.4f}"
        seq = "n/a" if r["p_value_sequential"] is None else f"{r['p_value_sequential']:.4f}"
        srm = "n/a" if r["srm_p_value"] is None else f"{r['srm_p_value']:.3f}"
        print(
            f"  {r[Col.METRIC]:<16} {r[Col.VARIANT]} vs {r['control']}: lift {lift}{ci}, "
            f"p {p}, sequential p {seq}, SRM p {srm}, method {r['method']} -> {r['decision']}"
        )
    report = args.reports_dir / args.experiment / args.analysis_ds.isoformat() / "report.html"
    print(f"\n== Report: {report}" + ("" if report.is_file() else "  (MISSING)"))
    if not report.is_file():
        problems.append(f"report {report} is missing")
    for problem in problems:
        print("PROBLEM: " + problem, file=sys.stderr)
    return 1 if problems else 0


main = job_main("demo_summary", parse_args, _summary)


if __name__ == "__main__":
    sys.exit(main())
