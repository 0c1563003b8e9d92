"""Analyse A/B experiments for one day: outcome joins -> sufficient statistics -> tests -> reports.

Usage::

    python -m jobs.ab_analyze --config experiments.yaml --metrics metrics.yaml --ds 2026-01-20 \
        [--experiment two_tower_v2 ...] [--reports-dir reports] [--min-units 50]

For every experiment that has started by ``--ds`` (or those named), Spark joins ``ab.exposures``
to ``ab.events`` and writes cumulative sufficient statistics per daily look to
``ab.metric_stats``; the stats engine (pure Python) tests them; results go to ``ab.results`` and
a self-contained HTML report plus Markdown to ``<reports-dir>/<experiment>/<ds>/``. In both
tables the job replaces only the rows it owns, ``ds = --ds AND experiment_id IN (the experiments
it analyses)``, in one commit each, and reads back only those experiments' statistics: runs for
different experiments of the same day (the DAG maps one per experiment, two at a time) leave each
other's rows alone, and a rerun replaces its experiments' rows without duplicating them. Two such
writers that commit to the same ``ds`` partition at once can meet a Delta write conflict; the
loser retries (``recsys.warehouse.io.with_conflict_retry``), and as each replaces disjoint rows
the result equals a sequential run. One experiment that cannot be analysed yields result
rows with a reason and never stops the others.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ab_testing.analysis_input import experiment_data
from ab_testing.config import load_config
from ab_testing.config_model import Experiment, ExperimentsConfig
from ab_testing.metrics_config import MetricsConfig, load_metrics
from ab_testing.outcomes import sufficient_stats
from ab_testing.report import ReportData, daily_points, write_html, write_markdown
from ab_testing.settings import AnalysisConfig
from ab_testing.stats import ExperimentData, ResultRow, analyze_experiments
from ab_testing.stats.analysis import error_row
from jobs.common import Job, job_main
from recsys.settings import PROJECT_ROOT
from recsys.warehouse.io import replace_rows
from recsys.warehouse.session import build_spark
from recsys.warehouse.tables import (
    AB_EVENTS,
    AB_EXPOSURES,
    AB_METRIC_STATS,
    AB_RESULTS,
    BRONZE_USERS,
    Col,
)

log = logging.getLogger("jobs.ab_analyze")

#: Users with at least this many interactions form the ``heavy`` slice, the rest ``light``.
HEAVY_USER_MIN_INTERACTIONS = 50


@dataclass(frozen=True, slots=True)
class AnalyzeArgs:
    """Validated command line of the job."""

    experiments: ExperimentsConfig
    metrics: MetricsConfig
    ds: date
    only: frozenset[str]
    reports_dir: Path
    analysis: AnalysisConfig
    run_id: str


def parse_args(argv: Sequence[str] | None) -> AnalyzeArgs:
    """Command line -> validated :class:`AnalyzeArgs` (the edge where input is checked).

    Raises:
        ValueError: a config file is missing, unreadable or invalid, or an option is out of
            range (the message names the file, field or option).
        TypeError: a config value has the wrong type (named the same way).
    """
    parser = argparse.ArgumentParser(prog="jobs.ab_analyze", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path, help="experiments YAML")
    parser.add_argument("--metrics", required=True, type=Path, help="metrics YAML")
    parser.add_argument("--ds", required=True, type=date.fromisoformat, help="analysis day")
    parser.add_argument("--experiment", action="append", default=[], help="only these ids")
    parser.add_argument("--reports-dir", type=Path, default=PROJECT_ROOT / "reports" / "ab")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--correction", default="holm", choices=["holm", "fdr_bh", "none"])
    parser.add_argument("--min-units", type=int, default=50, help="smallest slice reported")
    parser.add_argument("--run-id", default=None)
    args = parser.parse_args(argv)
    experiments = load_config(args.config)
    unknown = set(args.experiment) - experiments.experiment_ids
    if unknown:
        parser.error(f"--experiment: not in {args.config}: {sorted(unknown)}")
    return AnalyzeArgs(
        experiments=experiments,
        metrics=load_metrics(args.metrics),
        ds=args.ds,
        only=frozenset(args.experiment),
        reports_dir=args.reports_dir,
        analysis=AnalysisConfig(
            alpha=args.alpha, correction=args.correction, min_units_per_slice=args.min_units
        ),
        run_id=args.run_id or uuid.uuid4().hex,
    )


def owned_rows(ds: date, experiment_ids: Sequence[str]) -> Column:
    """The rows of ``ab.metric_stats``/``ab.results`` one run owns: its day, its experiments.

    Raises:
        ValueError: ``experiment_ids`` is empty (the condition would own nothing).
    """
    if not experiment_ids:
        raise ValueError("experiment_ids: expected at least one id, got []")
    return (F.col(Col.DS) == F.lit(ds)) & F.col(Col.EXPERIMENT_ID).isin(sorted(experiment_ids))


def looks_for(experiment: Experiment, ds: date) -> list[date]:
    """Daily looks from the experiment's start to ``ds`` (or its last day, if it has ended)."""
    last = min(ds, experiment.end - timedelta(days=1))
    return [experiment.start + timedelta(days=i) for i in range((last - experiment.start).days + 1)]


def unit_slices(spark: SparkSession) -> DataFrame:
    """(unit_id, slice): light or heavy users by their interactions in the latest delivery."""
    users = spark.table(BRONZE_USERS.qualified_name)
    latest = users.agg(F.max(Col.DS)).first()
    users = users.where(F.col(Col.DS) == F.lit(latest[0] if latest else None))
    heavy = F.col(Col.N_INTERACTIONS) >= F.lit(HEAVY_USER_MIN_INTERACTIONS)
    return users.select(
        F.col(Col.USER_ID).cast("string").alias(Col.UNIT_ID),
        F.when(heavy, F.lit("heavy_users")).otherwise(F.lit("light_users")).alias(Col.SLICE),
    ).distinct()


def compute_stats(
    spark: SparkSession, args: AnalyzeArgs, chosen: Sequence[Experiment]
) -> DataFrame:
    """Sufficient statistics of every chosen experiment (one Spark plan per experiment, unioned)."""
    exposures = spark.table(AB_EXPOSURES.qualified_name)
    events = spark.table(AB_EVENTS.qualified_name).where(F.col(Col.DS) <= F.lit(args.ds))
    slices = unit_slices(spark)
    parts = []
    for exp in chosen:
        metrics = args.metrics.for_experiment(exp.id)
        if not metrics:
            log.warning("%s: no metrics configured, skipped", exp.id)
            continue
        mine = exposures.where(
            (F.col(Col.EXPERIMENT_ID) == F.lit(exp.id))
            & (F.to_date(Col.FIRST_EXPOSURE_TS) <= F.lit(args.ds))
        )
        parts.append(sufficient_stats(mine, events, metrics, looks_for(exp, args.ds), slices))
    if not parts:
        raise ValueError("--experiment/--metrics: nothing to analyse for " + str(args.ds))
    stats = parts[0]
    for part in parts[1:]:
        stats = stats.unionByName(part)
    return stats.withColumn(Col.DS, F.lit(args.ds))


def analyse(
    args: AnalyzeArgs, chosen: Sequence[Experiment], rows: Sequence[dict[str, object]]
) -> tuple[list[ResultRow], dict[str, tuple[ExperimentData, list[date]]]]:
    """Engine input per experiment and the result rows of all of them (failures isolated)."""
    inputs: dict[str, tuple[ExperimentData, list[date]]] = {}
    failed: list[ResultRow] = []
    for exp in chosen:
        mine = [r for r in rows if r[Col.EXPERIMENT_ID] == exp.id]
        weights = {v.id: float(v.weight) for v in exp.variants}
        try:
            inputs[exp.id] = experiment_data(
                exp.id, exp.control.id, weights, args.metrics.for_experiment(exp.id), mine
            )
        except (TypeError, ValueError) as err:
            # Its statistics could not even be built: one error row, the others go on.
            log.error("%s: cannot build statistics: %s", exp.id, err)
            shell = ExperimentData(
                experiment_id=exp.id,
                control=exp.control.id,
                expected_weights=weights,
                metrics=[],
                cells=[],
            )
            failed.append(error_row(shell, err))
    results = analyze_experiments([d for d, _ in inputs.values()], args.analysis)
    return failed + results, inputs


def results_frame(
    spark: SparkSession, rows: Sequence[ResultRow], ds: date, run_id: str
) -> DataFrame:
    schema = spark.table(AB_RESULTS.qualified_name).schema
    records = []
    for row in rows:
        values = asdict(row)
        record = {f.name: values.get(f.name) for f in schema.fields}
        for key, value in record.items():
            if isinstance(value, float) and math.isnan(value):
                record[key] = None
        record[Col.RUN_ID], record[Col.DS] = run_id, ds
        for key in ("n_control", "n_variant"):
            count = record[key]
            if isinstance(count, int | float):
                record[key] = int(count)
        records.append(record)
    return spark.createDataFrame(records, schema)


def write_reports(
    args: AnalyzeArgs,
    rows: Sequence[ResultRow],
    inputs: dict[str, tuple[ExperimentData, list[date]]],
) -> list[Path]:
    written = []
    for exp_id, (data, looks) in inputs.items():
        mine = [r for r in rows if r.experiment_id == exp_id]
        if not mine:
            continue
        daily = daily_points(data, looks, args.analysis) if looks else []
        definitions = args.metrics.for_experiment(exp_id)
        covariates = {
            m.name: tuple(
                f"{c.covariate_name} ({c.event} {c.agg}, {c.pre_window_days} days before first "
                "exposure)"
                for c in m.covariates
            )
            for m in definitions
            if m.covariates
        }
        report = ReportData(
            rows=mine,
            daily=daily,
            metrics=data.metrics,
            config=args.analysis,
            start_date=looks[0] if looks else None,
            end_date=args.ds,
            covariates=covariates,
            source="ab.metric_stats ds=" + args.ds.isoformat(),
            expected_weights=data.expected_weights,
        )
        out = args.reports_dir / exp_id / args.ds.isoformat()
        out.mkdir(parents=True, exist_ok=True)
        written.append(write_html(report, out / "report.html"))
        write_markdown(report, out / "report.md")
    return written


def _analyze(ctx: Job[AnalyzeArgs]) -> int:
    args = ctx.config
    chosen = [
        e
        for e in args.experiments.experiments
        if e.start <= args.ds and (not args.only or e.id in args.only)
    ]
    if not chosen:
        log.error("no experiment has started by %s", args.ds)
        return 1
    spark = build_spark(app_name="ab_analyze")
    owned = owned_rows(args.ds, [e.id for e in chosen])
    stats = compute_stats(spark, args, chosen)
    replace_rows(stats, AB_METRIC_STATS, owned)
    # Aggregates of the chosen experiments only (variants x metrics x slices x looks).
    rows = [r.asDict() for r in spark.table(AB_METRIC_STATS.qualified_name).where(owned).collect()]
    results, inputs = analyse(args, chosen, rows)
    replace_rows(results_frame(spark, results, args.ds, args.run_id), AB_RESULTS, owned)
    for path in write_reports(args, results, inputs):
        log.info("report: %s", path)
    for r in results:
        if r.slice == "all":
            log.info(
                "%s %s %s vs %s: %s (rel %.4f, p %.3g)",
                r.experiment_id,
                r.metric,
                r.variant,
                r.control,
                r.decision,
                r.rel_lift,
                r.p_value,
            )
    return 0


main = job_main("ab_analyze", parse_args, _analyze)


if __name__ == "__main__":
    sys.exit(main())
