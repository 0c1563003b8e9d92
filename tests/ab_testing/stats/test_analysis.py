"""End-to-end analysis of experiments: rows, decisions, suppression, SRM, batch isolation."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from ab_testing.settings import AnalysisConfig
from ab_testing.stats import (
    Cell,
    CupedStats,
    ExperimentData,
    MetricSpec,
    RatioStats,
    RegressionStats,
    SampleStats,
    adjust_p_values,
    analyze_experiment,
    analyze_experiments,
)

METRICS = (
    MetricSpec("conversion", "binomial"),
    MetricSpec("revenue", "mean"),
    MetricSpec("ctr", "ratio"),
    MetricSpec("latency", "mean", guardrail=True, margin=0.05, higher_is_better=False),
)
SLICES = {"all": 1.0, "country=US": 0.6, "country=LI": 0.004}


def _cells(rng: np.random.Generator, variant: str, n: int, lift: float, daily: bool) -> list[Cell]:
    cells: list[Cell] = []
    for slice_, share in SLICES.items():
        m = max(int(n * share), 2)
        conv = rng.random(m) < 0.10 * (1 + lift)
        x = rng.gamma(2.0, 10.0, m)
        rev = 0.5 * x + rng.normal(0, 5, m) + 2 * lift
        den = 1.0 + rng.poisson(5, m)
        clicks = rng.binomial(den.astype(int), 0.1).astype(float)
        latency = rng.normal(200, 20, m)
        conv_stats = SampleStats.from_counts(m, float(conv.sum()))
        looks: tuple[SampleStats, ...] = ()
        if daily:
            looks = tuple(
                SampleStats.from_counts(k, float(conv[:k].sum()))
                for k in np.linspace(m / 7, m, 7, dtype=int)
            )
        cells += [
            Cell(variant, "conversion", conv_stats, slice_, looks),
            Cell(variant, "revenue", CupedStats.from_arrays(rev, x), slice_),
            Cell(variant, "ctr", RatioStats.from_arrays(clicks, den), slice_),
            Cell(variant, "latency", SampleStats.from_array(latency), slice_),
        ]
    return cells


def _experiment(
    seed: int = 1,
    *,
    lift: float = 0.0,
    n: int = 5000,
    daily: bool = False,
    exp_id: str = "exp-1",
    **kwargs: object,
) -> ExperimentData:
    rng = np.random.default_rng(seed)
    return ExperimentData(
        experiment_id=exp_id,
        control="control",
        expected_weights={"control": 0.5, "treatment": 0.5},
        metrics=METRICS,
        cells=_cells(rng, "control", n, 0.0, daily) + _cells(rng, "treatment", n, lift, daily),
        **kwargs,  # type: ignore[arg-type]
    )


def test_rows_layout_suppression_and_methods() -> None:
    rows = analyze_experiment(_experiment())
    assert len(rows) == 3 * 4
    assert [r.slice for r in rows[:4]] == ["all"] * 4  # overall first, then sorted slices
    assert [r.slice for r in rows[4:]] == ["country=LI"] * 4 + ["country=US"] * 4
    by = {(r.slice, r.metric): r for r in rows}
    tiny = by["country=LI", "conversion"]
    assert tiny.decision == "suppressed"
    assert tiny.reason == "suppressed_small_slice"
    assert tiny.n_control is None
    assert math.isnan(tiny.mean_control)
    assert math.isnan(tiny.p_value)
    assert by["all", "revenue"].method == "cuped_welch_t"
    assert by["all", "ctr"].method == "delta_ratio"
    assert by["all", "conversion"].method == "two_proportion_z"
    assert by["all", "conversion"].n_control == 5000
    assert all(0.0 < r.srm_p_value <= 1.0 for r in rows)


def test_multiple_testing_and_guardrail_fields() -> None:
    rows = analyze_experiment(_experiment(seed=2))
    overall = [r for r in rows if r.slice == "all"]
    primary = [r for r in overall if not r.guardrail]
    expected = adjust_p_values([r.p_value for r in primary], "holm")
    np.testing.assert_allclose([r.p_value_adjusted for r in primary], expected)
    guard = next(r for r in overall if r.guardrail)
    assert math.isnan(guard.p_value_adjusted)
    assert 0.0 <= guard.p_value_noninferiority < 0.05
    assert guard.decision == "not_worse"
    for r in primary:
        assert r.decision in ("no_effect", "inconclusive")
        assert r.abs_ci_low <= r.abs_lift <= r.abs_ci_high
        assert r.rel_ci_low <= r.rel_lift <= r.rel_ci_high
        assert 0.0 <= r.power <= 1.0
        assert r.mde_relative > 0


def test_ship_harm_no_effect_inconclusive() -> None:
    rows = analyze_experiment(_experiment(seed=3, lift=0.5, n=20000))
    conv = next(r for r in rows if r.slice == "all" and r.metric == "conversion")
    assert conv.decision == "ship"
    assert conv.rel_lift > 0.3
    flipped = _experiment(seed=3, lift=0.5, n=20000)
    flipped = ExperimentData(
        flipped.experiment_id,
        flipped.control,
        flipped.expected_weights,
        (MetricSpec("conversion", "binomial", higher_is_better=False), *METRICS[1:]),
        flipped.cells,
    )
    conv = next(r for r in analyze_experiment(flipped) if r.metric == "conversion")
    assert conv.decision == "harm"
    # A/A: a large experiment is powered for +50 % on conversion -> no_effect; a tiny one isn't.
    cfg = AnalysisConfig(target_relative_effect=0.5, min_units_per_slice=0)
    big = next(
        r for r in analyze_experiment(_experiment(seed=4, n=20000), cfg) if r.metric == "conversion"
    )
    small = next(
        r for r in analyze_experiment(_experiment(seed=4, n=100), cfg) if r.metric == "conversion"
    )
    assert (big.decision, small.decision) == ("no_effect", "inconclusive")


def test_srm_failure_flags_every_analysable_row() -> None:
    exp = _experiment(assignment_counts={"control": 5000, "treatment": 5600})
    rows = analyze_experiment(exp)
    assert all(r.srm_p_value < 0.001 for r in rows)
    assert {r.decision for r in rows} == {"srm_fail", "suppressed"}
    assert all(r.reason == "sample_ratio_mismatch" for r in rows if r.decision == "srm_fail")


def test_missing_arm_and_zero_variance_rows() -> None:
    exp = _experiment()
    cells = [c for c in exp.cells if not (c.variant == "control" and c.metric == "ctr")]
    const = SampleStats(500, 1000.0, 2000.0)  # every unit has latency 2 -> zero variance
    cells = [
        Cell(c.variant, c.metric, const, c.slice) if c.metric == "latency" else c for c in cells
    ]
    rows = analyze_experiment(
        ExperimentData("exp-1", "control", exp.expected_weights, METRICS, cells)
    )
    by = {(r.slice, r.metric): r for r in rows}
    assert by["all", "ctr"].reason == "missing_control"
    assert by["all", "ctr"].decision == "not_analysable"
    assert by["all", "latency"].reason == "zero_variance"
    assert by["all", "latency"].decision == "not_analysable"
    assert math.isnan(by["all", "latency"].p_value)


def test_sequential_p_value_with_daily_looks() -> None:
    rows = analyze_experiment(_experiment(daily=True))
    conv = next(r for r in rows if r.slice == "all" and r.metric == "conversion")
    assert 0.0 <= conv.p_value_sequential <= 1.0
    assert conv.p_value_sequential >= conv.p_value  # always-valid p pays for peeking
    rev = next(r for r in rows if r.slice == "all" and r.metric == "revenue")
    assert math.isnan(rev.p_value_sequential)


def test_caller_errors_raise() -> None:
    exp = _experiment()
    with pytest.raises(ValueError, match="control"):
        analyze_experiment(ExperimentData("e", "ctrl", exp.expected_weights, METRICS, exp.cells))
    bad = [Cell("control", "ctr", SampleStats(3, 1, 1))]
    with pytest.raises(TypeError, match="ctr"):
        analyze_experiment(ExperimentData("e", "control", exp.expected_weights, METRICS, bad))
    with pytest.raises(ValueError, match="margin"):
        MetricSpec("latency", "mean", guardrail=True)
    with pytest.raises(ValueError, match="kind"):
        MetricSpec("x", "poisson")  # type: ignore[arg-type]


def test_batch_isolates_failures() -> None:
    good = _experiment(exp_id="good")
    broken = ExperimentData(
        "broken",
        "control",
        {"control": 1, "treatment": 1},
        METRICS,
        [Cell("ghost", "conversion", SampleStats.from_counts(100, 10))],
    )
    rows = analyze_experiments([broken, good, _experiment(seed=9, exp_id="also-good")])
    errors = [r for r in rows if r.experiment_id == "broken"]
    assert len(errors) == 1
    assert errors[0].reason == "error"
    assert errors[0].detail is not None
    assert "ghost" in errors[0].detail
    assert len([r for r in rows if r.experiment_id == "good"]) == 12
    assert len([r for r in rows if r.experiment_id == "also-good"]) == 12
    rows = analyze_experiments([None, good])  # type: ignore[list-item]
    assert rows[0].experiment_id == "?"
    assert rows[0].reason == "error"
    with pytest.raises(TypeError, match="config"):
        analyze_experiments([good], config={"alpha": 0.05})  # type: ignore[arg-type]


def _reg_stats(
    y: npt.NDArray[np.float64],
    x: npt.NDArray[np.float64],
    m: int,
    den: npt.NDArray[np.float64] | None = None,
) -> RegressionStats:
    return RegressionStats.from_arrays(
        y[:m],
        x[:, :m],
        ["pre", "gappy"],
        den=None if den is None else den[:m],
        indicators=["gappy"],
    )


def _regression_experiment(
    seed: int, *, informative: bool = True, daily: bool = False, use_cuped: bool = True
) -> ExperimentData:
    """Binomial, mean and ratio metrics with RegressionStats (two covariates, one with gaps)."""
    rng = np.random.default_rng(seed)
    specs = (
        MetricSpec("conversion", "binomial", use_cuped=use_cuped),
        MetricSpec("revenue", "mean", use_cuped=use_cuped),
        MetricSpec("ctr", "ratio", use_cuped=use_cuped),
    )
    cells: list[Cell] = []
    for variant, n, lift in (("control", 3000, 0.0), ("treatment", 3200, 0.1)):
        x = rng.normal(size=(2, n))
        signal = x[0] if informative else rng.normal(size=n)
        x[1, rng.random(n) < 0.05] = np.nan
        conv = (signal + rng.normal(size=n) > 1.2 - lift).astype(float)
        rev = 10 + 3 * signal + rng.normal(size=n) + lift
        den = 1.0 + rng.poisson(5, n)
        clicks = rng.binomial(den.astype(int), np.clip(0.2 + 0.08 * signal, 0, 1)).astype(float)
        looks = np.linspace(n / 4, n, 4, dtype=int) if daily else np.array([], dtype=int)
        for metric, y, d in (
            ("conversion", conv, None),
            ("revenue", rev, None),
            ("ctr", clicks, den),
        ):
            daily_stats = tuple(_reg_stats(y, x, int(m), d) for m in looks)
            cells.append(Cell(variant, metric, _reg_stats(y, x, n, d), daily=daily_stats))
    return ExperimentData("exp-reg", "control", {"control": 0.5, "treatment": 0.5}, specs, cells)


def test_regression_stats_get_lin_adjustment_with_every_statistic() -> None:
    rows = {r.metric: r for r in analyze_experiment(_regression_experiment(5))}
    for metric in ("conversion", "revenue", "ctr"):
        row = rows[metric]
        assert row.method == "regression_hc1"
        assert row.abs_lift == pytest.approx(row.mean_variant_adjusted - row.mean_control_adjusted)
        assert row.df is None  # z reference
        assert row.statistic == pytest.approx(row.abs_lift / row.abs_se)
        assert row.p_value_sides == "two-sided"
        assert row.covariates == ("pre", "gappy", "gappy:missing")
        assert len(row.theta_control) == len(row.theta_variant) == 3
        assert row.variance_reduction > 0.1  # "pre" is informative for every metric
        assert row.abs_se < row.abs_se_unadjusted
        assert row.abs_lift_unadjusted == pytest.approx(row.mean_variant - row.mean_control)
        assert dict(row.n_filled_control)["gappy"] > 0
        assert dict(row.n_filled_variant)["gappy"] > 0


def test_uninformative_covariates_leave_p_unchanged_for_binomial() -> None:
    row = next(
        r
        for r in analyze_experiment(_regression_experiment(6, informative=False))
        if r.metric == "conversion"
    )
    # same (unpooled HC1) family: only sampling noise of order 1/n separates the two p-values
    assert abs(row.variance_reduction) < 0.005
    assert row.p_value == pytest.approx(row.p_value_unadjusted, rel=0.03)


def test_regression_stats_without_cuped_use_the_unadjusted_tests() -> None:
    rows = {r.metric: r for r in analyze_experiment(_regression_experiment(7, use_cuped=False))}
    assert rows["conversion"].method == "two_proportion_z"
    assert rows["revenue"].method == "welch_t"
    assert rows["ctr"].method == "delta_ratio"
    assert rows["revenue"].df is not None  # Welch t carries its degrees of freedom
    assert rows["revenue"].covariates == ()
    assert math.isnan(rows["revenue"].variance_reduction)


def test_regression_sequential_p_with_daily_looks() -> None:
    rows = analyze_experiment(_regression_experiment(8, daily=True))
    for row in rows:
        assert 0.0 < row.p_value_sequential <= 1.0


def test_regression_stats_ratio_flag_must_match_kind() -> None:
    exp = _regression_experiment(9)
    swapped = ExperimentData(
        exp.experiment_id,
        exp.control,
        exp.expected_weights,
        (
            MetricSpec("conversion", "binomial"),
            MetricSpec("revenue", "mean"),
            MetricSpec("ctr", "mean"),
        ),
        exp.cells,
    )
    with pytest.raises(ValueError, match=r"RegressionStats\.ratio"):
        analyze_experiment(swapped)
