"""Reproduce published Hillstrom (MineThatData 2008 e-mail) figures from sufficient statistics.

pandas is used here only to load the CSV and aggregate it into per-arm sums, as Spark would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ab_testing.settings import AnalysisConfig
from ab_testing.stats import (
    Cell,
    CupedStats,
    ExperimentData,
    MetricSpec,
    SampleStats,
    analyze_experiment,
    cuped_t_test,
    srm_test,
    two_proportion_z_test,
    welch_t_test,
)

# tests/ab_testing/stats/<this file> -> parents[3] is the repository root.
DATA = (
    Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "hillstrom" / "hillstrom.csv"
)
MENS, WOMENS, NONE = "Mens E-Mail", "Womens E-Mail", "No E-Mail"


@pytest.fixture(scope="module")
def arms() -> dict[str, dict[str, float]]:
    if not DATA.is_file():
        pytest.skip(f"Hillstrom data not found at {DATA.resolve()} (shared data not mounted)")
    df = pd.read_csv(DATA, usecols=["segment", "visit", "conversion", "spend", "history"])
    df = df.assign(spend_sq=df.spend**2, history_sq=df.history**2, spend_x=df.spend * df.history)
    agg = df.groupby("segment").agg(
        n=("spend", "size"),
        visit=("visit", "sum"),
        conversion=("conversion", "sum"),
        spend=("spend", "sum"),
        spend_sq=("spend_sq", "sum"),
        history=("history", "sum"),
        history_sq=("history_sq", "sum"),
        spend_x=("spend_x", "sum"),
    )
    return {str(seg): {str(k): float(v) for k, v in row.items()} for seg, row in agg.iterrows()}


def _spend(a: dict[str, float]) -> SampleStats:
    return SampleStats(a["n"], a["spend"], a["spend_sq"])


def _spend_cuped(a: dict[str, float]) -> CupedStats:
    return CupedStats(
        a["n"], a["spend"], a["spend_sq"], a["history"], a["history_sq"], a["spend_x"]
    )


def test_published_rates_and_means(arms: dict[str, dict[str, float]]) -> None:
    visit = {s: SampleStats.from_counts(a["n"], a["visit"]).mean for s, a in arms.items()}
    assert visit[MENS] == pytest.approx(0.182757, abs=1e-6)
    assert visit[WOMENS] == pytest.approx(0.151400, abs=1e-6)
    assert visit[NONE] == pytest.approx(0.106167, abs=1e-6)
    conv = two_proportion_z_test(
        SampleStats.from_counts(arms[NONE]["n"], arms[NONE]["conversion"]),
        SampleStats.from_counts(arms[MENS]["n"], arms[MENS]["conversion"]),
    )
    assert (conv.mean_treatment, conv.mean_control) == pytest.approx((0.012531, 0.005726), abs=1e-6)
    assert conv.p_value < 1e-10
    assert (arms[MENS]["n"], arms[NONE]["n"]) == (21307, 21306)
    assert _spend(arms[MENS]).mean == pytest.approx(1.422617, abs=1e-6)
    assert _spend(arms[NONE]).mean == pytest.approx(0.652789, abs=1e-6)


def test_published_t_tests_on_spend(arms: dict[str, dict[str, float]]) -> None:
    mens, none = _spend(arms[MENS]), _spend(arms[NONE])
    welch = welch_t_test(none, mens)
    assert welch.statistic == pytest.approx(5.300140, abs=1e-6)
    assert welch.p_value == pytest.approx(1.1638e-07, rel=1e-4)
    # Pooled (Student) t from the same sufficient statistics via scipy.
    pooled = stats.ttest_ind_from_stats(
        mens.mean, np.sqrt(mens.variance), mens.n, none.mean, np.sqrt(none.variance), none.n
    )
    assert pooled.statistic == pytest.approx(5.300090, abs=1e-6)
    assert pooled.pvalue == pytest.approx(1.1632e-07, rel=1e-4)


def test_cuped_with_history_narrows_spend_ci(arms: dict[str, dict[str, float]]) -> None:
    plain = welch_t_test(_spend(arms[NONE]), _spend(arms[MENS]))
    cuped = cuped_t_test(_spend_cuped(arms[NONE]), _spend_cuped(arms[MENS]))
    width = plain.abs_ci_high - plain.abs_ci_low
    assert cuped.abs_ci_high - cuped.abs_ci_low < width
    assert cuped.theta > 0  # past spend (history) predicts spend, if weakly (ρ ≈ 0.02)
    assert cuped.abs_lift == pytest.approx(plain.abs_lift, rel=0.05)
    assert cuped.p_value < 1e-6


def test_srm_passes_on_three_arms(arms: dict[str, dict[str, float]]) -> None:
    res = srm_test({s: a["n"] for s, a in arms.items()}, {MENS: 1, WOMENS: 1, NONE: 1})
    assert res.passed
    assert res.p_value > 0.5


def test_full_analysis(arms: dict[str, dict[str, float]]) -> None:
    cells = []
    for seg, a in arms.items():
        cells += [
            Cell(seg, "visit", SampleStats.from_counts(a["n"], a["visit"])),
            Cell(seg, "conversion", SampleStats.from_counts(a["n"], a["conversion"])),
            Cell(seg, "spend", _spend_cuped(a)),
        ]
    exp = ExperimentData(
        "hillstrom",
        NONE,
        {NONE: 1, MENS: 1, WOMENS: 1},
        (
            MetricSpec("visit", "binomial"),
            MetricSpec("conversion", "binomial"),
            MetricSpec("spend", "mean"),
        ),
        cells,
    )
    rows = analyze_experiment(exp, AnalysisConfig(correction="fdr_bh"))
    assert len(rows) == 6
    assert {r.decision for r in rows} == {"ship"}
    spend = next(r for r in rows if r.metric == "spend" and r.variant == MENS)
    assert spend.method == "cuped_welch_t"
    assert spend.rel_lift == pytest.approx(1.18, abs=0.05)
