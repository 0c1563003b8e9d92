"""Experiment reports (HTML and Markdown) built from the stats engine's result rows, and the
reduction of unit-level exports to the engine's inputs (used by :mod:`ab_testing.cli`).

Reports carry aggregates only: rows suppressed for small slices show no numbers.
"""

from ab_testing.report.daily import daily_points
from ab_testing.report.html import render_html, write_html
from ab_testing.report.markdown import render_markdown, write_markdown
from ab_testing.report.model import ArmModelVersion, DailyPoint, ReportData
from ab_testing.report.tables import DECISION_MEANINGS
from ab_testing.report.units import (
    UnitDataError,
    UnitMetric,
    UnitSchema,
    experiment_from_units,
    read_units,
)

__all__ = [
    "DECISION_MEANINGS",
    "ArmModelVersion",
    "DailyPoint",
    "ReportData",
    "UnitDataError",
    "UnitMetric",
    "UnitSchema",
    "daily_points",
    "experiment_from_units",
    "read_units",
    "render_html",
    "render_markdown",
    "write_html",
    "write_markdown",
]
