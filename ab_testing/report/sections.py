"""What the HTML and the Markdown report both show, built once from a :class:`ReportData`.

The renderers (:mod:`ab_testing.report.html`, :mod:`ab_testing.report.markdown`) differ only in
markup and in how they carry the plots; the text and tables of each section come from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ab_testing.report.tables import (
    decision_counts,
    methods_notes,
    offline_online_note,
    offline_online_table,
    results_tables,
    srm_message,
    summary_table,
)

if TYPE_CHECKING:
    from ab_testing.report.model import ReportData
    from ab_testing.report.tables import Table


@dataclass(frozen=True, slots=True)
class Sections:
    """The report's text and tables, section by section.

    Attributes:
        dates: The analysis window for the header (see :func:`date_range`).
        decisions: Decision counts over the overall slice, ``"none"`` without any.
        srm: The SRM banner's message; None when the check passed.
        summary: The decision summary (overall population).
        offline_online: The offline-vs-online table; None when no arm versions are known or
            none was served.
        offline_online_note: The note under it; None when the report has no arm versions (then
            the whole section is left out).
        results: ``(slice, table)`` per slice.
        notes: The methods notes.
    """

    dates: str
    decisions: str
    srm: str | None
    summary: Table
    offline_online: Table | None
    offline_online_note: str | None
    results: list[tuple[str, Table]]
    notes: list[str]


def date_range(report: ReportData) -> str:
    """The analysis window for the header (``"not given"`` when unknown)."""
    start, end = report.start_date, report.end_date
    if start is None and end is None:
        return "not given"
    return f"{start.isoformat() if start else '?'} to {end.isoformat() if end else '?'}"


def sections(report: ReportData) -> Sections:
    """The sections of ``report`` that both renderers show."""
    versions = report.arm_versions
    return Sections(
        dates=date_range(report),
        decisions=decision_counts(report) or "none",
        srm=srm_message(report) if report.srm_failed else None,
        summary=summary_table(report),
        offline_online=offline_online_table(report) if versions else None,
        offline_online_note=offline_online_note(report) if versions is not None else None,
        results=results_tables(report),
        notes=methods_notes(report),
    )
