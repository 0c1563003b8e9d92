"""The shared inference step: relative-lift delta method and vectorised consistency."""

from __future__ import annotations

import numpy as np
import pytest

from ab_testing.stats import SampleStats, welch_t_test


def test_relative_lift_matches_numeric_delta_method(rng: np.random.Generator) -> None:
    a, b = rng.gamma(2.0, 5.0, 400), rng.gamma(2.2, 5.0, 500)
    res = welch_t_test(SampleStats.from_array(a), SampleStats.from_array(b))
    mc, mt = a.mean(), b.mean()
    vc, vt = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    grad = np.array([-mt / mc**2, 1.0 / mc])  # ∂(mt/mc)/∂(mc, mt)
    assert res.rel_lift == pytest.approx(mt / mc - 1.0)
    assert res.rel_se == pytest.approx(np.sqrt(grad @ np.diag([vc, vt]) @ grad), rel=1e-9)
    assert res.rel_ci_low == pytest.approx(
        res.rel_lift - (res.abs_lift - res.abs_ci_low) / res.abs_se * res.rel_se
    )


def test_vectorised_equals_scalar(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=(5, 40)), rng.normal(size=(5, 50))
    vec = welch_t_test(SampleStats.from_array(a), SampleStats.from_array(b))
    assert vec.reason is None
    for i in range(5):
        one = welch_t_test(SampleStats.from_array(a[i]), SampleStats.from_array(b[i]))
        assert one.p_value == pytest.approx(vec.p_value[i])  # type: ignore[index]
        assert one.rel_ci_high == pytest.approx(vec.rel_ci_high[i])  # type: ignore[index]


def test_vectorised_unanalysable_elements_are_nan() -> None:
    c = SampleStats(np.array([10.0, 1.0]), np.array([5.0, 1.0]), np.array([7.0, 1.0]))
    res = welch_t_test(c, c)
    p = np.asarray(res.p_value)
    assert not np.isnan(p[0])
    assert np.isnan(p[1])
    assert res.reason is None
