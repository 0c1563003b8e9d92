"""Delta-method ratio test: direct numeric reference, reductions, A/A simulation, edge cases."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from ab_testing.stats import (
    RatioStats,
    SampleStats,
    delta_ratio_test,
    two_proportion_z_test,
    welch_t_test,
)

N_SIM = 2000
Arr = npt.NDArray[np.float64]


def _delta_var(num: Arr, den: Arr) -> float:
    """Var(Σnum/Σden) by the delta method, computed directly: ∇g' Σ ∇g / n."""
    mu_n, mu_d = num.mean(), den.mean()
    grad = np.array([1.0 / mu_d, -mu_n / mu_d**2])
    return float(grad @ np.cov(np.vstack([num, den])) @ grad) / len(num)


def _clustered(rng: np.random.Generator, n: int, shape: tuple[int, ...] = ()) -> tuple[Arr, Arr]:
    """Users with 1 + Poisson(9) impressions and a user-specific CTR ~ Beta(0.5, 4.5)."""
    den = 1.0 + rng.poisson(9.0, (*shape, n))
    ctr = rng.beta(0.5, 4.5, (*shape, n))
    return rng.binomial(den.astype(int), ctr).astype(float), den


def test_hand_computed() -> None:
    # Control num [1,2,3], den [1,1,2]: R = 1.5, s²_num = 1, s²_den = 1/3, s_num,den = 0.5,
    # μ_den = 4/3 -> n·Var(R̂) = (1 - 2·1.5·0.5 + 1.5²/3) / (16/9) = 0.140625.
    # Treatment num [2,4,6]: R = 3, s²_num = 4, s_num,den = 1 -> (4 - 6 + 3) / (16/9) = 0.5625.
    res = delta_ratio_test(
        RatioStats.from_arrays([1.0, 2.0, 3.0], [1.0, 1.0, 2.0]),
        RatioStats.from_arrays([2.0, 4.0, 6.0], [1.0, 1.0, 2.0]),
    )
    assert (res.mean_control, res.mean_treatment, res.abs_lift) == pytest.approx((1.5, 3.0, 1.5))
    assert res.abs_se == pytest.approx(math.sqrt(0.140625 / 3 + 0.5625 / 3))
    assert res.rel_lift == pytest.approx(1.0)


def test_matches_direct_delta_method(rng: np.random.Generator) -> None:
    nc, dc = _clustered(rng, 400)
    nt, dt = _clustered(rng, 500)
    res = delta_ratio_test(RatioStats.from_arrays(nc, dc), RatioStats.from_arrays(nt, dt))
    var_c, var_t = _delta_var(nc, dc), _delta_var(nt, dt)
    diff = nt.sum() / dt.sum() - nc.sum() / dc.sum()
    assert res.abs_lift == pytest.approx(diff, abs=1e-9)
    assert res.abs_se == pytest.approx(math.sqrt(var_c + var_t), rel=1e-6)
    df = (var_c + var_t) ** 2 / (var_c**2 / 399 + var_t**2 / 499)
    assert res.p_value == pytest.approx(2 * stats.t.sf(abs(diff) / math.sqrt(var_c + var_t), df))


def test_unit_denominator_reduces_to_welch(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=50), rng.normal(0.3, 1, size=60)
    r = delta_ratio_test(
        RatioStats.from_arrays(a, np.ones(50)), RatioStats.from_arrays(b, np.ones(60))
    )
    w = welch_t_test(SampleStats.from_array(a), SampleStats.from_array(b))
    assert (r.abs_lift, r.abs_se, r.p_value, r.df) == pytest.approx(
        (w.abs_lift, w.abs_se, w.p_value, w.df), rel=1e-9
    )


def test_aa_false_positive_rate_and_naive_overrejection(rng: np.random.Generator) -> None:
    nc, dc = _clustered(rng, 500, (N_SIM,))
    nt, dt = _clustered(rng, 500, (N_SIM,))
    p = np.asarray(
        delta_ratio_test(RatioStats.from_arrays(nc, dc), RatioStats.from_arrays(nt, dt)).p_value
    )
    assert 0.04 <= np.mean(p < 0.05) <= 0.06
    # Treating impressions as independent (a per-impression z test) ignores the per-user
    # clustering and rejects far too often: the reason the delta method is needed.
    naive = two_proportion_z_test(
        SampleStats.from_counts(dc.sum(axis=1), nc.sum(axis=1)),
        SampleStats.from_counts(dt.sum(axis=1), nt.sum(axis=1)),
    ).p_value
    assert np.mean(np.asarray(naive) < 0.05) > 0.12


def test_edge_cases_give_reasons() -> None:
    no_den = RatioStats.from_arrays([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    ok = RatioStats.from_arrays([1.0, 2.0, 0.0], [3.0, 4.0, 2.0])
    res = delta_ratio_test(no_den, ok)
    assert res.reason == "zero_denominator"
    assert math.isnan(res.p_value)
    assert delta_ratio_test(RatioStats.from_arrays([1.0], [2.0]), ok).reason == (
        "insufficient_sample"
    )
    const = RatioStats.from_arrays([1.0, 2.0], [2.0, 4.0])  # every unit has ratio 0.5
    assert delta_ratio_test(const, const).reason == "zero_variance"
