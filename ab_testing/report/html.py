"""Self-contained HTML report: inline CSS, inline SVG plots, no external resources."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import jinja2

from ab_testing.report.model import ReportData
from ab_testing.report.plots import cumulative_plot_svg, forest_plot_svg, scope_svg_ids
from ab_testing.report.sections import sections
from ab_testing.report.tables import OFFLINE_COLUMNS

_CSS: Final = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
  color: #1f2328; margin: 0 auto; max-width: 1180px; padding: 16px 24px; }
h1 { font-size: 22px; margin: 8px 0; } h2 { font-size: 18px; margin-top: 28px;
  border-bottom: 1px solid #d0d7de; padding-bottom: 4px; } h3 { font-size: 15px; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 0; }
dl.meta dt { font-weight: 600; color: #57606a; } dl.meta dd { margin: 0; }
#srm-banner { background: #cf222e; color: #fff; font-size: 16px; padding: 14px 18px;
  margin: 16px 0; border-radius: 6px; border: 3px solid #82071e; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; margin: 8px 0; }
th, td { border: 1px solid #d0d7de; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums;
  white-space: nowrap; }
td.decision { font-weight: 600; white-space: nowrap; }
tr.d-ship td.decision, tr.d-not_worse td.decision { color: #1a7f37; }
tr.d-harm td.decision, tr.d-srm_fail td.decision { color: #cf222e; }
tr.d-possibly_worse td.decision { color: #bc4c00; }
tr.d-suppressed td, tr.d-not_analysable td { color: #6e7781; }
figure.plot { margin: 8px 0; } figure.plot svg { max-width: 100%; height: auto; }
#cumulative-lift { display: grid; grid-template-columns: repeat(auto-fit, minmax(540px, 1fr));
  gap: 8px 16px; } #cumulative-lift figcaption { grid-column: 1 / -1; }
figcaption, p.note, footer { color: #57606a; font-size: 12.5px; }
footer li { margin: 3px 0; }
"""

_TEMPLATE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>A/B test report: {{ r.experiment_id }}</title>
<style>{{ css }}</style>
</head>
<body>
{%- macro table(t, id, slice=none) %}
<table id="{{ id }}"{% if slice is not none %} data-slice="{{ slice }}"{% endif %}>
<thead><tr>{% for c in t.columns %}<th scope="col">{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{%- for row in t.rows %}
<tr class="d-{{ t.row_classes[loop.index0] }}">
{%- for cell in row %}
{%- set col = t.columns[loop.index0] %}
<td{% if col == "Decision" %} class="decision"{% elif col in numeric %} class="num"{% endif %}>
{{- cell }}</td>
{%- endfor %}</tr>
{%- endfor %}
</tbody>
</table>
{%- endmacro %}
<header id="report-header">
<h1>A/B test report: <span id="experiment-id">{{ r.experiment_id }}</span></h1>
<dl class="meta">
<dt>Dates</dt><dd id="report-dates">{{ s.dates }}</dd>
<dt>Control</dt><dd>{{ r.control }}</dd>
{%- if r.source %}<dt>Input</dt><dd>{{ r.source }}</dd>{% endif %}
<dt>Decisions</dt><dd id="decision-counts">{{ s.decisions }}</dd>
</dl>
</header>
{%- if s.srm is not none %}
<div id="srm-banner" class="banner" role="alert"><strong>SRM check failed.</strong>
{{ s.srm }}</div>
{%- endif %}
<section id="decision-summary">
<h2>Decision summary (overall population)</h2>
{{ table(s.summary, "summary-table") }}
</section>
{%- if s.offline_online_note is not none %}
<section id="offline-online">
<h2>Offline vs online</h2>
{%- if s.offline_online is not none %}
{{ table(s.offline_online, "offline-online-table") }}
{%- endif %}
<p class="note" id="offline-online-note">{{ s.offline_online_note }}</p>
</section>
{%- endif %}
<section id="forest-section">
<h2>Relative lift by metric</h2>
<figure id="forest-plot" class="plot">
{{ forest | safe }}
<figcaption>Relative lift of each variant vs {{ r.control }} with its {{ level }} CI, coloured by
decision. Solid line: no change; dashed red: guardrail margins.</figcaption>
</figure>
</section>
<section id="cumulative-section">
<h2>Cumulative lift by day</h2>
{%- if cumulative %}
<figure id="cumulative-lift" class="plot">
{%- for c in cumulative %}
<div class="cumulative-plot" id="{{ c.id }}" data-metric="{{ c.metric }}">{{ c.svg | safe }}</div>
{%- endfor %}
<figcaption>Cumulative relative lift per day with its CI band. Read decisions from the
always-valid (sequential) p-value: the band is not corrected for daily peeking.</figcaption>
</figure>
{%- else %}
<p class="note" id="no-daily">No daily series was supplied for this report.</p>
{%- endif %}
</section>
<section id="results">
<h2>Results</h2>
{%- for slice, t in s.results %}
<h3>Slice: {{ slice }}</h3>
{{ table(t, "results-table-" ~ loop.index, slice) }}
{%- endfor %}
</section>
<footer id="methods">
<h2>Methods</h2>
<ul>
{%- for note in s.notes %}
<li>{{ note }}</li>
{%- endfor %}
</ul>
</footer>
</body>
</html>
"""

_NUMERIC: Final = frozenset(
    {"n control", "n variant", "Mean control", "Mean variant", "p", "Adj. p", "Seq. p", "Power"}
    | {title for title, _ in OFFLINE_COLUMNS}
)
_ENV: Final = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def slug(text: str) -> str:
    """Lower-case ASCII slug of ``text`` for ids and file names (``"metric"`` if empty)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "metric"


def render_html(report: ReportData) -> str:
    """The report as one self-contained HTML document.

    Stable element ids for automated checks: ``report-header``, ``srm-banner`` (only when
    the SRM check failed), ``summary-table``, ``offline-online`` (only with arm versions; its
    ``offline-online-table`` when any version was served), ``forest-plot``,
    ``cumulative-lift`` (only with a daily series; one ``div.cumulative-plot`` per metric),
    ``results-table-<k>`` (one per slice, ``data-slice`` attribute) and ``methods``.
    """
    if not isinstance(report, ReportData):
        raise TypeError(f"report must be a ReportData, got {report!r}")
    alpha = report.config.alpha
    cumulative = [
        {
            "id": f"cumulative-lift-{i}-{slug(metric)}",
            "metric": metric,
            "svg": scope_svg_ids(cumulative_plot_svg(report.daily, metric, alpha), f"cum{i}"),
        }
        for i, metric in enumerate(report.daily_metrics(), start=1)
    ]
    return _ENV.from_string(_TEMPLATE).render(
        r=report,
        s=sections(report),
        css=_CSS,
        forest=scope_svg_ids(forest_plot_svg(report), "forest"),
        level=f"{1 - alpha:.0%}",
        cumulative=cumulative,
        numeric=_NUMERIC,
    )


def write_html(report: ReportData, path: str | Path) -> Path:
    """Render the report to ``path`` (UTF-8); return the path written."""
    out = Path(path)
    out.write_text(render_html(report), encoding="utf-8")
    return out
