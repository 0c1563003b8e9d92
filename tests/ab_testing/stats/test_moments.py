"""The order-4 sums Spark keeps (``sandwich_keys``) give the exact robust SE: fixed counts,
agreement with the full tensors and with statsmodels, and the caller's mistakes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import statsmodels.api as sm

from ab_testing.stats import (
    RegressionStats,
    moment_keys,
    regression_adjusted_test,
    regression_test_arrays,
    sandwich_keys,
)

Arr = npt.NDArray[np.float64]


def _sums(v: Arr) -> Arr:
    """What :mod:`ab_testing.outcomes` computes: one sum of products per sandwich key."""
    outcomes = 2 if v.shape[1] == 5 else 1
    keys = sandwich_keys(v.shape[1], outcomes)
    return np.array([np.prod(v[:, list(key)], axis=1).sum() for key in keys])


def test_sandwich_keys_fixed_counts() -> None:
    # mean, 2 covariates: v = (1, x1, x2, y): 35 order-4 monomials less y³·{1,x1,x2} and y⁴
    assert len(moment_keys(4, 4)) == 35
    assert len(sandwich_keys(4, 1)) == 31
    # ratio, 2 covariates: v = (1, x1, x2, num, den): 70 less 4·3 of outcome degree 3 and 5 of 4
    assert len(moment_keys(5, 4)) == 70
    assert len(sandwich_keys(5, 2)) == 53
    # mean, 1 covariate: (1, x, y): 15 less y³, x y³, y⁴
    assert sandwich_keys(3, 1) == [k for k in moment_keys(3, 4) if k.count(2) <= 2]
    assert len(sandwich_keys(3, 1)) == 12
    # every order-2 sum is among them
    for i, j in moment_keys(5, 2):
        assert (0, 0, i, j) in sandwich_keys(5, 2)


def _arms(
    rng: np.random.Generator, ratio: bool
) -> tuple[list[tuple[Arr, Arr, Arr | None]], RegressionStats, RegressionStats]:
    arms: list[tuple[Arr, Arr, Arr | None]] = []
    for n, lift in ((230, 0.0), (260, 0.4)):
        x = np.vstack([rng.poisson(3.0, n), rng.gamma(2.0, 1.5, n)]).astype(np.float64)
        den = 1.0 + rng.poisson(4.0 + x[0]) if ratio else None
        mu = 1.0 + 0.3 * x[0] + 0.2 * x[1] + lift
        y = rng.poisson(mu * (den if den is not None else 1.0) / 4.0).astype(np.float64)
        arms.append((y, x, den))
    stats = []
    for y, x, den in arms:
        cols = [np.ones_like(y), x[0], x[1], y] + ([] if den is None else [den])
        stats.append(
            RegressionStats.from_sums(_sums(np.column_stack(cols)), ["a", "b"], ratio=ratio)
        )
    return arms, stats[0], stats[1]


@pytest.mark.parametrize("ratio", [False, True])
def test_from_sums_equals_the_full_tensors(rng: np.random.Generator, ratio: bool) -> None:
    arms, c, t = _arms(rng, ratio)
    full = [
        RegressionStats.from_arrays(y, x, ["a", "b"], den=den, fourth=True) for y, x, den in arms
    ]
    np.testing.assert_allclose(c.m2, full[0].m2, rtol=1e-14)
    got = regression_adjusted_test(c, t)
    want = regression_adjusted_test(full[0], full[1])
    assert got.adjusted.method == "regression_hc1"
    assert got.exact_se
    for a, b in (
        (got.adjusted.abs_lift, want.adjusted.abs_lift),
        (got.adjusted.abs_se, want.adjusted.abs_se),
        (got.adjusted.p_value, want.adjusted.p_value),
        (got.variance_reduction, want.variance_reduction),
    ):
        assert float(a) == pytest.approx(float(b), rel=1e-10)
    # the arrays path (HC1 through the same moments) and the leading-order SE differ from it
    ref = regression_test_arrays(
        arms[0][0],
        arms[0][1],
        arms[1][0],
        arms[1][1],
        ["a", "b"],
        den_control=arms[0][2],
        den_treatment=arms[1][2],
    )
    assert float(got.adjusted.abs_se) == pytest.approx(float(ref.adjusted.abs_se), rel=1e-9)
    lead = regression_adjusted_test(
        RegressionStats(c.m2, c.covariates, c.ratio), RegressionStats(t.m2, t.covariates, t.ratio)
    )
    assert lead.adjusted.method == "regression_hc1_leading"
    assert float(lead.adjusted.abs_se) != pytest.approx(float(got.adjusted.abs_se), rel=1e-9)


def test_from_sums_matches_statsmodels_hc1(rng: np.random.Generator) -> None:
    arms, c, t = _arms(rng, False)
    (y_c, x_c, _), (y_t, x_t, _) = arms
    y = np.r_[y_c, y_t]
    x = np.hstack([x_c, x_t]).T
    treat = np.r_[np.zeros(y_c.size), np.ones(y_t.size)]
    xc = x - x.mean(0)
    design = np.column_stack([np.ones_like(y), treat, xc, treat[:, None] * xc])
    ols = sm.OLS(y, design).fit(cov_type="HC1")
    got = regression_adjusted_test(c, t).adjusted
    assert float(got.abs_lift) == pytest.approx(ols.params[1], abs=1e-9)
    assert float(got.abs_se) == pytest.approx(ols.bse[1], abs=1e-9)
    assert float(got.p_value) == pytest.approx(ols.pvalues[1], abs=1e-9)


def test_from_sums_vectorises_over_looks(rng: np.random.Generator) -> None:
    _, c, _ = _arms(rng, False)
    looks = [RegressionStats.from_sums(_sums_of(c, k), ["a", "b"]) for k in (1.0, 2.0)]
    stacked = RegressionStats.stack(looks)
    assert stacked.m4 is not None
    assert stacked.m4.shape == (2, 4, 4, 4, 4)


def _sums_of(s: RegressionStats, scale: float) -> Arr:
    assert s.m4 is not None
    return np.array([s.m4[key] * scale for key in sandwich_keys(4, 1)])


def test_caller_mistakes_name_the_argument() -> None:
    with pytest.raises(ValueError, match="sums must have 31 entries"):
        RegressionStats.from_sums(np.zeros(30), ["a", "b"])
    with pytest.raises(TypeError, match="ratio must be a bool"):
        RegressionStats.from_sums(np.zeros(31), ["a", "b"], ratio=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outcomes must be 1 or 2"):
        sandwich_keys(4, 3)
    with pytest.raises(ValueError, match="outcomes must be 1 or 2"):
        sandwich_keys(2, 2)
