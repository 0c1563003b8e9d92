"""Lin's regression adjustment: statsmodels to 1e-6, literal values, moments vs arrays, policy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt
import pytest
import statsmodels.api as sm
from scipy import stats

from ab_testing.stats import (
    CupedRatioStats,
    CupedStats,
    RegressionStats,
    SampleStats,
    cuped_moments,
    moment_keys,
    regression_adjusted_test,
    regression_test,
    regression_test_arrays,
    welch_t_test,
)

Arr = npt.NDArray[np.float64]
TOL = 1e-6


def _f(values: tuple[float | Arr, ...]) -> Arr:
    return np.array([float(v) for v in values])


def _lin_ols(y_c: Arr, x_c: Arr, y_t: Arr, x_t: Arr, cov_type: str) -> object:
    """statsmodels OLS on Lin's interacted design; x_* are (n, K)."""
    y = np.r_[y_c, y_t]
    x = np.vstack([x_c, x_t])
    treat = np.r_[np.zeros(len(y_c)), np.ones(len(y_t))]
    xc = x - x.mean(0)
    design = np.column_stack([np.ones_like(y), treat, xc, treat[:, None] * xc])
    return sm.OLS(y, design).fit(cov_type=cov_type)


def _data(rng: np.random.Generator, k: int, kind: str) -> tuple[Arr, Arr, Arr, Arr]:
    n_c, n_t = 240, 310
    x_c = rng.normal(2.0, 1.0, (n_c, k)) * np.arange(1, k + 1)
    x_t = rng.normal(2.0, 1.0, (n_t, k)) * np.arange(1, k + 1)
    beta = 0.4 / np.arange(1, k + 1)
    # heteroskedastic noise and a heterogeneous effect, so HC and interaction matter
    lat_c = x_c @ beta + rng.normal(size=n_c) * (1.0 + 0.5 * np.abs(x_c[:, 0]))
    lat_t = 0.3 + x_t @ (1.5 * beta) + rng.normal(size=n_t)
    if kind == "binomial":
        return (lat_c > 1.5).astype(float), x_c, (lat_t > 1.5).astype(float), x_t
    return lat_c, x_c, lat_t, x_t


@pytest.mark.parametrize(
    ("k", "kind", "cov_type"),
    list(itertools.product([1, 2, 3], ["mean", "binomial"], ["HC1", "HC2", "HC0"])),
)
def test_matches_statsmodels_interacted_ols(k: int, kind: str, cov_type: str) -> None:
    rng = np.random.default_rng(100 * k + len(kind) + len(cov_type))
    y_c, x_c, y_t, x_t = _data(rng, k, kind)
    names = [f"x{i}" for i in range(k)]
    res = regression_test_arrays(y_c, x_c.T, y_t, x_t.T, names, cov_type=cov_type)  # type: ignore[arg-type]
    ols = _lin_ols(y_c, x_c, y_t, x_t, cov_type)
    params, bse = ols.params, ols.bse  # type: ignore[attr-defined]
    adj = res.adjusted
    assert adj.abs_lift == pytest.approx(params[1], abs=TOL)
    assert adj.abs_se == pytest.approx(bse[1], abs=TOL)
    assert adj.statistic == pytest.approx(ols.tvalues[1], abs=TOL)  # type: ignore[attr-defined]
    assert adj.p_value == pytest.approx(ols.pvalues[1], abs=TOL)  # type: ignore[attr-defined]
    low, high = ols.conf_int()[1]  # type: ignore[attr-defined]
    assert (adj.abs_ci_low, adj.abs_ci_high) == pytest.approx((low, high), abs=TOL)
    np.testing.assert_allclose(_f(res.theta_control), params[2 : 2 + k], atol=TOL)
    np.testing.assert_allclose(
        _f(res.theta_treatment) - _f(res.theta_control), params[2 + k :], atol=TOL
    )
    assert math.isinf(float(adj.df))  # z reference, as statsmodels' robust default
    assert float(adj.mean_treatment) - float(adj.mean_control) == pytest.approx(adj.abs_lift)
    assert res.exact_se
    assert res.cov_type == cov_type


@pytest.mark.parametrize("cov_type", ["HC1", "HC2"])
def test_ratio_matches_hand_linearisation_and_statsmodels(
    rng: np.random.Generator, cov_type: str
) -> None:
    def arm(n: int, lift: float) -> tuple[Arr, Arr, Arr]:
        x = rng.gamma(2.0, 2.0, n)  # pre-period clicks
        den = 1.0 + rng.poisson(5.0 + x)
        num = rng.binomial(den.astype(int), np.clip(0.05 + 0.01 * x + lift, 0, 1))
        return num.astype(float), den, x

    (n_c, d_c, x_c), (n_t, d_t, x_t) = arm(400, 0.0), arm(450, 0.02)

    def z(num: Arr, den: Arr) -> Arr:
        r = num.sum() / den.sum()
        return np.asarray(r + (num - r * den) / den.mean())

    ols = _lin_ols(z(n_c, d_c), x_c[:, None], z(n_t, d_t), x_t[:, None], cov_type)
    res = regression_test_arrays(
        n_c,
        x_c[None],
        n_t,
        x_t[None],
        ["pre"],
        den_control=d_c,
        den_treatment=d_t,
        cov_type=cov_type,  # type: ignore[arg-type]
    )
    assert res.adjusted.abs_lift == pytest.approx(ols.params[1], abs=TOL)  # type: ignore[attr-defined]
    assert res.adjusted.abs_se == pytest.approx(ols.bse[1], abs=TOL)  # type: ignore[attr-defined]
    assert res.unadjusted.abs_lift == pytest.approx(n_t.sum() / d_t.sum() - n_c.sum() / d_c.sum())
    assert float(res.variance_reduction) > 0.0


def test_literal_values_on_a_tiny_dataset() -> None:
    # control: θ_c = S_xy/S_xx = 4/2; treatment: θ_t = 3/2.8; pooled x̄ = 10/9;
    # m_c = 2.75 + 2·(10/9 - 1) = 107/36, m_t = 6 - (15/14)(4/45) = 124/21, τ = 739/252.
    res = regression_test_arrays(
        [1.0, 3, 2, 5], [[0.0, 1, 1, 2]], [4.0, 6, 5, 8, 7], [[1.0, 2, 0, 2, 1]], ["x"]
    )
    assert res.adjusted.abs_lift == pytest.approx(739 / 252, abs=1e-12)
    assert res.adjusted.mean_control == pytest.approx(107 / 36, abs=1e-12)
    assert res.adjusted.mean_treatment == pytest.approx(124 / 21, abs=1e-12)
    assert res.theta_control == pytest.approx((2.0,), abs=1e-12)
    assert res.theta_treatment == pytest.approx((15 / 14,), abs=1e-12)
    assert res.adjusted.abs_se == pytest.approx(0.7502006033108827, abs=1e-9)  # HC1
    assert res.unadjusted.abs_se == pytest.approx(1.1033633645747507, abs=1e-9)
    assert res.variance_reduction == pytest.approx(0.5377065943285855, abs=1e-9)
    assert res.adjusted.p_value == pytest.approx(9.267613940895327e-05, rel=1e-6)
    assert (res.adjusted.n_control, res.adjusted.n_treatment) == (4.0, 5.0)


def _packed(v: Arr, order: int) -> Arr:
    """What Spark computes: one sum of products per key of :func:`moment_keys`."""
    keys = moment_keys(v.shape[1], order)
    return np.array([np.prod(v[:, list(key)], axis=1).sum() for key in keys])


@pytest.mark.parametrize("ratio", [False, True])
def test_sufficient_statistics_agree_with_arrays(rng: np.random.Generator, ratio: bool) -> None:
    n_c, n_t = 150, 170
    x_c, x_t = rng.normal(5, 2, (2, n_c)), rng.normal(5, 2, (2, n_t))
    x_c[0, :9] = np.nan  # missing values in one covariate
    x_t[0, -4:] = np.nan
    y_c = rng.poisson(2.0 + x_c[1] / 5).astype(float)
    y_t = rng.poisson(2.3 + x_t[1] / 5).astype(float)
    d_c, d_t = (1.0 + rng.poisson(4, n_c), 1.0 + rng.poisson(4, n_t)) if ratio else (None, None)
    names = ["a", "b"]
    ref = regression_test_arrays(y_c, x_c, y_t, x_t, names, den_control=d_c, den_treatment=d_t)
    arms = []
    for y, x, d in ((y_c, x_c, d_c), (y_t, x_t, d_t)):
        miss = np.isnan(x[0])
        cols = [np.ones_like(y), np.nan_to_num(x[0]), x[1], miss.astype(float), y]
        v = np.column_stack(cols + ([] if d is None else [d]))
        arms.append(
            RegressionStats.from_packed(
                _packed(v, 2), ["a", "b", "a:missing"], ratio=ratio, packed4=_packed(v, 4)
            )
        )
    res = regression_adjusted_test(arms[0], arms[1])
    for got, want in (
        (res.adjusted.abs_lift, ref.adjusted.abs_lift),
        (res.adjusted.abs_se, ref.adjusted.abs_se),
        (res.adjusted.p_value, ref.adjusted.p_value),
        (res.variance_reduction, ref.variance_reduction),
        (res.unadjusted.abs_se, ref.unadjusted.abs_se),
    ):
        assert got == pytest.approx(want, rel=1e-8, abs=1e-10)
    np.testing.assert_allclose(_f(res.theta_control), _f(ref.theta_control), rtol=1e-7, atol=1e-9)
    assert res.n_filled_control == {"a": 9.0}
    assert res.n_filled_treatment == {"a": 4.0}


def test_missing_policy_is_pooled_mean_fill_plus_indicator(rng: np.random.Generator) -> None:
    n_c, n_t = 300, 320
    x_c, x_t = rng.normal(3, 1, (2, n_c)), rng.normal(3, 1, (2, n_t))
    y_c = x_c.sum(0) + rng.normal(size=n_c)
    y_t = 0.2 + x_t.sum(0) + rng.normal(size=n_t)
    x_c[1, rng.random(n_c) < 0.1] = np.nan
    x_t[1, rng.random(n_t) < 0.2] = np.nan
    fill = np.nanmean(np.r_[x_c[1], x_t[1]])

    def design(x: Arr) -> Arr:
        miss = np.isnan(x[1])
        return np.column_stack([x[0], np.where(miss, fill, x[1]), miss.astype(float)])

    ols = _lin_ols(y_c, design(x_c), y_t, design(x_t), "HC1")
    res = regression_test_arrays(y_c, x_c, y_t, x_t, ["a", "b"])
    assert res.covariates == ("a", "b", "b:missing")
    assert res.adjusted.abs_lift == pytest.approx(ols.params[1], abs=TOL)  # type: ignore[attr-defined]
    assert res.adjusted.abs_se == pytest.approx(ols.bse[1], abs=TOL)  # type: ignore[attr-defined]
    np.testing.assert_allclose(_f(res.theta_control), ols.params[2:5], atol=TOL)  # type: ignore[attr-defined]
    assert res.n_filled_control == {"b": float(np.isnan(x_c[1]).sum())}
    assert res.n_filled_treatment == {"b": float(np.isnan(x_t[1]).sum())}
    # Zero-filled per-arm sums (what Spark can compute in one pass) give the same answer.
    zero = regression_adjusted_test(
        RegressionStats.from_arrays(y_c, x_c, ["a", "b"]),
        RegressionStats.from_arrays(y_t, x_t, ["a", "b"]),
    )
    assert zero.adjusted.abs_lift == pytest.approx(res.adjusted.abs_lift, abs=1e-9)
    assert zero.adjusted.abs_se == pytest.approx(res.adjusted.abs_se, abs=1e-9)
    np.testing.assert_allclose(_f(zero.theta_control), _f(res.theta_control), atol=1e-8)


def test_indicator_missing_from_one_arm_is_all_zero_there(rng: np.random.Generator) -> None:
    x_c, x_t = rng.normal(size=(1, 200)), rng.normal(size=(1, 220))
    y_c, y_t = x_c[0] + rng.normal(size=200), x_t[0] + rng.normal(size=220)
    x_t[0, :15] = np.nan
    res = regression_adjusted_test(
        RegressionStats.from_arrays(y_c, x_c, ["a"]), RegressionStats.from_arrays(y_t, x_t, ["a"])
    )
    assert res.covariates == ("a", "a:missing")
    assert res.theta_control[1] == 0.0  # constant in control: slope 0 there
    assert res.n_filled_control == {"a": 0.0}
    assert res.n_filled_treatment == {"a": 15.0}
    assert math.isfinite(float(res.adjusted.p_value))


def test_no_covariates_is_the_unadjusted_difference_in_the_same_family(
    rng: np.random.Generator,
) -> None:
    y_c, y_t = rng.exponential(2.0, 300), rng.exponential(2.2, 450)
    empty_c, empty_t = np.zeros((0, 300)), np.zeros((0, 450))
    hc2 = regression_test_arrays(y_c, empty_c, y_t, empty_t, [], cov_type="HC2")
    welch = welch_t_test(SampleStats.from_array(y_c), SampleStats.from_array(y_t))
    assert hc2.adjusted.abs_lift == pytest.approx(welch.abs_lift, abs=1e-12)
    assert hc2.adjusted.abs_se == pytest.approx(welch.abs_se, rel=1e-12)  # HC2 = Welch SE
    hc1 = regression_test_arrays(y_c, empty_c, y_t, empty_t, [])
    n = 750.0
    want = math.sqrt(n / (n - 2) * (y_c.var() / 300 + y_t.var() / 450))
    assert hc1.adjusted.abs_se == pytest.approx(want, rel=1e-12)
    assert hc1.adjusted.abs_se == hc1.unadjusted.abs_se
    assert hc1.variance_reduction == 0.0
    # equal arms: HC1 equals Welch exactly
    eq = regression_test_arrays(y_c, empty_c, y_t[:300], empty_c, [])
    ref = welch_t_test(SampleStats.from_array(y_c), SampleStats.from_array(y_t[:300]))
    assert eq.adjusted.abs_se == pytest.approx(ref.abs_se, rel=1e-12)
    # binomial: unpooled Wald with the HC1 factor
    b_c, b_t = (rng.random(300) < 0.1).astype(float), (rng.random(450) < 0.13).astype(float)
    binom = regression_test_arrays(b_c, empty_c, b_t, empty_t, [])
    p_c, p_t = b_c.mean(), b_t.mean()
    wald = math.sqrt(n / (n - 2) * (p_c * (1 - p_c) / 300 + p_t * (1 - p_t) / 450))
    assert binom.adjusted.abs_se == pytest.approx(wald, rel=1e-12)


def test_uninformative_covariate_changes_only_the_variance_reduction(
    rng: np.random.Generator,
) -> None:
    n = 4000
    y_c, y_t = (rng.random(n) < 0.10).astype(float), (rng.random(n) < 0.115).astype(float)
    x_c, x_t = rng.normal(size=(1, n)), rng.normal(size=(1, n))
    res = regression_test_arrays(y_c, x_c, y_t, x_t, ["noise"])
    # In-sample R² of a useless covariate is ~χ²_1/n per arm plus the HC1 dof change 2/N:
    # a few 1e-4 here; 0.003 is > 5 of its standard deviations.
    assert abs(float(res.variance_reduction)) < 0.003
    assert res.adjusted.abs_se / res.unadjusted.abs_se == pytest.approx(1.0, abs=0.002)
    p_adj, p_unadj = float(res.adjusted.p_value), float(res.unadjusted.p_value)
    assert p_adj == pytest.approx(p_unadj, rel=0.02)


def test_leading_order_se_without_m4_is_close_and_flagged(rng: np.random.Generator) -> None:
    y_c, x_c, y_t, x_t = _data(rng, 2, "mean")
    exact = regression_adjusted_test(
        RegressionStats.from_arrays(y_c, x_c.T, ["a", "b"]),
        RegressionStats.from_arrays(y_t, x_t.T, ["a", "b"]),
    )
    lead = regression_adjusted_test(
        RegressionStats.from_arrays(y_c, x_c.T, ["a", "b"], fourth=False),
        RegressionStats.from_arrays(y_t, x_t.T, ["a", "b"], fourth=False),
    )
    assert lead.adjusted.abs_lift == exact.adjusted.abs_lift
    assert not lead.exact_se
    assert lead.adjusted.method == "regression_hc1_leading"
    assert lead.adjusted.abs_se == pytest.approx(exact.adjusted.abs_se, rel=0.03)  # O(1/n)
    assert lead.adjusted.abs_se != exact.adjusted.abs_se


def test_daily_looks_vectorise(rng: np.random.Generator) -> None:
    y_c, x_c, y_t, x_t = _data(rng, 2, "mean")
    looks = [(60, 80), (150, 200), (240, 310)]
    c = [RegressionStats.from_arrays(y_c[:a], x_c[:a].T, ["a", "b"]) for a, _ in looks]
    t = [RegressionStats.from_arrays(y_t[:b], x_t[:b].T, ["a", "b"]) for _, b in looks]
    stacked = regression_test(RegressionStats.stack(c), RegressionStats.stack(t))
    single = [float(regression_test(a, b).abs_se) for a, b in zip(c, t, strict=True)]
    np.testing.assert_allclose(stacked.abs_se, single, rtol=1e-12)


def test_unanalysable_data_gives_a_reason() -> None:
    tiny = regression_test_arrays(
        [1.0, 2.0], [[0.0, 1.0]], [1.0, 3.0, 2.0], [[1.0, 0.0, 2.0]], ["x"]
    )
    assert tiny.adjusted.reason == "insufficient_sample"  # n_c = 2 < 2 + K
    assert math.isnan(float(tiny.adjusted.p_value))
    zero_den = regression_test_arrays(
        [0.0, 0.0, 0.0],
        [[1.0, 2.0, 3.0]],
        [1.0, 2.0, 0.0],
        [[1.0, 0.0, 2.0]],
        ["x"],
        den_control=[0.0, 0.0, 0.0],
        den_treatment=[1.0, 2.0, 1.0],
    )
    assert zero_den.adjusted.reason in ("insufficient_sample", "zero_denominator")


def test_caller_mistakes_raise_naming_the_argument() -> None:
    with pytest.raises(ValueError, match="cov_type"):
        regression_test_arrays([1.0, 2], [[0.0, 1]], [1.0, 2], [[0.0, 1]], ["x"], cov_type="HC3")  # type: ignore[arg-type]
    s = RegressionStats.from_arrays([1.0, 2, 3], [[0.0, 1, 2]], ["x"])
    with pytest.raises(ValueError, match="cov_type"):
        regression_adjusted_test(s, s, cov_type="HC2")
    with pytest.raises(ValueError, match="ratio"):
        regression_adjusted_test(
            s, RegressionStats.from_arrays([1.0, 2, 3], [[0.0, 1, 2]], ["x"], den=[1.0, 1, 1])
        )
    with pytest.raises(ValueError, match="m2 must have shape"):
        RegressionStats(m2=np.eye(3), covariates=("a", "b"))
    with pytest.raises(ValueError, match="without covariate"):
        RegressionStats(m2=np.eye(3), covariates=("a:missing",))
    with pytest.raises(ValueError, match="missing from one arm"):
        regression_adjusted_test(s, RegressionStats.from_arrays([1.0, 2, 3], [[0.0, 1, 2]], ["z"]))
    with pytest.raises(ValueError, match="m4 must be given"):
        regression_adjusted_test(
            s, RegressionStats.from_arrays([1.0, 2, 3], [[0.0, 1, 2]], ["x"], fourth=False)
        )
    with pytest.raises(TypeError, match="RegressionStats"):
        regression_adjusted_test(SampleStats(3, 1, 1), s)  # type: ignore[arg-type]


def test_shift_of_covariates_changes_nothing(rng: np.random.Generator) -> None:
    y_c, x_c, y_t, x_t = _data(rng, 2, "mean")

    def run(shift: float) -> tuple[float, float]:
        r = regression_adjusted_test(
            RegressionStats.from_arrays(y_c, x_c.T + shift, ["a", "b"]),
            RegressionStats.from_arrays(y_t, x_t.T + shift, ["a", "b"]),
        )
        return float(r.adjusted.abs_lift), float(r.adjusted.abs_se)

    assert run(10.0) == pytest.approx(run(0.0), rel=1e-8)


def test_matches_welch_scipy_reference_without_covariates(rng: np.random.Generator) -> None:
    y_c, y_t = rng.normal(0, 1, 80), rng.normal(0.3, 2, 120)
    res = regression_test_arrays(
        y_c, np.zeros((0, 80)), y_t, np.zeros((0, 120)), [], cov_type="HC2"
    )
    ref = stats.ttest_ind(y_t, y_c, equal_var=False)
    assert res.adjusted.statistic == pytest.approx(ref.statistic, rel=1e-12)


def test_cuped_moments_use_the_existing_sums(rng: np.random.Generator) -> None:
    y_c, x_c = rng.normal(size=200), rng.normal(size=200)
    y_t, x_t = rng.normal(size=210) + 0.1, rng.normal(size=210)
    want = regression_adjusted_test(
        RegressionStats.from_arrays(y_c, x_c[None], ["covariate"], fourth=False),
        RegressionStats.from_arrays(y_t, x_t[None], ["covariate"], fourth=False),
    )
    got = regression_adjusted_test(
        cuped_moments(CupedStats.from_arrays(y_c, x_c)),
        cuped_moments(CupedStats.from_arrays(y_t, x_t)),
    )
    assert got.adjusted.abs_se == pytest.approx(float(want.adjusted.abs_se), rel=1e-10)
    d_c = 1.0 + rng.poisson(3, 200)
    ratio = cuped_moments(CupedRatioStats.from_arrays(y_c + 5, d_c, x_c))
    direct = RegressionStats.from_arrays(y_c + 5, x_c[None], ["covariate"], den=d_c, fourth=False)
    np.testing.assert_allclose(ratio.m2, direct.m2, rtol=1e-12)
    assert ratio.ratio
