"""The HTML report: structure, self-containment, SRM banner, suppression and privacy."""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from ab_testing.report import (
    ArmModelVersion,
    DailyPoint,
    ReportData,
    daily_points,
    render_html,
    write_html,
)
from ab_testing.report.tables import DASH, NOT_EVALUATED
from ab_testing.settings import AnalysisConfig
from ab_testing.stats import Cell, ExperimentData, MetricSpec, SampleStats, analyze_experiment


class _Tables(HTMLParser):
    """Cell texts of every ``<table>`` by id, and the ids of all elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.ids: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if attr.get("id"):
            self.ids.append(str(attr["id"]))
        if tag == "table":
            self._table = str(attr["id"])
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(html: str) -> _Tables:
    parser = _Tables()
    parser.feed(html)
    return parser


def _section(html: str, element_id: str) -> str:
    """The text from the element with ``element_id`` to the end of its ``<figure>``."""
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</figure>", start)]


def test_structure_and_stable_ids(html: str, report: ReportData) -> None:
    ids = _parse(html).ids
    for element_id in ("report-header", "summary-table", "forest-plot", "cumulative-lift"):
        assert element_id in ids
    assert ids.count("methods") == 1
    assert "srm-banner" not in ids
    forest = _section(html, "forest-plot")
    assert forest.count("<svg") == 1
    assert "<path" in forest
    cumulative = _section(html, "cumulative-lift")
    assert cumulative.count('class="cumulative-plot"') == 2
    assert 'data-metric="conversion"' in cumulative
    assert 'data-metric="revenue"' in cumulative
    assert cumulative.count("<svg") == 2
    assert "exp-report" in html
    assert "2024-06-01 to 2024-06-07" in html
    assert len(ids) == len(set(ids)), "element ids (SVG ids included) must be unique"


def test_self_contained(html: str) -> None:
    assert "<script" not in html
    assert "<link" not in html
    assert "@import" not in html
    # Only fragment references and no loadable URL; xmlns/RDF namespace names load nothing.
    assert re.findall(r'\b(?:src|href)="(?!#)', html) == []
    assert "url(http" not in html


def test_summary_table(html: str, report: ReportData) -> None:
    rows = _parse(html).tables["summary-table"]
    assert rows[0][:3] == ["Metric", "Variant", "Role"]
    by_metric = {r[0]: r for r in rows[1:]}
    assert set(by_metric) == {"conversion", "revenue", "clicks/impressions", "latency"}
    revenue = next(r for r in report.overall_rows if r.metric == "revenue")
    assert by_metric["revenue"][5] == "ship"
    assert by_metric["revenue"][3].startswith(f"{revenue.rel_lift:+.2%}")
    assert "good direction" in by_metric["revenue"][6]
    assert by_metric["latency"][2] == "guardrail"
    assert by_metric["latency"][5] == "not_worse"
    assert "(non-inferiority)" in by_metric["latency"][4]


def test_results_tables_per_slice(html: str, report: ReportData) -> None:
    tables = _parse(html).tables
    assert [k for k in tables if k.startswith("results-table")] == [
        "results-table-1",
        "results-table-2",
        "results-table-3",
    ]
    header, *rows = tables["results-table-1"]
    assert header[3:7] == ["n control", "n variant", "Mean control", "Mean variant"]
    conv = next(r for r in report.rows if r.metric == "conversion")
    first = rows[0]
    assert first[:3] == ["conversion", "treatment", "two_proportion_z"]
    assert first[3] == f"{conv.n_control:,}"
    assert first[6] == f"{conv.mean_variant:.6g}"
    col = {name: i for i, name in enumerate(header)}
    assert first[col["p"]] == f"{conv.p_value:.3g}"
    assert first[col["Adj. p"]] == f"{conv.p_value_adjusted:.3g}"
    # every statistic visible: SE, the z statistic, and adjusted means for regression rows
    assert first[col["SE"]] == f"{conv.abs_se:.6g}"
    assert first[col["z / t"]] == f"z = {conv.statistic:.3g}"
    assert first[col["Adj. means (c, v)"]] == DASH
    rev = next(r for r in report.rows if r.metric == "revenue" and r.slice == "all")
    rev_cells = next(r for r in rows if r[0] == "revenue")
    assert rev.method == rev_cells[2] == "regression_hc1"
    assert rev_cells[col["Adj. means (c, v)"]] == (
        f"{rev.mean_control_adjusted:.6g}, {rev.mean_variant_adjusted:.6g}"
    )


def test_suppressed_rows_show_no_numbers(html: str, report: ReportData) -> None:
    assert 'data-slice="segment=tiny"' in html
    rows = _parse(html).tables["results-table-3"][1:]
    assert len(rows) == 4
    for row in rows:
        assert row[-1] == "suppressed (< 50 units)"
        assert row[2:-1] == [DASH] * (len(row) - 3)
        assert not any(ch.isdigit() for cell in row[2:-1] for ch in cell)


def test_no_unit_id_leaks(html: str, srm_html: str, unit_ids: list[str]) -> None:
    for text in (html, srm_html):
        assert "uid" not in text
        assert not any(uid in text for uid in unit_ids)


def test_srm_banner_iff_srm_fails(srm_html: str, srm_report: ReportData) -> None:
    assert srm_report.srm_failed
    parsed = _parse(srm_html)
    assert parsed.ids.count("srm-banner") == 1
    banner = srm_html[srm_html.index('id="srm-banner"') : srm_html.index("</div>")]
    assert 'role="alert"' in banner
    assert "Do not act on them" in banner
    assert f"{srm_report.srm_p_value:.3g}" in banner
    # observed against expected units per variant (80/20 expected, the data are 50/50)
    n_c = next(r.n_control for r in srm_report.overall_rows)
    n_t = next(r.n_variant for r in srm_report.overall_rows)
    assert n_c is not None
    assert n_t is not None
    total = n_c + n_t
    assert f"control {n_c:,} vs {0.8 * total:,.1f}" in banner
    assert f"treatment {n_t:,} vs {0.2 * total:,.1f}" in banner
    assert {r[5] for r in parsed.tables["summary-table"][1:]} == {"srm_fail"}


def test_guardrail_margin_on_forest_plot(html: str) -> None:
    forest = _section(html, "forest-plot")
    # matplotlib keeps each text as a comment next to its glyph paths.
    assert "<!-- guardrail margin -->" in forest
    assert "<!-- no change -->" in forest
    assert "<!-- latency · treatment (guardrail) -->" in forest


def test_markup_in_names_is_escaped(report: ReportData) -> None:
    evil = "<script>alert(1)</script>"
    rows = [dataclasses.replace(r, metric=evil) for r in report.rows]
    html = render_html(ReportData(rows, config=report.config))
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert 'id="no-daily"' in html
    assert 'id="cumulative-lift"' not in html


def test_write_html(tmp_path: Path, report: ReportData) -> None:
    out = write_html(dataclasses.replace(report, daily=()), tmp_path / "r.html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_data_validation(report: ReportData) -> None:
    other = dataclasses.replace(report.rows[0], experiment_id="other")
    with pytest.raises(ValueError, match="one experiment"):
        ReportData([*report.rows, other])
    with pytest.raises(ValueError, match="rows must be non-empty"):
        ReportData([])
    with pytest.raises(ValueError, match="start_date must be <= end_date"):
        ReportData(report.rows, start_date=date(2024, 2, 1), end_date=date(2024, 1, 1))
    point = report.daily[0]
    with pytest.raises(ValueError, match="duplicate"):
        ReportData(report.rows, daily=[point, point])
    with pytest.raises(ValueError, match="ci_low must be <= ci_high"):
        DailyPoint(point.day, "m", "v", 0.1, 0.2, 0.0)
    with pytest.raises(ValueError, match="metric must be a non-empty str"):
        DailyPoint(point.day, "", "v", 0.1, 0.0, 0.2)
    with pytest.raises(TypeError, match="arm_versions must hold ArmModelVersion"):
        ReportData(report.rows, arm_versions=[("treatment", "v1")])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"share": 0.0}, ValueError, "share must be in"),
        ({"share": 1.5}, ValueError, "share must be in"),
        ({"exposures": 0}, ValueError, "exposures must be >= 1"),
        ({"exposures": 2.0}, TypeError, "exposures must be an int"),
        ({"model_version": ""}, ValueError, "model_version must be a non-empty str"),
        ({"offline": {"ndcg@10": "0.1"}}, TypeError, "offline"),
        ({"offline_ds": "2024-05-31"}, TypeError, "offline_ds"),
    ],
)
def test_arm_model_version_validation(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    fields: dict[str, object] = {
        "variant": "treatment",
        "model_version": "v1",
        "rec_set": "model",
        "exposures": 10,
        "share": 0.5,
    }
    with pytest.raises(error, match=match):
        ArmModelVersion(**{**fields, **kwargs})  # type: ignore[arg-type]


def test_offline_vs_online_section(versions_report: ReportData, html: str) -> None:
    page = render_html(versions_report)
    parsed = _parse(page)
    assert "offline-online" in parsed.ids
    header, *rows = parsed.tables["offline-online-table"]
    assert header[:2] == ["Arm", "Model version"]
    assert [r[1] for r in rows] == [
        "popularity-2024-05-31",
        "tt1+rk1",
        "tt2+rk2",
        "none (fallback list)",
    ]
    assert rows[1][4] == "0.0642"
    assert rows[2][4:8] == [NOT_EVALUATED] * 4
    assert rows[0][8] == "reference (control)"
    assert page.index('id="offline-online"') < page.index('id="forest-plot"')
    assert 'id="offline-online"' not in html  # no version data: no section


def test_daily_points_match_the_analysis() -> None:
    rng = np.random.default_rng(3)
    looks = np.linspace(100, 700, 7, dtype=int)
    cells = []
    for arm, rate in (("control", 0.10), ("treatment", 0.14)):
        y = (rng.random(700) < rate).astype(float)
        daily = tuple(SampleStats.from_array(y[:k]) for k in looks)
        cells.append(Cell(arm, "conversion", daily[-1], daily=daily))
    exp = ExperimentData(
        "e",
        "control",
        {"control": 1, "treatment": 1},
        [MetricSpec("conversion", "binomial")],
        cells,
    )
    config = AnalysisConfig(min_units_per_slice=200)
    days = [date(2024, 1, 1) + timedelta(days=k) for k in range(7)]
    points = daily_points(exp, days, config)
    (row,) = analyze_experiment(exp, config)
    assert [p.day for p in points] == days
    assert math.isnan(points[0].lift)  # 100 units per arm < min_units_per_slice
    last = points[-1]
    assert (last.lift, last.ci_low, last.ci_high) == pytest.approx(
        (row.rel_lift, row.rel_ci_low, row.rel_ci_high)
    )
    assert last.p_sequential == pytest.approx(row.p_value_sequential)
    with pytest.raises(ValueError, match="one entry per daily look"):
        daily_points(exp, days[:3], config)
    with pytest.raises(ValueError, match="strictly increasing"):
        daily_points(exp, days[::-1], config)
