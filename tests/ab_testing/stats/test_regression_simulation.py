"""Seeded simulations of Lin's estimator: CI coverage and variance reduction ≈ ρ².

All replications are analysed in one vectorised call (moments with a leading replication
axis), so each test runs in a few seconds.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from ab_testing.stats import RegressionStats, regression_adjusted_test

Arr = npt.NDArray[np.float64]


def _stats(y: Arr, x: Arr) -> RegressionStats:
    """Moments for replications: y (R, n), x (R, n, K) -> m2 (R, q, q), m4 (R, q, q, q, q)."""
    v = np.concatenate([np.ones_like(y)[..., None], x, y[..., None]], axis=-1)
    m2 = np.einsum("rni,rnj->rij", v, v)
    m4 = np.einsum("rni,rnj,rnk,rnl->rijkl", v, v, v, v, optimize=True)
    names = tuple(f"x{i}" for i in range(x.shape[-1]))
    return RegressionStats(m2=m2, covariates=names, m4=m4)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mean", "binomial"])
def test_ci_coverage_is_nominal(kind: str) -> None:
    rng = np.random.default_rng(7)
    # Binomial arms are larger: at n = 200 robust SEs of a 0/1 outcome run ~2 % low
    # (coverage ~94 %, the lower edge of the band).
    reps, effect = 2000, 0.25
    n_c, n_t = (200, 260) if kind == "mean" else (400, 500)
    x_c, x_t = rng.normal(size=(reps, n_c, 2)), rng.normal(size=(reps, n_t, 2))
    # heteroskedastic errors and a heterogeneous effect (slopes differ by arm)
    lat_c = x_c @ [0.8, 0.3] + rng.normal(size=(reps, n_c)) * (1 + 0.5 * np.abs(x_c[..., 0]))
    lat_t = effect + x_t @ [1.0, 0.3] + rng.normal(size=(reps, n_t))
    if kind == "binomial":
        # true effect: difference of the population rates P(lat > 1), by a large draw
        big = rng.normal(size=(2, 2_000_000, 2))
        tail_c = big[0] @ [0.8, 0.3] + rng.normal(size=2_000_000) * (1 + 0.5 * np.abs(big[0, :, 0]))
        tail_t = effect + big[1] @ [1.0, 0.3] + rng.normal(size=2_000_000)
        truth = float(np.mean(tail_t > 1) - np.mean(tail_c > 1))
        y_c, y_t = (lat_c > 1).astype(float), (lat_t > 1).astype(float)
    else:
        truth = effect
        y_c, y_t = lat_c, lat_t
    res = regression_adjusted_test(_stats(y_c, x_c), _stats(y_t, x_t))
    low, high = np.asarray(res.adjusted.abs_ci_low), np.asarray(res.adjusted.abs_ci_high)
    coverage = float(np.mean((low <= truth) & (truth <= high)))
    # 2000 replications: binomial SD of the coverage 0.5 pp; 93-97 % is ±4 SD.
    assert 0.93 <= coverage <= 0.97, coverage
    assert float(np.mean(np.asarray(res.variance_reduction))) > 0.2


def test_variance_reduction_matches_rho_squared() -> None:
    rng = np.random.default_rng(11)
    reps, n, rho = 400, 1000, 0.6
    x_c, x_t = rng.normal(size=(reps, n, 1)), rng.normal(size=(reps, n, 1))
    noise = math.sqrt(1 - rho**2)
    y_c = rho * x_c[..., 0] + noise * rng.normal(size=(reps, n))
    y_t = 0.1 + rho * x_t[..., 0] + noise * rng.normal(size=(reps, n))
    res = regression_adjusted_test(_stats(y_c, x_c), _stats(y_t, x_t))
    mean_vr = float(np.mean(np.asarray(res.variance_reduction)))
    # One replication's reduction is a sample R² with SD ≈ 2ρ(1-ρ²)/sqrt(N) ≈ 0.017 (N =
    # 2000); the mean of 400 has SD ≈ 0.0009.  Finite-sample bias is O(K/n) ≈ 0.001.  A
    # tolerance of 0.005 is > 4 SD plus the bias and still rejects a wrong ρ (ρ = 0.55 or
    # 0.65 gives ρ² 0.30 or 0.42).
    assert mean_vr == pytest.approx(rho**2, abs=0.005)
