"""Report plots (matplotlib, no pyplot state) rendered to self-contained SVG text."""

from __future__ import annotations

import io
import math
import re
from typing import TYPE_CHECKING, Final

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes

    from ab_testing.report.model import DailyPoint, ReportData
    from ab_testing.stats.experiment import ResultRow

DECISION_COLOURS: Final[dict[str, str]] = {
    "ship": "#1a7f37",
    "not_worse": "#1a7f37",
    "harm": "#cf222e",
    "possibly_worse": "#bc4c00",
    "no_effect": "#57606a",
    "inconclusive": "#8c959f",
    "srm_fail": "#8250df",
    "not_analysable": "#8c959f",
    "suppressed": "#8c959f",
}
VARIANT_COLOURS: Final = ("#0969da", "#bc4c00", "#1a7f37", "#8250df", "#cf222e", "#57606a")

_ID_OR_REF = re.compile(r'(\bid="|url\(#|href="#)')


def _to_svg(fig: Figure) -> str:
    buf = io.StringIO()
    # Text as paths (no font files needed by the viewer); a fixed salt makes ids reproducible.
    with mpl.rc_context({"svg.fonttype": "path", "svg.hashsalt": "ab-testing-report"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def scope_svg_ids(svg: str, prefix: str) -> str:
    """Prefix every ``id`` of ``svg`` and every reference to one, so that several SVGs can be
    inlined in one HTML document without their clip paths and glyphs colliding."""
    return _ID_OR_REF.sub(lambda m: f"{m.group(1)}{prefix}-", svg)


def guardrail_line(report: ReportData, row: ResultRow) -> float | None:
    """The guardrail margin as a relative lift (the bad side of zero), or None.

    Absolute margins are converted with the control mean: margin / |mean_control|.
    """
    spec = report.spec(row.metric)
    if spec is None or not spec.guardrail or spec.margin is None:
        return None
    margin = spec.margin
    if spec.margin_type == "absolute":
        if not math.isfinite(row.mean_control) or row.mean_control == 0:
            return None
        margin = spec.margin / abs(row.mean_control)
    return -margin if spec.higher_is_better else margin


def _finite(row: ResultRow) -> bool:
    return row.decision != "suppressed" and all(
        math.isfinite(v) for v in (row.rel_lift, row.rel_ci_low, row.rel_ci_high)
    )


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def forest_plot_svg(report: ReportData) -> str:
    """CI forest plot of the relative lift per metric x variant (overall slice).

    Points are coloured by decision; the zero line and guardrail margins are drawn.
    """
    rows = [r for r in report.overall_rows if _finite(r)]
    fig = Figure(figsize=(7.5, 1.4 + 0.42 * max(len(rows), 1)))
    ax = fig.add_subplot()
    if not rows:
        _empty(ax, "no analysable results in the overall slice")
        return _to_svg(fig)
    ys = list(range(len(rows)))[::-1]
    ax.axvline(0.0, color="#24292f", linewidth=1.0, label="no change")
    margin_drawn = False
    for y, row in zip(ys, rows, strict=True):
        colour = DECISION_COLOURS.get(row.decision, "#57606a")
        ax.hlines(y, row.rel_ci_low, row.rel_ci_high, color=colour, linewidth=2.2)
        ax.plot([row.rel_lift], [y], "o", color=colour, markersize=6)
        line = guardrail_line(report, row)
        if line is not None:
            ax.vlines(
                line,
                y - 0.4,
                y + 0.4,
                color="#cf222e",
                linestyles="dashed",
                linewidth=1.2,
                label="_nolegend_" if margin_drawn else "guardrail margin",
            )
            margin_drawn = True
    labels = [f"{r.metric} · {r.variant}" + (" (guardrail)" if r.guardrail else "") for r in rows]
    ax.set_yticks(ys, labels)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(f"relative lift vs {report.control} ({1 - report.config.alpha:.0%} CI)")
    ax.grid(axis="x", color="#d0d7de", linewidth=0.6)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return _to_svg(fig)


def cumulative_plot_svg(points: Sequence[DailyPoint], metric: str, alpha: float) -> str:
    """Cumulative relative lift by day for one metric: a line and CI band per variant."""
    series: dict[str, list[DailyPoint]] = {}
    for p in points:
        if p.metric == metric:
            series.setdefault(p.variant, []).append(p)
    fig = Figure(figsize=(7.5, 3.2))
    ax = fig.add_subplot()
    if not series:
        _empty(ax, f"no daily series for {metric}")
        return _to_svg(fig)
    ax.axhline(0.0, color="#24292f", linewidth=1.0)
    for i, (variant, pts) in enumerate(series.items()):
        pts = sorted(pts, key=lambda p: p.day)
        colour = VARIANT_COLOURS[i % len(VARIANT_COLOURS)]
        days = np.array([p.day for p in pts], dtype="datetime64[D]")
        last_p = next(
            (p.p_sequential for p in reversed(pts) if math.isfinite(p.p_sequential)), None
        )
        label = variant if last_p is None else f"{variant} (always-valid p = {last_p:.3g})"
        ax.fill_between(
            days,
            [p.ci_low for p in pts],
            [p.ci_high for p in pts],
            color=colour,
            alpha=0.18,
            linewidth=0,
        )
        ax.plot(days, [p.lift for p in pts], "-o", color=colour, markersize=3, label=label)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("cumulative relative lift")
    ax.set_title(f"{metric}: cumulative lift ({1 - alpha:.0%} CI band)", fontsize=10)
    ax.grid(color="#d0d7de", linewidth=0.6)
    ax.legend(loc="best", fontsize=8, frameon=False)
    fig.autofmt_xdate()
    return _to_svg(fig)
