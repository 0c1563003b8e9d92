"""The mSPRT on regression-adjusted statistics (Lin, HC1, several covariates).

Three ways: the p-value equals the mSPRT fed statsmodels' interacted-OLS estimate and HC1
variance at each look; a literal case; and a seeded A/A simulation under daily peeking, where the
always-valid p keeps its level while naive daily z tests do not.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import numpy.typing as npt
import pytest
import statsmodels.api as sm

from ab_testing.stats import (
    RegressionStats,
    always_valid,
    msprt_p_values,
    regression_test,
    sequential_test,
)
from ab_testing.stats.sequential import mixture_variance

Arr = npt.NDArray[np.float64]


def _unit_vectors(rng: np.random.Generator, shape: tuple[int, ...], effect: float) -> Arr:
    """v = (1, x1, x2, y) per unit: y depends on both covariates, heteroskedastic noise."""
    x1 = rng.poisson(3.0, shape).astype(np.float64)
    x2 = rng.gamma(2.0, 1.0, shape)
    noise = rng.normal(size=shape) * (0.5 + 0.3 * x2)
    y = 1.0 + 0.5 * x1 + 0.8 * x2 + effect + noise
    return np.stack([np.ones(shape), x1, x2, y], axis=-1)


def _cumulative_stats(v: Arr) -> RegressionStats:
    """Cumulative per-look moments from v of shape (..., looks, units_per_look, 4)."""
    m2 = np.cumsum(np.einsum("...ui,...uj->...ij", v, v), axis=-3)
    m4 = np.cumsum(np.einsum("...ui,...uj,...uk,...ul->...ijkl", v, v, v, v), axis=-5)
    return RegressionStats(m2, ("x1", "x2"), m4=m4)


def test_equals_the_msprt_of_statsmodels_hc1_at_each_look() -> None:
    rng = np.random.default_rng(18)
    looks, per_look = 4, 80
    v_c, v_t = (
        _unit_vectors(rng, (looks, per_look), 0.0),
        _unit_vectors(rng, (looks, per_look), 0.3),
    )
    stats_c, stats_t = _cumulative_stats(v_c), _cumulative_stats(v_t)
    per = [
        (
            RegressionStats(stats_c.m2[k], stats_c.covariates, m4=stats_c.m4[k]),  # type: ignore[index]
            RegressionStats(stats_t.m2[k], stats_t.covariates, m4=stats_t.m4[k]),  # type: ignore[index]
        )
        for k in range(looks)
    ]
    got = sequential_test(
        [c for c, _ in per], [t for _, t in per], test=partial(regression_test, alpha=0.05)
    )
    est, var, n_c, n_t = [], [], [], []
    for k in range(looks):
        a, b = v_c[: k + 1].reshape(-1, 4), v_t[: k + 1].reshape(-1, 4)
        y = np.r_[a[:, 3], b[:, 3]]
        x = np.vstack([a[:, 1:3], b[:, 1:3]])
        treat = np.r_[np.zeros(len(a)), np.ones(len(b))]
        xc = x - x.mean(0)
        design = np.column_stack([np.ones_like(y), treat, xc, treat[:, None] * xc])
        ols = sm.OLS(y, design).fit(cov_type="HC1")
        est.append(ols.params[1])
        var.append(ols.bse[1] ** 2)
        n_c.append(len(a))
        n_t.append(len(b))
    tau2 = mixture_variance(0.05, var, n_c, n_t)
    want = msprt_p_values(est, var, tau2)
    np.testing.assert_allclose(got.p_values, want, rtol=1e-8)
    assert got.reason is None
    assert 0.0 < got.p_value <= 1.0


def test_literal_value_on_a_tiny_dataset() -> None:
    # Two looks of a small arm pair: the p-value is min over looks of 1/Λ_k with the adjusted
    # estimate and its HC1 variance, as msprt_p_values computes from them.
    v_c = np.array(
        [
            [[1, 0, 1, 1.0], [1, 1, 0, 2.0], [1, 2, 1, 2.5]],
            [[1, 3, 2, 4.0], [1, 1, 1, 1.5], [1, 0, 2, 1.0]],
        ]
    )
    v_t = np.array(
        [
            [[1, 1, 1, 3.0], [1, 2, 0, 3.5], [1, 0, 0, 1.0]],
            [[1, 3, 1, 5.0], [1, 2, 2, 4.0], [1, 1, 2, 3.0]],
        ]
    )
    c, t = _cumulative_stats(v_c), _cumulative_stats(v_t)
    comp = regression_test(c, t)
    seq = always_valid(comp, tau=1.0)
    d, se = np.asarray(comp.abs_lift), np.asarray(comp.abs_se)
    # look 1: 3 units per arm, 2 covariates per arm -> 2 + 2 + 2 = 6 regressors = N: unusable
    assert np.isnan(d[0])
    assert np.isnan(seq.p_values[0])
    unit_var = se[1] ** 2 / (1 / 6 + 1 / 6)
    r = unit_var / se[1] ** 2  # τ²/V with tau = 1
    lam = np.sqrt(1 / (1 + r)) * np.exp(0.5 * d[1] ** 2 / se[1] ** 2 * r / (1 + r))
    assert seq.p_values[1] == pytest.approx(min(1.0, 1.0 / lam), rel=1e-12)


def test_aa_level_kept_under_daily_peeking() -> None:
    rng = np.random.default_rng(2018)
    n_sim, looks, per_look = 1000, 10, 40
    c = _cumulative_stats(_unit_vectors(rng, (n_sim, looks, per_look), 0.0))
    t = _cumulative_stats(_unit_vectors(rng, (n_sim, looks, per_look), 0.0))
    comp = regression_test(c, t)
    assert comp.method == "regression_hc1"
    seq = always_valid(comp, tau=0.05)
    sequential_rate = float(np.mean(seq.p_values[:, -1] < 0.05))
    peeking_rate = float(np.mean((np.asarray(comp.p_value) < 0.05).any(axis=1)))
    fixed_rate = float(np.mean(np.asarray(comp.p_value)[:, -1] < 0.05))
    assert sequential_rate <= 0.06
    assert peeking_rate > 0.12  # naive daily tests on the adjusted estimate
    assert 0.03 <= fixed_rate <= 0.07
    # a real effect is still found
    t1 = _cumulative_stats(_unit_vectors(rng, (200, looks, per_look), 0.4))
    c1 = _cumulative_stats(_unit_vectors(rng, (200, looks, per_look), 0.0))
    power = float(np.mean(always_valid(regression_test(c1, t1), tau=0.1).p_values[:, -1] < 0.05))
    assert power > 0.8, (sequential_rate, peeking_rate, fixed_rate, power)
