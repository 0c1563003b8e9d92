"""Formatted tables and texts shared by the HTML and Markdown reports."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ab_testing.settings import DECISIONS

if TYPE_CHECKING:
    from ab_testing.report.model import ArmModelVersion, ReportData
    from ab_testing.stats.experiment import ResultRow

DASH: Final = "—"

DECISION_MEANINGS: Final[dict[str, str]] = {
    "ship": "primary metric changed significantly (adjusted p < alpha) in the good direction",
    "harm": "primary metric changed significantly in the bad direction: do not ship",
    "no_effect": "no significant change, and the test was powered for the target effect",
    "inconclusive": "no significant change, but the test was under-powered for the target "
    "effect: collect more data or accept the uncertainty",
    "not_worse": "guardrail: shown not worse than its margin (non-inferiority test)",
    "possibly_worse": "guardrail: non-inferiority not shown; may be worse than its margin",
    "srm_fail": "sample-ratio mismatch: numbers are for diagnosis only, do not act on them",
    "not_analysable": "the data cannot be analysed (reason in brackets)",
    "suppressed": "slice too small to publish: no numbers shown",
}
"""One-line meaning of every decision (see :data:`ab_testing.settings.Decision`)."""

METHOD_DESCRIPTIONS: Final[dict[str, str]] = {
    "two_proportion_z": "two-proportion z-test (unpooled Wald CI)",
    "welch_t": "Welch's unequal-variance t-test",
    "delta_ratio": "delta-method test of a ratio of sums (variance per randomisation unit)",
    "cuped_welch_t": "CUPED-adjusted Welch t-test",
    "cuped_delta_ratio": "CUPED-adjusted delta-method ratio test",
    "regression_hc1": "regression adjustment (Lin's interacted OLS, HC1 robust SE, z test)",
    "regression_hc1_leading": "regression adjustment (Lin's interacted OLS, leading-order "
    "HC1 robust SE from second-order sums, z test)",
    "regression_hc2": "regression adjustment (Lin's interacted OLS, HC2 robust SE, z test)",
}

CORRECTION_NAMES: Final[dict[str, str]] = {
    "holm": "Holm–Bonferroni (family-wise error rate)",
    "fdr_bh": "Benjamini–Hochberg (false discovery rate)",
    "none": "none",
}

SUMMARY_COLUMNS: Final = (
    "Metric",
    "Variant",
    "Role",
    "Relative lift [CI]",
    "p",
    "Decision",
    "Meaning",
)
RESULT_COLUMNS: Final = (
    "Metric",
    "Variant",
    "Method",
    "n control",
    "n variant",
    "Mean control",
    "Mean variant",
    "Abs. lift [CI]",
    "SE",
    "z / t",
    "Adj. means (c, v)",
    "Rel. lift [CI]",
    "p",
    "Adj. p",
    "Seq. p",
    "Power",
    "Decision",
)

#: (column title, key in :attr:`ArmModelVersion.offline`) of the offline metrics shown beside the
#: online result: the overall slice of the version's latest offline evaluation.
OFFLINE_COLUMNS: Final = (
    ("NDCG@10 (offline)", "ndcg@10"),
    ("Recall@10 (offline)", "recall@10"),
    ("Recall@100 (offline)", "recall@100"),
)
NOT_EVALUATED: Final = "not evaluated offline"
NO_VERSION: Final = "none (fallback list)"


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of formatted cells; ``row_classes`` holds one CSS class per row (the decision)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    row_classes: tuple[str, ...]


def fmt_num(x: float | None, digits: int = 6) -> str:
    """``digits`` significant digits; a dash for None or NaN."""
    if x is None or not math.isfinite(x):
        return DASH
    return f"{x:.{digits}g}"


def fmt_int(x: int | None) -> str:
    """Thousands-separated integer; a dash for None."""
    return DASH if x is None else f"{x:,}"


def fmt_pct(x: float, signed: bool = True) -> str:
    """Fraction as a percentage with two decimals; a dash for NaN."""
    if not math.isfinite(x):
        return DASH
    return f"{x:+.2%}" if signed else f"{x:.0%}"


def fmt_p(p: float) -> str:
    """p-value with three significant digits; a dash for NaN."""
    return fmt_num(p, 3)


def fmt_interval(x: float, low: float, high: float, percent: bool) -> str:
    """``x [low, high]`` as signed percentages or 4-significant-digit numbers."""
    if not math.isfinite(x):
        return DASH
    if percent:
        return f"{fmt_pct(x)} [{fmt_pct(low)}, {fmt_pct(high)}]"
    bounds = ", ".join(f"{b:+.4g}" if math.isfinite(b) else DASH for b in (low, high))
    return f"{x:+.4g} [{bounds}]"


def decision_label(row: ResultRow, min_units: int) -> str:
    """The decision as shown in the reports (suppressed rows name the unit threshold)."""
    if row.decision == "suppressed":
        return f"suppressed (< {min_units} units)"
    if row.reason == "error" and row.detail:
        return f"{row.decision} (error: {row.detail})"
    if row.reason is not None and row.decision != "srm_fail":
        return f"{row.decision} ({row.reason})"
    return row.decision


def decision_meaning(row: ResultRow, min_units: int) -> str:
    """What the row's decision means for the reader."""
    text = DECISION_MEANINGS[row.decision]
    if row.decision == "suppressed":
        return f"{text} (an arm has fewer than {min_units} units)"
    return text


def _role(row: ResultRow) -> str:
    return "guardrail" if row.guardrail else "primary"


def _summary_p(row: ResultRow) -> str:
    if row.guardrail:
        p = row.p_value_noninferiority
        return f"{fmt_p(p)} (non-inferiority)" if math.isfinite(p) else DASH
    return (
        f"{fmt_p(row.p_value_adjusted)} (adjusted)" if math.isfinite(row.p_value_adjusted) else DASH
    )


def summary_table(report: ReportData) -> Table:
    """One row per metric x variant of the overall slice: decision and what it means."""
    n_min = report.config.min_units_per_slice
    rows: list[tuple[str, ...]] = []
    for r in report.overall_rows:
        suppressed = r.decision == "suppressed"
        rows.append(
            (
                r.metric,
                f"{r.variant} vs {r.control}",
                _role(r),
                DASH
                if suppressed
                else fmt_interval(r.rel_lift, r.rel_ci_low, r.rel_ci_high, percent=True),
                DASH if suppressed else _summary_p(r),
                decision_label(r, n_min),
                decision_meaning(r, n_min),
            )
        )
    return Table(SUMMARY_COLUMNS, tuple(rows), tuple(r.decision for r in report.overall_rows))


def _statistic(row: ResultRow) -> str:
    """``z = 2.1`` or ``t = 2.1 (df 57.3)``; a dash when there is none."""
    if not math.isfinite(row.statistic):
        return DASH
    if row.df is None or not math.isfinite(row.df):
        return f"z = {row.statistic:.3g}"
    return f"t = {row.statistic:.3g} (df {row.df:.3g})"


def _adjusted_means(row: ResultRow) -> str:
    """Regression-adjusted control and variant means (they subtract to the lift)."""
    if not (math.isfinite(row.mean_control_adjusted) and math.isfinite(row.mean_variant_adjusted)):
        return DASH
    return f"{fmt_num(row.mean_control_adjusted)}, {fmt_num(row.mean_variant_adjusted)}"


def _result_cells(row: ResultRow, min_units: int) -> tuple[str, ...]:
    label = decision_label(row, min_units)
    if row.decision == "suppressed":
        # Privacy: a suppressed row carries no number at all, not even n.
        return (row.metric, row.variant, *([DASH] * (len(RESULT_COLUMNS) - 3)), label)
    return (
        row.metric,
        row.variant,
        row.method or DASH,
        fmt_int(row.n_control),
        fmt_int(row.n_variant),
        fmt_num(row.mean_control),
        fmt_num(row.mean_variant),
        fmt_interval(row.abs_lift, row.abs_ci_low, row.abs_ci_high, percent=False),
        fmt_num(row.abs_se),
        _statistic(row),
        _adjusted_means(row),
        fmt_interval(row.rel_lift, row.rel_ci_low, row.rel_ci_high, percent=True),
        fmt_p(row.p_value),
        fmt_p(row.p_value_adjusted),
        fmt_p(row.p_value_sequential),
        fmt_pct(row.power, signed=False),
        label,
    )


def results_tables(report: ReportData) -> list[tuple[str, Table]]:
    """Full results per slice (slices in row order): n, means, lifts, p-values, power."""
    by_slice: dict[str, list[ResultRow]] = {}
    for r in report.rows:
        by_slice.setdefault(r.slice, []).append(r)
    n_min = report.config.min_units_per_slice
    return [
        (
            slice_,
            Table(
                RESULT_COLUMNS,
                tuple(_result_cells(r, n_min) for r in rows),
                tuple(r.decision for r in rows),
            ),
        )
        for slice_, rows in by_slice.items()
    ]


def _online_cell(report: ReportData, arm: ArmModelVersion, metric: str) -> str:
    """The arm's overall relative lift vs control with its CI and p; the control is the
    reference."""
    if arm.variant == report.control:
        return "reference (control)"
    row = next(
        (r for r in report.overall_rows if r.metric == metric and r.variant == arm.variant), None
    )
    if row is None or row.decision == "suppressed" or not math.isfinite(row.rel_lift):
        return DASH if row is None else decision_label(row, report.config.min_units_per_slice)
    lift = fmt_interval(row.rel_lift, row.rel_ci_low, row.rel_ci_high, percent=True)
    return f"{lift}; p {_summary_p(row)}; {row.decision}"


def offline_online_table(report: ReportData) -> Table:
    """One row per arm and model version served to it: the version, its share of the arm's
    exposures, its latest offline metrics, and the arm's online relative lift per metric
    (overall slice). Arms in variant order (control first), versions by share.

    Raises:
        ValueError: the report has no arm versions (``report.arm_versions`` is None).
    """
    if report.arm_versions is None:
        raise ValueError("report.arm_versions: None, the report has no offline vs online data")
    metrics = list(dict.fromkeys(r.metric for r in report.overall_rows if r.metric != "*"))
    order = {v: i for i, v in enumerate([report.control, *report.expected_weights])}
    arms = sorted(
        report.arm_versions,
        key=lambda a: (
            order.get(a.variant, len(order)),
            a.variant,
            -a.share,
            a.model_version or "",
        ),
    )
    columns = (
        "Arm",
        "Model version",
        "Set",
        "Share of arm's exposures",
        *(title for title, _ in OFFLINE_COLUMNS),
        "Offline evaluation",
        *(f"{m}: online rel. lift [CI]" for m in metrics),
    )
    rows: list[tuple[str, ...]] = []
    for arm in arms:
        if arm.evaluated:
            offline = tuple(fmt_num(arm.offline.get(key), 4) for _, key in OFFLINE_COLUMNS)
            ds = arm.offline_ds.isoformat() if arm.offline_ds else "?"
            evaluation = f"ds {ds}, {arm.offline_model or '?'}"
        else:
            offline = (NOT_EVALUATED,) * len(OFFLINE_COLUMNS)
            evaluation = NOT_EVALUATED
        rows.append(
            (
                arm.variant,
                arm.model_version or NO_VERSION,
                arm.rec_set,
                f"{arm.share:.1%} ({arm.exposures:,})",
                *offline,
                evaluation,
                *(_online_cell(report, arm, m) for m in metrics),
            )
        )
    classes = tuple("control" if a.variant == report.control else "variant" for a in arms)
    return Table(columns, tuple(rows), classes)


def offline_online_note(report: ReportData) -> str:
    """What the offline vs online table shows, or why it is empty."""
    if not report.arm_versions:
        return (
            "No served rows were found for this experiment's exposed units (ab.served): the "
            "model versions behind its arms are unknown."
        )
    return (
        "Model versions are those actually served to each arm's exposed units from their first "
        "exposure to the analysis day (ab.served), with their share of the arm's servings; "
        "fallback lists carry no version. Offline metrics are the overall slice of each "
        "version's latest offline evaluation (eval.offline_metrics, full ranking on held-out "
        "interactions). The online lift is per arm (intent to treat): an arm served several "
        "versions shows the same lift on each version's row; p is the adjusted one "
        "(non-inferiority for guardrails)."
    )


def decision_counts(report: ReportData) -> str:
    """E.g. ``"ship: 2, inconclusive: 1"`` over the overall slice, in decision order."""
    counts = Counter(r.decision for r in report.overall_rows)
    return ", ".join(f"{d}: {counts[d]}" for d in DECISIONS if counts[d])


def srm_message(report: ReportData) -> str:
    """The SRM banner text (call only when ``report.srm_failed``)."""
    p = report.srm_p_value
    threshold = report.config.srm_threshold
    counts = srm_counts(report)
    shown = ""
    if counts:
        observed = ", ".join(f"{v} {o:,.0f} vs {e:,.1f}" for v, (o, e) in counts.items())
        shown = f"Units observed vs expected: {observed}. "
    return (
        f"Sample-ratio mismatch: the units per variant differ from the expected split "
        f"(chi-square p = {fmt_p(p)} < {threshold:g}). {shown}Assignment or logging is broken "
        f"for this experiment, or the expected weights are not the design's; the numbers below "
        f"are for diagnosis only. Do not act on them."
    )


def srm_counts(report: ReportData) -> dict[str, tuple[float, float]]:
    """Observed and expected units per variant for the SRM banner, from the overall rows of
    the first metric and ``report.expected_weights``; empty when either is unknown."""
    weights = dict(report.expected_weights)
    first = next((r for r in report.overall_rows if r.n_control is not None), None)
    if first is None or not weights:
        return {}
    observed = {first.control: float(first.n_control or 0)}
    for r in report.overall_rows:
        if r.metric == first.metric and r.n_variant is not None:
            observed[r.variant] = float(r.n_variant)
    if set(observed) != set(weights):
        return {}
    total, scale = sum(observed.values()), sum(weights.values())
    return {v: (observed[v], total * weights[v] / scale) for v in weights}


def methods_notes(report: ReportData) -> list[str]:
    """Methods footnote: tests, CUPED, correction, alpha and the other settings used."""
    cfg = report.config
    methods = sorted({r.method for r in report.rows if r.method})
    tests = "; ".join(f"{m}: {METHOD_DESCRIPTIONS.get(m, m)}" for m in methods) or "none ran"
    notes = [
        f"Tests: {tests}. Relative-lift CIs are Fieller's: they exclude 0 exactly when the "
        "absolute CI does (unbounded when the control mean is not distinct from 0).",
        f"Significance level alpha = {cfg.alpha:g}; confidence intervals are two-sided "
        f"{1 - cfg.alpha:.0%}.",
        f"Multiple-testing correction: {CORRECTION_NAMES[cfg.correction]}, across primary "
        "metrics x variants within each slice (adjusted p); guardrails use a one-sided "
        "non-inferiority test against their margin.",
    ]
    if report.covariates:
        pairs = ", ".join(
            f"{m} adjusted by {c if isinstance(c, str) else ', '.join(c)}"
            for m, c in report.covariates.items()
        )
        notes.append(
            "CUPED / regression adjustment with pre-experiment covariates per unit "
            f"({pairs}): the lift estimate keeps its meaning, its CI narrows. Regression rows "
            "are compared with the same estimator without covariates (variance_reduction, "
            "*_unadjusted columns in results.csv); missing covariate values are filled with "
            "the mean plus a missing indicator."
        )
    else:
        notes.append("CUPED: not used (no pre-experiment covariates).")
    guardrails = [s for s in report.metrics if s.guardrail and s.margin is not None]
    for s in guardrails:
        unit = (
            f"{s.margin:.1%} of the control mean"
            if s.margin_type == "relative"
            else (f"{s.margin:g} (metric units)")
        )
        direction = "higher" if s.higher_is_better else "lower"
        notes.append(f"Guardrail {s.name}: margin {unit}; {direction} is better.")
    notes += [
        f"Sample-ratio mismatch (SRM): chi-square test of units per variant against the "
        f"expected weights; fails when p < {cfg.srm_threshold:g}.",
        f"Power: achieved power for a {cfg.target_relative_effect:.0%} relative effect; "
        f"'no_effect' needs power >= {cfg.power:.0%}.",
        f"Sequential p: always-valid mixture SPRT (tau = {cfg.sequential_tau:g} standard "
        "deviations), safe to read at every daily look; a dash when no daily looks were given.",
        f"Privacy: aggregates only; a slice with fewer than {cfg.min_units_per_slice} units "
        "in an arm is suppressed and shows no numbers.",
    ]
    return notes + list(report.notes)
