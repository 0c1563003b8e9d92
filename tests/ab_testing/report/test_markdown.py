"""The Markdown report: same tables as the HTML one, plots as sibling SVG files."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ab_testing.report import ReportData, render_markdown, write_markdown
from ab_testing.report.tables import (
    DASH,
    NOT_EVALUATED,
    RESULT_COLUMNS,
    SUMMARY_COLUMNS,
    fmt_interval,
)


def _tables(markdown: str) -> list[list[list[str]]]:
    """Every pipe table as rows of cells (separator rows dropped)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if not all(set(c) <= {"-"} for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_same_tables_as_html(markdown: str, report: ReportData) -> None:
    summary, *results = _tables(markdown)
    assert tuple(summary[0]) == SUMMARY_COLUMNS
    assert len(summary) - 1 == len(report.overall_rows)
    assert [tuple(t[0]) for t in results] == [RESULT_COLUMNS] * 3
    assert [len(t) - 1 for t in results] == [4, 4, 4]
    assert all(len(row) == len(RESULT_COLUMNS) for t in results for row in t)
    revenue = next(r for r in results[0] if r[0] == "revenue")
    assert revenue[-1] == "ship"
    assert [line for line in markdown.splitlines() if line.startswith("### Slice")] == [
        "### Slice: all",
        "### Slice: segment=big",
        "### Slice: segment=tiny",
    ]


def test_header_and_methods(markdown: str) -> None:
    assert markdown.startswith("# A/B test report: exp-report\n")
    assert "- Dates: 2024-06-01 to 2024-06-07" in markdown
    methods = markdown[markdown.index("## Methods") :]
    for needle in ("alpha = 0.05", "Holm", "CUPED", "revenue adjusted by pre_revenue", "latency"):
        assert needle in methods
    assert "p < 0.001" in methods  # a bare "<" is not escaped when it cannot start a tag


def test_suppressed_rows_show_no_numbers(markdown: str) -> None:
    tiny = _tables(markdown)[-1][1:]
    for row in tiny:
        assert row[-1] == "suppressed (< 50 units)"
        assert row[2:-1] == [DASH] * (len(row) - 3)


def test_srm_notice_iff_srm_fails(markdown: str, srm_report: ReportData) -> None:
    assert "SRM CHECK FAILED" not in markdown
    srm = render_markdown(srm_report)
    assert "> **SRM CHECK FAILED.**" in srm


def test_no_unit_id_leaks(markdown: str, srm_report: ReportData, unit_ids: list[str]) -> None:
    for text in (markdown, render_markdown(srm_report)):
        assert "uid" not in text
        assert not any(uid in text for uid in unit_ids)


def test_write_markdown_writes_linked_svgs(tmp_path: Path, report: ReportData) -> None:
    written = write_markdown(report, tmp_path / "exp.md")
    assert [p.name for p in written] == [
        "exp.md",
        "exp-forest.svg",
        "exp-cumulative-1-conversion.svg",
        "exp-cumulative-2-revenue.svg",
    ]
    text = written[0].read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == [p.name for p in written[1:]]
    for svg in written[1:]:
        root = ET.parse(svg).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) > 10


def test_cells_are_escaped(report: ReportData) -> None:
    rows = [dataclasses.replace(r, metric="a|b <i>x</i>") for r in report.rows]
    text = render_markdown(ReportData(rows, config=report.config))
    assert "a\\|b &lt;i>x&lt;/i>" in text
    assert "No daily series" in text
    assert all(len(row) == len(RESULT_COLUMNS) for row in _tables(text)[1])


def test_offline_vs_online_rows_per_arm_and_version(versions_report: ReportData) -> None:
    markdown = render_markdown(versions_report)
    section = markdown[markdown.index("## Offline vs online") : markdown.index("## Relative lift")]
    (table,) = _tables(section)
    header, *rows = table
    assert header[:8] == [
        "Arm",
        "Model version",
        "Set",
        "Share of arm's exposures",
        "NDCG@10 (offline)",
        "Recall@10 (offline)",
        "Recall@100 (offline)",
        "Offline evaluation",
    ]
    assert header[8:] == [
        f"{m}: online rel. lift [CI]"
        for m in ("conversion", "revenue", "clicks/impressions", "latency")
    ]
    # Control first, then the treatment's versions by share; the fallback has no version.
    assert [r[:4] for r in rows] == [
        ["control", "popularity-2024-05-31", "popularity", "100.0% (4,000)"],
        ["treatment", "tt1+rk1", "model", "75.0% (3,000)"],
        ["treatment", "tt2+rk2", "model", "22.5% (900)"],
        ["treatment", "none (fallback list)", "popularity", "2.5% (100)"],
    ]
    control, evaluated, newer, fallback = rows
    assert control[4:8] == ["0.0317", "0.0523", "0.2071", "ds 2024-05-31, popularity"]
    assert evaluated[4:8] == ["0.0642", "0.0911", "0.3125", "ds 2024-05-31, two_tower+ranker"]
    # A version without an offline evaluation says so in every offline cell, never blank.
    assert newer[4:8] == [NOT_EVALUATED] * 4
    assert fallback[4:8] == [NOT_EVALUATED] * 4
    assert set(control[8:]) == {"reference (control)"}
    revenue = next(r for r in versions_report.overall_rows if r.metric == "revenue")
    lift = fmt_interval(revenue.rel_lift, revenue.rel_ci_low, revenue.rel_ci_high, percent=True)
    # The lift is the arm's: every treatment version's row shows it, with p and the decision.
    for row in (evaluated, newer, fallback):
        assert row[9].startswith(lift + "; p ")
        assert row[9].endswith("(adjusted); ship")
        assert "(non-inferiority)" in row[11]
    assert "intent to treat" in section


def test_offline_vs_online_only_with_versions(markdown: str, report: ReportData) -> None:
    assert "Offline vs online" not in markdown  # no version data (e.g. the CLI): no section
    empty = render_markdown(dataclasses.replace(report, arm_versions=()))
    section = empty[empty.index("## Offline vs online") : empty.index("## Relative lift")]
    assert _tables(section) == []
    assert "No served rows were found" in section
