"""Power, MDE and sample size against statsmodels and closed forms."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power
from statsmodels.stats.proportion import proportion_effectsize

from ab_testing.stats import (
    mde_from_se,
    mde_means,
    mde_proportions,
    power_from_se,
    sample_size_means,
    sample_size_proportions,
)

Z_A, Z_B = stats.norm.isf(0.025), stats.norm.isf(0.2)


def test_sample_size_means_closed_form() -> None:
    # n ≈ 2 (z_{α/2} + z_β)² σ² / δ²; the exact two-sided power also counts the far tail,
    # which lowers n by ~2e-6 relative, hence the looser tolerance on the closed form.
    n = sample_size_means(std=1.0, absolute_mde=0.5)
    assert n == pytest.approx(2 * (Z_A + Z_B) ** 2 / 0.25, rel=1e-5)
    assert n == pytest.approx(62.79, abs=0.01)
    ref = zt_ind_solve_power(effect_size=0.5, alpha=0.05, power=0.8, ratio=2.0)
    assert sample_size_means(1.0, 0.5, ratio=2.0) == pytest.approx(ref, rel=1e-6)


def test_sample_size_proportions() -> None:
    n = sample_size_proportions(0.10, 0.10)  # 10 % -> 11 %
    h = proportion_effectsize(0.11, 0.10)
    assert n == pytest.approx(2 * (Z_A + Z_B) ** 2 / h**2, rel=1e-5)
    ref = NormalIndPower().solve_power(effect_size=abs(h), alpha=0.05, power=0.8, ratio=1.0)
    assert n == pytest.approx(ref, rel=1e-6)
    assert 14_000 < n < 15_500  # the familiar "~15k per arm" for +10 % on a 10 % rate


def test_mde_inverts_sample_size() -> None:
    n = sample_size_proportions(0.05, 0.08, power=0.9)
    assert mde_proportions(0.05, n, power=0.9) == pytest.approx(0.08, rel=1e-6)
    n = sample_size_means(3.0, 0.2, alpha=0.01)
    assert mde_means(3.0, n, alpha=0.01) == pytest.approx(0.2, rel=1e-6)
    assert math.isnan(mde_proportions(0.99, 5))


def test_power_and_mde_from_se() -> None:
    assert mde_from_se(1.0) == pytest.approx(Z_A + Z_B, rel=1e-5)  # ≈ 2.8016 (far tail ignored)
    assert power_from_se(Z_A + Z_B, 1.0) == pytest.approx(0.8, abs=1e-6)
    assert power_from_se(mde_from_se(0.3, power=0.9), 0.3) == pytest.approx(0.9, abs=1e-9)
    assert power_from_se(0.0, 1.0) == pytest.approx(0.05)
    np.testing.assert_allclose(
        power_from_se(np.array([1.0, 2.0]), np.array([0.5, 1.0])), [0.516, 0.516], atol=1e-3
    )
    assert math.isnan(power_from_se(1.0, 0.0))
    assert math.isnan(mde_from_se(math.nan))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"baseline_rate": 1.2, "relative_mde": 0.1}, "baseline_rate"),
        ({"baseline_rate": 0.1, "relative_mde": -0.1}, "relative_mde"),
        ({"baseline_rate": 0.6, "relative_mde": 1.0}, "relative_mde"),
        ({"baseline_rate": 0.1, "relative_mde": 0.1, "power": 2.0}, "power"),
        ({"baseline_rate": 0.1, "relative_mde": 0.1, "alternative": "both"}, "alternative"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sample_size_proportions(**kwargs)
