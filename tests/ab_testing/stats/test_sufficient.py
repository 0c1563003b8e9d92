"""Sufficient-statistics dataclasses: derived moments, constructors, validation, stacking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ab_testing.stats import CupedRatioStats, CupedStats, RatioStats, SampleStats, stack_stats


def test_sample_stats_hand_computed() -> None:
    s = SampleStats.from_array([1.0, 2.0, 3.0])
    assert (s.n, s.sum, s.sum_sq) == (3.0, 6.0, 14.0)
    assert s.mean == pytest.approx(2.0)
    assert s.variance == pytest.approx(1.0)


def test_from_counts_is_binomial() -> None:
    s = SampleStats.from_counts(10, 3)
    assert s.mean == pytest.approx(0.3)
    assert s.variance == pytest.approx(np.var([1] * 3 + [0] * 7, ddof=1))


def test_moments_match_numpy(rng: np.random.Generator) -> None:
    num = rng.poisson(3, 500).astype(float)
    den = num + rng.poisson(5, 500)
    x = rng.normal(size=500)
    r = RatioStats.from_arrays(num, den)
    assert r.ratio == pytest.approx(num.sum() / den.sum())
    assert r.variance_num == pytest.approx(np.var(num, ddof=1))
    assert r.variance_den == pytest.approx(np.var(den, ddof=1))
    assert r.covariance == pytest.approx(np.cov(num, den)[0, 1])
    c = CupedStats.from_arrays(num, x)
    assert c.covariance == pytest.approx(np.cov(num, x)[0, 1])
    assert c.variance_x == pytest.approx(np.var(x, ddof=1))
    assert c.outcome == SampleStats.from_array(num)
    cr = CupedRatioStats.from_arrays(num, den, x)
    assert cr.covariance_num_x == pytest.approx(np.cov(num, x)[0, 1])
    assert cr.covariance_den_x == pytest.approx(np.cov(den, x)[0, 1])
    assert cr.ratio_stats == r


def test_vectorised_fields(rng: np.random.Generator) -> None:
    data = rng.normal(size=(4, 30))
    s = SampleStats.from_array(data, axis=1)
    np.testing.assert_allclose(s.variance, data.var(axis=1, ddof=1))
    np.testing.assert_allclose(s.mean, data.mean(axis=1))


def test_small_n_gives_nan_not_error() -> None:
    assert math.isnan(SampleStats(1, 5.0, 25.0).variance)
    assert math.isnan(SampleStats(0, 0.0, 0.0).mean)
    assert math.isnan(RatioStats(3, 1.0, 1.0, 0.0, 0.0, 0.0).ratio)


@pytest.mark.parametrize(("field", "value"), [("n", -1.0), ("sum", math.nan), ("sum_sq", math.inf)])
def test_bad_values_raise_naming_field(field: str, value: float) -> None:
    kwargs = {"n": 3.0, "sum": 1.0, "sum_sq": 1.0, field: value}
    with pytest.raises(ValueError, match=field):
        SampleStats(**kwargs)


def test_non_numeric_raises_type_error() -> None:
    with pytest.raises(TypeError, match="sum"):
        SampleStats(3, "a lot", 1.0)  # type: ignore[arg-type]


def test_stack_stats() -> None:
    looks = [SampleStats(10, 5.0, 7.0), SampleStats(20, 9.0, 15.0)]
    stacked = stack_stats(looks)
    np.testing.assert_array_equal(stacked.n, [10.0, 20.0])
    np.testing.assert_allclose(stacked.mean, [0.5, 0.45])
    with pytest.raises(ValueError, match="looks"):
        stack_stats([])
    with pytest.raises(TypeError, match=r"looks\[1\]"):
        stack_stats([SampleStats(1, 1, 1), RatioStats(1, 1, 1, 1, 1, 1)])  # type: ignore[list-item,type-var]
