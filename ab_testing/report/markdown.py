"""Markdown report: the HTML report's tables, with plots as sibling SVG files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ab_testing.report.html import slug
from ab_testing.report.model import ReportData
from ab_testing.report.plots import cumulative_plot_svg, forest_plot_svg
from ab_testing.report.sections import sections

if TYPE_CHECKING:
    from ab_testing.report.tables import Table

_ENTITY = re.compile(r"&(?=#?\w+;)")
_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_XML_HEADER = '<?xml version="1.0" encoding="utf-8" standalone="no"?>\n'


def _cell(text: str) -> str:
    # Pipes end a cell; escape only what could start raw HTML (a tag or an entity), which
    # most Markdown viewers would render, so that "p < 0.05" stays readable.
    text = _ENTITY.sub("&amp;", text)
    text = _TAG.sub("&lt;", text)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(t: Table) -> list[str]:
    lines = [
        "| " + " | ".join(_cell(c) for c in t.columns) + " |",
        "|" + "|".join("---" for _ in t.columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t.rows]
    return lines


def plot_files(report: ReportData, prefix: str) -> list[tuple[str | None, str]]:
    """``(metric, file name)`` of each plot the Markdown report links: the forest plot first
    (metric None), then one cumulative plot per metric with a daily series."""
    names: list[tuple[str | None, str]] = [(None, f"{prefix}-forest.svg")]
    for i, metric in enumerate(report.daily_metrics(), start=1):
        names.append((metric, f"{prefix}-cumulative-{i}-{slug(metric)}.svg"))
    return names


def render_markdown(report: ReportData, plot_prefix: str = "report") -> str:
    """The report as Markdown; plots are linked as ``<plot_prefix>-*.svg`` beside it."""
    if not isinstance(report, ReportData):
        raise TypeError(f"report must be a ReportData, got {report!r}")
    forest, *cumulative = plot_files(report, plot_prefix)
    s = sections(report)
    lines = [
        f"# A/B test report: {_cell(report.experiment_id)}",
        "",
        f"- Dates: {s.dates}",
        f"- Control: {_cell(report.control)}",
    ]
    if report.source:
        lines.append(f"- Input: {_cell(report.source)}")
    lines += [f"- Decisions: {s.decisions}", ""]
    if s.srm is not None:
        lines += [f"> **SRM CHECK FAILED.** {s.srm}", ""]
    lines += ["## Decision summary (overall population)", "", *_table(s.summary), ""]
    if s.offline_online_note is not None:
        lines += ["## Offline vs online", ""]
        if s.offline_online is not None:
            lines += [*_table(s.offline_online), ""]
        lines += [_cell(s.offline_online_note), ""]
    lines += ["## Relative lift by metric", "", f"![Forest plot of relative lift]({forest[1]})"]
    lines += ["", "## Cumulative lift by day", ""]
    if not cumulative:
        lines.append("No daily series was supplied for this report.")
    for metric, name in cumulative:
        lines.append(f"![Cumulative lift of {_cell(metric or '')}]({name})")
    lines += ["", "## Results"]
    for slice_, table in s.results:
        lines += ["", f"### Slice: {_cell(slice_)}", "", *_table(table)]
    lines += ["", "## Methods", ""]
    lines += [f"- {_cell(note)}" for note in s.notes]
    return "\n".join(lines) + "\n"


def write_markdown(report: ReportData, path: str | Path) -> list[Path]:
    """Write the Markdown report to ``path`` and its plots as SVG files beside it.

    Returns the paths written, the Markdown file first.
    """
    out = Path(path)
    prefix = out.stem
    out.write_text(render_markdown(report, prefix), encoding="utf-8")
    written = [out]
    for metric, name in plot_files(report, prefix):
        svg = (
            forest_plot_svg(report)
            if metric is None
            else cumulative_plot_svg(report.daily, metric, report.config.alpha)
        )
        target = out.with_name(name)
        target.write_text(_XML_HEADER + svg, encoding="utf-8")
        written.append(target)
    return written
