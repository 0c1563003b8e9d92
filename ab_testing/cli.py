"""Command line: analyse unit-level experiment data exported from elsewhere.

``python -m ab_testing.cli analyze --help`` documents every flag.  The data is loaded with
pandas, reduced to the stats engine's sufficient statistics per (slice, variant), analysed
by :func:`ab_testing.stats.analyze_experiment`, and written as ``results.csv``,
``report.html`` and ``report.md`` (plus the Markdown report's SVG plots).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import textwrap
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ab_testing.report import DECISION_MEANINGS, ReportData, write_html, write_markdown
from ab_testing.report.tables import decision_label, fmt_interval, fmt_p
from ab_testing.report.units import (
    UnitDataError,
    UnitMetric,
    UnitSchema,
    experiment_from_units,
    read_units,
)
from ab_testing.settings import CORRECTIONS, AnalysisConfig
from ab_testing.stats import analyze_experiment

if TYPE_CHECKING:
    from collections.abc import Sequence

_EXAMPLE = (
    "python -m ab_testing.cli analyze --input exp.csv --unit-col user_id --variant-col variant \\\n"
    "    --control control --metric conversion:binomial --metric spend:mean \\\n"
    "    --metric clicks/impressions:ratio --covariate spend=spend_before \\\n"
    "    --slice-col country --out results/exp"
)
_DECISIONS = "\n".join(
    textwrap.fill(f"{d:<15} {m}", width=92, initial_indent="  ", subsequent_indent=" " * 18)
    for d, m in DECISION_MEANINGS.items()
)
_EPILOG = f"""\
input: one row per randomisation unit (e.g. per user), with the unit id, the variant the unit
  was assigned to, and one numeric column per metric value summed over the experiment window.

metric kinds (--metric NAME:KIND):
  binomial  0/1 per unit (converted or not); reports the rate.  e.g. conversion:binomial
  mean      any number per unit (revenue, sessions); reports the mean.  e.g. spend:mean
  ratio     sum of a numerator over sum of a denominator, both per unit (clicks per
            impression); write NUM/DEN, both columns.  e.g. clicks/impressions:ratio

CUPED covariates (--covariate METRIC=COLUMN): a per-unit value measured BEFORE the experiment
  started that predicts the metric, typically the same metric in the pre-period (spend in the
  4 weeks before).  The analysis subtracts the part of the metric it explains: the lift
  estimate keeps its meaning and its confidence interval narrows.  Never use a value that the
  treatment could have changed.

decisions (overall population, per metric x variant; suppressed slices show no numbers):
{_DECISIONS}

outputs in --out: results.csv (every number), report.html (self-contained), report.md
  (same tables, plots as report-*.svg beside it).  Outputs hold aggregates only: unit ids are
  checked for uniqueness and never written.  Exit status 2 means bad arguments or data, with a
  message naming the argument or column.

example:
  {_EXAMPLE}
"""


def parse_metric(text: str) -> UnitMetric:
    """Parse ``NAME:KIND`` (``NUM/DEN:ratio`` for ratio metrics) for argparse."""
    try:
        return UnitMetric.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_pair(text: str) -> tuple[str, str]:
    """Parse ``KEY=VALUE`` (both non-empty)."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def parse_weights(text: str) -> dict[str, float]:
    """Parse ``variant=weight,variant=weight`` (weights > 0, any scale)."""
    weights: dict[str, float] = {}
    for item in text.split(","):
        name, value = parse_pair(item.strip())
        try:
            w = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"weight of {name!r} must be a number") from None
        if not (math.isfinite(w) and w > 0):
            raise argparse.ArgumentTypeError(f"weight of {name!r} must be > 0, got {value!r}")
        weights[name] = w
    return weights


def _margin(text: str) -> tuple[str, float]:
    metric, value = parse_pair(text)
    try:
        margin = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"margin must be a number, got {value!r}") from None
    if not (math.isfinite(margin) and margin > 0):
        raise argparse.ArgumentTypeError(f"margin must be > 0, got {value!r}")
    return metric, margin


def build_parser() -> argparse.ArgumentParser:
    """The ``ab_testing.cli`` argument parser (one sub-command: ``analyze``)."""
    parser = argparse.ArgumentParser(
        prog="python -m ab_testing.cli",
        description="A/B-test analysis of exported unit-level data.",
        epilog="Run 'python -m ab_testing.cli analyze --help' for the analysis options.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "analyze",
        help="analyse one experiment from a CSV or Parquet file of units",
        description="Analyse one experiment from a file with one row per randomisation unit:\n"
        "tests per metric x variant vs the control, SRM check, multiple-testing correction,\n"
        "power, and decisions; writes results.csv, report.html and report.md.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(command_parser=p)
    req = p.add_argument_group("required arguments")
    req.add_argument(
        "--input",
        required=True,
        type=Path,
        metavar="FILE",
        help="unit-level data, .csv, .csv.gz or .parquet (e.g. --input exp.csv)",
    )
    req.add_argument(
        "--unit-col",
        metavar="COL",
        help="column with the unit id, checked to be unique (one row per unit); omit it only "
        "when the file has no id column (e.g. --unit-col user_id)",
    )
    req.add_argument(
        "--variant-col",
        required=True,
        metavar="COL",
        help="column with the assigned variant (e.g. --variant-col variant)",
    )
    req.add_argument(
        "--control",
        required=True,
        metavar="NAME",
        help="value of the variant column for the control (e.g. --control control)",
    )
    req.add_argument(
        "--metric",
        required=True,
        action="append",
        type=parse_metric,
        metavar="NAME:KIND",
        help="metric to test, repeatable; see 'metric kinds' "
        "below (e.g. --metric conversion:binomial --metric clicks/impressions:ratio)",
    )
    req.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="output folder, created if missing (e.g. --out results/exp-42)",
    )
    opt = p.add_argument_group("optional arguments")
    opt.add_argument(
        "--covariate",
        action="append",
        type=parse_pair,
        default=[],
        metavar="METRIC=COL",
        help="CUPED pre-experiment covariate of a metric, "
        "repeatable; see below (e.g. --covariate spend=spend_before)",
    )
    opt.add_argument(
        "--slice-col",
        metavar="COL",
        help="also analyse each value of this column separately, e.g. country or "
        "platform; never a per-unit id (e.g. --slice-col country)",
    )
    opt.add_argument(
        "--weights",
        type=parse_weights,
        metavar="V=W,...",
        help="intended traffic split, any scale; default equal for the variants "
        "present (e.g. --weights control=0.5,treatment=0.5)",
    )
    opt.add_argument(
        "--guardrail",
        action="append",
        type=_margin,
        default=[],
        metavar="METRIC=MARGIN",
        help="test a metric for non-inferiority instead: "
        "it must not be worse than MARGIN, a fraction of the control mean, "
        "repeatable (e.g. --guardrail latency_ms=0.02 for 2%%)",
    )
    opt.add_argument(
        "--lower-is-better",
        action="append",
        default=[],
        metavar="METRIC",
        help="a metric whose decrease is good, repeatable (e.g. --lower-is-better latency_ms)",
    )
    opt.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="significance level; CIs are 1-alpha (default 0.05, e.g. --alpha 0.01)",
    )
    opt.add_argument(
        "--correction",
        choices=CORRECTIONS,
        default="holm",
        help="multiple-testing correction across metrics x variants: holm "
        "(family-wise), fdr_bh (false discovery rate) or none (default holm)",
    )
    opt.add_argument(
        "--min-units",
        type=int,
        default=50,
        metavar="N",
        help="suppress a slice where an arm has fewer than N units; privacy "
        "(default 50, e.g. --min-units 100)",
    )
    opt.add_argument(
        "--srm-threshold",
        type=float,
        default=0.001,
        metavar="P",
        help="sample-ratio-mismatch check fails below this p (default 0.001)",
    )
    opt.add_argument(
        "--target-effect",
        type=float,
        default=0.05,
        metavar="FRACTION",
        help="relative effect the power is computed for (default 0.05 = 5%%)",
    )
    opt.add_argument(
        "--experiment-id",
        metavar="ID",
        help="name shown in the report (default: the input file name)",
    )
    opt.add_argument(
        "--start",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="first day of the experiment, for the report header",
    )
    opt.add_argument(
        "--end",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="last day of the experiment, for the report header",
    )
    return parser


def _config(args: argparse.Namespace) -> AnalysisConfig:
    if args.start is not None and args.end is not None and args.start > args.end:
        raise UnitDataError(f"--start must be <= --end, got {args.start} > {args.end}")
    try:
        return AnalysisConfig(
            alpha=args.alpha,
            srm_threshold=args.srm_threshold,
            correction=args.correction,
            min_units_per_slice=args.min_units,
            target_relative_effect=args.target_effect,
        )
    except (TypeError, ValueError) as exc:
        raise UnitDataError(f"invalid setting: {exc}") from None


def schema_from_args(args: argparse.Namespace) -> UnitSchema:
    """The unit-data description given by the ``analyze`` arguments."""
    return UnitSchema(
        unit_col=args.unit_col,
        variant_col=args.variant_col,
        control=args.control,
        metrics=args.metric,
        covariates=dict(args.covariate),
        slice_col=args.slice_col,
        weights=args.weights,
        guardrails=dict(args.guardrail),
        lower_is_better=args.lower_is_better,
    )


def summary_lines(report: ReportData) -> list[str]:
    """Short decision summary for the terminal (overall population only)."""
    srm = report.srm_p_value
    lines = [f"experiment {report.experiment_id}: control {report.control}"]
    if report.srm_failed:
        lines.append(f"SRM CHECK FAILED (p = {fmt_p(srm)}): do not act on these results")
    else:
        lines.append(f"SRM check passed (p = {fmt_p(srm)})")
    for r in report.overall_rows:
        label = decision_label(r, report.config.min_units_per_slice)
        if r.decision == "suppressed":
            lines.append(f"  {r.metric} {r.variant}: {label}")
            continue
        p = r.p_value_noninferiority if r.guardrail else r.p_value_adjusted
        lift = fmt_interval(r.rel_lift, r.rel_ci_low, r.rel_ci_high, percent=True)
        kind = "non-inferiority p" if r.guardrail else "adjusted p"
        lines.append(f"  {r.metric} {r.variant}: {lift}, {kind} {fmt_p(p)} -> {label}")
    return lines


def analyze(args: argparse.Namespace) -> list[str]:
    """Run the ``analyze`` command; return the summary lines.  Raises UnitDataError."""
    config = _config(args)
    schema = schema_from_args(args)
    experiment_id = args.experiment_id or args.input.name.split(".")[0]
    experiment = experiment_from_units(read_units(args.input, schema), schema, experiment_id)
    rows = analyze_experiment(experiment, config)
    report = ReportData(
        rows,
        metrics=experiment.metrics,
        config=config,
        start_date=args.start,
        end_date=args.end,
        covariates=schema.covariates,
        source=args.input.name,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame([dataclasses.asdict(r) for r in rows])
    table.to_csv(args.out / "results.csv", index=False)
    write_html(report, args.out / "report.html")
    plots = write_markdown(report, args.out / "report.md")[1:]
    return [
        *summary_lines(report),
        f"wrote results.csv, report.html, report.md and {len(plots)} plot(s) to {args.out}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status.  Bad arguments or data exit with status 2 and
    a message naming the argument or column."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        lines = analyze(args)
    except UnitDataError as exc:
        args.command_parser.error(str(exc))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
