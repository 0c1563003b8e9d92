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
from ab_testing.stats.srm import srm_test

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
  treatment could have changed.  Repeat --covariate to add several columns to one metric;
  the same pair twice is refused.  A metric with covariates is regression-adjusted (Lin's
  interacted OLS, HC1 robust SE, method regression_hc1) and compared with the same estimator
  without covariates (variance_reduction, *_unadjusted in results.csv).  A missing covariate
  value is filled with the covariate's mean plus a missing indicator; the counts are printed.

p-values: "p (two-sided)" is the raw test; "<correction>-adjusted p" is after the multiple-
  testing correction (not shown with --correction none); guardrails show a one-sided
  non-inferiority p.  results.csv has abs_se, statistic, df (empty for z tests), p_value,
  p_value_adjusted and p_value_sides for every row.

decisions (overall population, per metric x variant; suppressed slices show no numbers):
{_DECISIONS}

outputs in --out: results.csv (every number), report.html (self-contained), report.md
  (same tables, plots as report-*.svg beside it).  Outputs hold aggregates only: unit ids are
  checked for uniqueness and never written (--no-unit-col skips the check; the outputs say
  so).  Exit status 2 means bad arguments or data, with a
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


def _positive_number(what: str, value: str) -> float:
    """``value`` as a finite number > 0; an ArgumentTypeError naming ``what`` otherwise."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"{what} must be > 0, got {value!r}")
    return number


def parse_weights(text: str) -> dict[str, float]:
    """Parse ``variant=weight,variant=weight`` (weights > 0, any scale)."""
    weights: dict[str, float] = {}
    for item in text.split(","):
        name, value = parse_pair(item.strip())
        weights[name] = _positive_number(f"weight of {name!r}", value)
    return weights


def _margin(text: str) -> tuple[str, float]:
    metric, value = parse_pair(text)
    return metric, _positive_number("margin", value)


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
    unit = req.add_mutually_exclusive_group(required=True)
    unit.add_argument(
        "--unit-col",
        metavar="COL",
        help="column with the unit id, checked to be unique (one row per unit) "
        "(e.g. --unit-col user_id); or pass --no-unit-col",
    )
    unit.add_argument(
        "--no-unit-col",
        action="store_true",
        help="the file has no unit id column: every row is taken as one unit and uniqueness "
        "is NOT checked (the outputs state this)",
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
        help="pre-experiment covariate of a metric (regression adjustment); repeat to add "
        "several per metric; see below (e.g. --covariate spend=spend_before)",
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
        "--labels",
        choices=("decision", "neutral"),
        default="decision",
        help="terminal wording of results: decision (ship / harm / ...) or neutral "
        "(positive / negative / inconclusive ...) for observational or audit data "
        "(default decision)",
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


def covariates_from_pairs(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Repeated ``--covariate METRIC=COL`` as columns per metric, in the order given (a
    repeat adds a column; an exact repeat is kept so that the schema refuses it by name)."""
    out: dict[str, list[str]] = {}
    for metric, col in pairs:
        out.setdefault(metric, []).append(col)
    return out


def schema_from_args(args: argparse.Namespace) -> UnitSchema:
    """The unit-data description given by the ``analyze`` arguments."""
    return UnitSchema(
        unit_col=args.unit_col,
        variant_col=args.variant_col,
        control=args.control,
        metrics=args.metric,
        covariates=covariates_from_pairs(args.covariate),
        slice_col=args.slice_col,
        weights=args.weights,
        guardrails=dict(args.guardrail),
        lower_is_better=args.lower_is_better,
    )


#: ``--labels neutral`` wording of the decisions (terminal only).
NEUTRAL_LABELS: dict[str, str] = {
    "ship": "positive",
    "harm": "negative",
    "no_effect": "no detectable effect",
    "inconclusive": "inconclusive",
    "not_worse": "within margin",
    "possibly_worse": "possibly outside margin",
}


def simple_ratio(counts: Sequence[float], tolerance: float = 0.03) -> tuple[int, ...] | None:
    """Small integers (each <= 20) whose ratio the counts match within ``tolerance``
    (relative, per arm), other than all-equal; None when there is none.  Used to spot a
    deliberately unequal split (2:1, 9:1, 3:2 ...) analysed with equal weights."""
    low = min(counts)
    if low <= 0:
        return None
    for scale in range(1, 5):
        scaled = [scale * c / low for c in counts]
        ints = tuple(round(x) for x in scaled)
        if max(ints) > 20 or min(ints) < 1:
            return None
        if all(abs(x - k) <= tolerance * k for x, k in zip(scaled, ints, strict=True)):
            divisor = math.gcd(*ints)
            ints = tuple(k // divisor for k in ints)
            return None if len(set(ints)) == 1 else ints
    return None


def srm_lines(counts: dict[str, float], weights: dict[str, float], threshold: float) -> list[str]:
    """SRM result with observed vs expected units per variant and chi-square; on failure,
    a --weights suggestion when the observed split looks like a deliberate simple ratio."""
    res = srm_test(counts, weights, threshold=threshold)
    names = sorted(weights)
    total = sum(counts.get(n, 0.0) for n in names)
    wsum = sum(weights.values())
    detail = ", ".join(
        f"{n} {counts.get(n, 0.0):.0f} (expected {total * weights[n] / wsum:.1f})" for n in names
    )
    df = len(names) - 1
    stat = f"chi-square {res.statistic:.2f}, df {df}, p = {fmt_p(res.p_value)}"
    if res.passed:
        return [f"SRM check passed ({stat}); units: {detail}"]
    lines = [
        f"SRM CHECK FAILED ({stat} < {threshold:g}): do not act on these results",
        f"  units observed vs expected: {detail}",
    ]
    ratio = simple_ratio([counts.get(n, 0.0) for n in names])
    if ratio is not None:
        split = ",".join(f"{n}={k}" for n, k in zip(names, ratio, strict=True))
        lines.append(
            f"  the observed split is close to {':'.join(map(str, ratio))}; if that split was "
            f"intended, pass --weights {split}"
        )
    return lines


def summary_lines(
    report: ReportData,
    srm: Sequence[str] | None = None,
    labels: str = "decision",
) -> list[str]:
    """Short summary for the terminal (overall population only): SRM (``srm`` lines when
    given), then per metric x variant the relative lift, the raw two-sided p, the adjusted p
    (not with correction "none"), covariate fills, and the decision."""
    correction = report.config.correction
    lines = [f"experiment {report.experiment_id}: control {report.control}"]
    if srm is not None:
        lines += srm
    elif report.srm_failed:
        p = fmt_p(report.srm_p_value)
        lines.append(f"SRM CHECK FAILED (p = {p}): do not act on these results")
    else:
        lines.append(f"SRM check passed (p = {fmt_p(report.srm_p_value)})")
    for r in report.overall_rows:
        label = decision_label(r, report.config.min_units_per_slice)
        if labels == "neutral" and r.decision in NEUTRAL_LABELS:
            label = label.replace(r.decision, NEUTRAL_LABELS[r.decision], 1)
        if r.decision == "suppressed":
            lines.append(f"  {r.metric} {r.variant}: {label}")
            continue
        lift = fmt_interval(r.rel_lift, r.rel_ci_low, r.rel_ci_high, percent=True)
        if r.guardrail:
            ps = f"non-inferiority p (one-sided) {fmt_p(r.p_value_noninferiority)}"
        else:
            ps = f"p (two-sided) {fmt_p(r.p_value)}"
            if correction != "none":
                ps += f", {correction}-adjusted p {fmt_p(r.p_value_adjusted)}"
        lines.append(f"  {r.metric} {r.variant}: {lift}, {ps} -> {label}")
        if r.method and r.method.startswith("regression"):
            lines.append(
                f"    {r.method} on {', '.join(r.covariates)}: variance reduction "
                f"{r.variance_reduction:.1%}; unadjusted p (two-sided) "
                f"{fmt_p(r.p_value_unadjusted)}"
            )
        filled = [
            f"{name} {dict(r.n_filled_control).get(name, 0)} control / "
            f"{dict(r.n_filled_variant).get(name, 0)} {r.variant}"
            for name in dict.fromkeys(
                [n for n, _ in r.n_filled_control] + [n for n, _ in r.n_filled_variant]
            )
        ]
        if any(dict(r.n_filled_control).values()) or any(dict(r.n_filled_variant).values()):
            lines.append(
                f"    missing covariate values filled with the mean + indicator: "
                f"{'; '.join(filled)} units"
            )
    return lines


def analyze(args: argparse.Namespace) -> list[str]:
    """Run the ``analyze`` command; return the summary lines.  Raises UnitDataError."""
    config = _config(args)
    schema = schema_from_args(args)
    experiment_id = args.experiment_id or args.input.name.split(".")[0]
    experiment = experiment_from_units(read_units(args.input, schema), schema, experiment_id)
    rows = analyze_experiment(experiment, config)
    srm = srm_lines(
        dict(experiment.assignment_counts or {}),
        dict(experiment.expected_weights),
        config.srm_threshold,
    )
    notes = [" ".join(line.strip() for line in srm) + "."]
    unchecked = []
    if args.no_unit_col:
        unchecked = [
            "unit ids NOT checked: run with --no-unit-col, every row was taken as one unit and "
            "uniqueness of units was not checked"
        ]
        notes += [unchecked[0].capitalize() + "."]
    report = ReportData(
        rows,
        metrics=experiment.metrics,
        config=config,
        start_date=args.start,
        end_date=args.end,
        covariates={m: tuple(c) for m, c in schema.covariates.items()},
        source=args.input.name,
        notes=notes,
        expected_weights=experiment.expected_weights,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame([dataclasses.asdict(r) for r in rows])
    table.to_csv(args.out / "results.csv", index=False)
    write_html(report, args.out / "report.html")
    plots = write_markdown(report, args.out / "report.md")[1:]
    return [
        *unchecked,
        *summary_lines(report, srm, labels=args.labels),
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
