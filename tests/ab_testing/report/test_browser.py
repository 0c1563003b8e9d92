"""The HTML report rendered by headless Chromium: plots laid out with a real size, a
non-trivial screenshot, and a visible red SRM banner.

Skipped when no ``chromium`` is on PATH (CI installs the Debian package ``chromium``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from ab_testing.report import ReportData, write_html

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# Test-only probe appended to a copy of the report (the report itself has no script): it
# records the laid-out size of each element of interest into the DOM that --dump-dom prints.
PROBE = """<script>
const sizes = {};
for (const sel of ["#forest-plot svg", "#cumulative-lift svg", "#srm-banner", "#summary-table"]) {
  sizes[sel] = [...document.querySelectorAll(sel)].map((e) => {
    const r = e.getBoundingClientRect();
    return [r.width, r.height];
  });
}
const pre = document.createElement("pre");
pre.id = "probe";
pre.textContent = JSON.stringify(sizes);
document.body.appendChild(pre);
</script>
"""
SRM_RED = (207, 34, 46)  # #cf222e, the banner background


def _chromium(tmp: Path, *args: str) -> str:
    if CHROMIUM is None:
        pytest.skip(
            "chromium is not on PATH (install the Debian package: apt-get install chromium)"
        )
    res = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def _sizes(report: ReportData, tmp: Path) -> dict[str, list[list[float]]]:
    html = tmp / "probe.html"
    write_html(report, html)
    text = html.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>")
    html.write_text(text, encoding="utf-8")
    dom = _chromium(tmp, "--dump-dom", html.as_uri())
    start = dom.index('<pre id="probe">') + len('<pre id="probe">')
    result: dict[str, list[list[float]]] = json.loads(dom[start : dom.index("</pre>", start)])
    return result


def test_plots_are_in_the_dom_with_a_size(report: ReportData, tmp_path: Path) -> None:
    sizes = _sizes(report, tmp_path)
    (forest,) = sizes["#forest-plot svg"]
    cumulative = sizes["#cumulative-lift svg"]
    assert len(cumulative) == 2
    for width, height in [forest, *cumulative]:
        assert width > 200
        assert height > 100
    assert sizes["#srm-banner"] == []
    (table,) = sizes["#summary-table"]
    assert table[0] > 500


def test_dumped_dom_has_the_plot_paths(report: ReportData, tmp_path: Path) -> None:
    html = write_html(report, tmp_path / "report.html")
    dom = _chromium(tmp_path, "--dump-dom", html.as_uri())
    forest = dom[
        dom.index('id="forest-plot"') : dom.index("</figure>", dom.index('id="forest-plot"'))
    ]
    assert forest.count("<path") > 20
    cumulative = dom[dom.index('id="cumulative-lift"') :]
    assert cumulative.count("<svg") >= 2


def test_screenshot_is_not_blank_and_shows_the_srm_banner(
    srm_report: ReportData, tmp_path: Path
) -> None:
    html = write_html(srm_report, tmp_path / "report.html")
    png = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={png}", "--window-size=1200,2000", html.as_uri())
    assert png.stat().st_size > 20_000
    with Image.open(png) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1200, 2000)
        colours = rgb.getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50, "screenshot is (nearly) a single colour"
    top = rgb.crop((0, 0, 1200, 400))
    red = sum(
        n
        for n, c in top.getcolors(maxcolors=1 << 16) or []
        if isinstance(c, tuple) and c == SRM_RED
    )
    assert red > 20_000, f"SRM banner not visible near the top ({red} red pixels)"
