"""Standard errors and paired bootstrap ratios: fixed values, scipy, seeded simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from recsys.evaluation.uncertainty import paired_ratio, standard_error


def test_standard_error_fixed_values_and_scipy() -> None:
    assert standard_error([0.0, 1.0, 0.0, 1.0]) == pytest.approx(np.sqrt(1 / 3) / 2)
    rng = np.random.default_rng(0)
    x = rng.exponential(size=500)
    assert standard_error(x) == pytest.approx(float(stats.sem(x)))
    assert np.isnan(standard_error([1.0]))


def test_paired_ratio_value_interval_and_reproducibility() -> None:
    a = np.array([1.0, 0.0, 0.5, 0.0, 1.0, 0.25] * 20)
    b = np.array([0.5, 0.0, 0.5, 0.25, 0.0, 0.25] * 20)
    r = paired_ratio(a, b)
    assert r.ratio == pytest.approx(a.mean() / b.mean())
    assert r.low < r.ratio < r.high
    assert r.n_users == 120
    assert r.level == 0.95
    assert paired_ratio(a, b) == r  # seeded
    assert paired_ratio(a, b, seed=1) != r
    wider = paired_ratio(a, b, level=0.99)
    assert wider.low < r.low
    assert wider.high > r.high


def test_batched_resampling_gives_the_one_pass_interval() -> None:
    """Resamples drawn ``batch`` at a time (memory batch x users) give exactly the interval of
    drawing all of them at once (what the bootstrap did before batching)."""
    rng = np.random.default_rng(3)
    a, b = rng.random(301), rng.random(301)

    def ratio(p: np.ndarray, q: np.ndarray, axis: int = -1) -> np.ndarray:  # type: ignore[type-arg]
        return p.mean(axis=axis) / q.mean(axis=axis)  # type: ignore[no-any-return]

    one_pass = stats.bootstrap(
        (a, b),
        ratio,
        paired=True,
        vectorized=True,
        n_resamples=2000,
        confidence_level=0.95,
        method="percentile",
        random_state=np.random.default_rng(0),
    ).confidence_interval
    for batch in (1, 7, 100, 2000, 5000):
        r = paired_ratio(a, b, batch=batch)
        assert (r.low, r.high) == (one_pass.low, one_pass.high)
    with pytest.raises(ValueError, match="batch"):
        paired_ratio(a, b, batch=0)


def test_pairing_narrows_the_interval_when_users_move_together() -> None:
    rng = np.random.default_rng(1)
    base = rng.exponential(size=400)
    a, b = base * 1.2 + rng.normal(0, 0.01, 400), base
    paired = paired_ratio(a, b)
    unpaired = paired_ratio(a, rng.permutation(b))
    assert paired.high - paired.low < 0.2 * (unpaired.high - unpaired.low)
    assert paired.low < 1.2 < paired.high


def test_interval_covers_the_true_ratio_about_as_often_as_it_says() -> None:
    # Per-user NDCG-like values: 0 for most users, else 1/log2(rank + 1); model a hits more often.
    rng = np.random.default_rng(2)
    gains = 1 / np.log2(np.arange(2, 12))
    p_a, p_b, trials, covered = 0.15, 0.10, 200, 0
    true = p_a / p_b  # the same gain distribution given a hit, so the ratio of means is p_a / p_b
    for _ in range(trials):
        hit = rng.random(600)
        g = rng.choice(gains, 600)
        a = np.where(hit < p_a, g, 0.0)
        b = np.where(hit < p_b, g, 0.0)  # paired: b's hits are a subset of a's
        r = paired_ratio(a, b, n_resamples=500, seed=int(rng.integers(1 << 30)))
        covered += r.low <= true <= r.high
    assert 0.89 <= covered / trials <= 0.99


def test_degenerate_and_bad_inputs() -> None:
    r = paired_ratio([1.0, 0.0], [0.0, 0.0])
    assert np.isnan(r.ratio)
    assert np.isnan(r.low)
    with pytest.raises(ValueError, match="same users"):
        paired_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="level"):
        paired_ratio([1.0, 2.0], [1.0, 2.0], level=95)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_resamples"):
        paired_ratio([1.0, 2.0], [1.0, 2.0], n_resamples=10)
    with pytest.raises(ValueError, match="finite"):
        standard_error([1.0, float("nan")])
    with pytest.raises(ValueError, match="1-D"):
        standard_error([[1.0, 2.0]])
