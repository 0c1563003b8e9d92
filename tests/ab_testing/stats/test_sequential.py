"""mSPRT always-valid p-values: hand values, monotonicity, A/A under 14 looks vs peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ab_testing.stats import (
    SampleStats,
    always_valid,
    msprt_confidence_sequence,
    msprt_p_values,
    sequential_test,
    two_proportion_z_test,
    welch_t_test,
)

N_SIM, LOOKS, PER_DAY = 2000, 14, 100


def _daily_cumulative(
    rng: np.random.Generator, effect: float = 0.0
) -> tuple[SampleStats, SampleStats]:
    """Cumulative per-look SampleStats with fields of shape (N_SIM, LOOKS)."""
    n = PER_DAY * np.arange(1, LOOKS + 1, dtype=float)
    arms = []
    for shift in (0.0, effect):
        y = rng.normal(shift, 1.0, size=(N_SIM, LOOKS, PER_DAY))
        arms.append(SampleStats(n, np.cumsum(y.sum(2), 1), np.cumsum((y * y).sum(2), 1)))
    return arms[0], arms[1]


def test_hand_computed() -> None:
    # Λ = sqrt(V/(V+τ²)) exp(d²τ²/(2V(V+τ²))) with d=3, V=τ²=1: sqrt(1/2)·e^2.25.
    p = msprt_p_values([0.0, 3.0], [1.0, 1.0], 1.0)
    np.testing.assert_allclose(p, [1.0, 1.0 / (math.sqrt(0.5) * math.exp(2.25))])
    low, high = msprt_confidence_sequence([3.0], [1.0], 1.0, 0.05)
    half = math.sqrt(2.0 * (math.log(2.0) - 2.0 * math.log(0.05)))
    assert (low[0], high[0]) == pytest.approx((3.0 - half, 3.0 + half))


def test_running_minimum_and_unusable_looks() -> None:
    p = msprt_p_values([3.0, 0.0, math.nan, 0.5], [1.0, 1.0, 1.0, 0.0], 1.0)
    assert p[1] == p[0]
    assert p[2] == p[0]
    assert p[3] == p[0]
    assert math.isnan(msprt_p_values([math.nan, 3.0], [1.0, 1.0], 1.0)[0])


def test_aa_error_controlled_under_14_looks_while_peeking_is_not() -> None:
    control, treated = _daily_cumulative(np.random.default_rng(2017))
    comp = welch_t_test(control, treated)
    seq = always_valid(comp, tau=0.05)
    assert seq.p_values.shape == (N_SIM, LOOKS)
    assert np.all(np.diff(seq.p_values, axis=1) <= 0)
    sequential_rate = np.mean(seq.p_values[:, -1] < 0.05)
    peeking_rate = np.mean((np.asarray(comp.p_value) < 0.05).any(axis=1))
    fixed_rate = np.mean(np.asarray(comp.p_value)[:, -1] < 0.05)
    assert sequential_rate <= 0.06
    assert peeking_rate > 0.15  # naive daily t tests: ~3-4x the nominal 5 %
    assert 0.04 <= fixed_rate <= 0.06
    # The confidence sequence excludes 0 exactly when the always-valid p is below alpha.
    excluded = (seq.ci_low[:, -1] > 0) | (seq.ci_high[:, -1] < 0)
    assert np.mean(excluded) == pytest.approx(sequential_rate, abs=0.002)


def test_detects_a_real_effect() -> None:
    control, treated = _daily_cumulative(np.random.default_rng(7), effect=0.2)
    seq = always_valid(welch_t_test(control, treated), tau=0.1)
    assert np.mean(seq.p_values[:, -1] < 0.05) > 0.8


def test_sequential_test_on_per_look_objects() -> None:
    rng = np.random.default_rng(3)
    k_c = np.cumsum(rng.binomial(500, 0.10, 10))
    k_t = np.cumsum(rng.binomial(500, 0.13, 10))
    n = 500 * np.arange(1, 11)
    res = sequential_test(
        [SampleStats.from_counts(a, b) for a, b in zip(n, k_c, strict=True)],
        [SampleStats.from_counts(a, b) for a, b in zip(n, k_t, strict=True)],
        test=two_proportion_z_test,
    )
    assert res.p_values.shape == (10,)
    assert isinstance(res.p_value, float)
    assert 0.0 <= res.p_value <= 1.0
    assert res.reason is None
    with pytest.raises(ValueError, match="same length"):
        sequential_test([SampleStats.from_counts(10, 1)], [], test=two_proportion_z_test)
    with pytest.raises(ValueError, match="tau"):
        sequential_test([SampleStats.from_counts(10, 1)], [SampleStats.from_counts(10, 2)], tau=0.0)


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=20),
    st.floats(0.01, 10.0),
)
def test_p_values_monotone_and_in_unit_interval(steps: list[float], tau2: float) -> None:
    k = np.arange(1, len(steps) + 1, dtype=float)
    d = np.cumsum(steps) / k  # a running mean, like a cumulative estimate
    p = msprt_p_values(d, 1.0 / k, tau2)
    assert np.all((p >= 0.0) & (p <= 1.0))
    assert np.all(np.diff(p) <= 0.0)
