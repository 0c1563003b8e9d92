"""How sure an offline comparison is: standard errors and paired bootstrap intervals.

Offline metrics are means over test users (608 on ml-latest-small), so two models' NDCG@10 can
differ by sampling noise alone. These helpers take per-user metric values (plain arrays, the same
users in the same order for every model) and say how far a mean or a ratio of means can be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from recsys.validation import check_int

FloatArray = npt.NDArray[np.float64]
#: Bootstrap resamples evaluated at once by :func:`paired_ratio` (memory: batch x users).
BOOTSTRAP_BATCH = 100


@dataclass(frozen=True, slots=True)
class RatioInterval:
    """Ratio of two models' mean metric over the same users, with a paired bootstrap interval.

    Attributes:
        ratio: ``mean(a) / mean(b)``; NaN when ``mean(b)`` is 0.
        low: Lower end of the interval (percentile bootstrap, users resampled in pairs).
        high: Upper end.
        level: Confidence level in (0, 1).
        n_users: Users compared.
    """

    ratio: float
    low: float
    high: float
    level: float
    n_users: int


def _values(name: str, values: object) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of per-user values, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: values must be finite")
    return arr


def standard_error(values: object) -> float:
    """Standard error of the mean of per-user values (sample sd / sqrt(n)); NaN below 2 users."""
    arr = _values("values", values)
    if len(arr) < 2:
        return float("nan")
    return float(arr.std(ddof=1) / np.sqrt(len(arr)))


def paired_ratio(
    a: object,
    b: object,
    *,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    batch: int = BOOTSTRAP_BATCH,
) -> RatioInterval:
    """``mean(a) / mean(b)`` with a percentile bootstrap interval that resamples users in pairs.

    Args:
        a: Per-user values of the model of interest, ``(n,)``.
        b: Per-user values of the baseline for the same users in the same order, ``(n,)``.
        level: Confidence level, in (0, 1).
        n_resamples: Bootstrap resamples, >= 100.
        seed: Seeds the resampling (the interval is reproducible).
        batch: Resamples drawn and evaluated at once, >= 1: memory is ``O(batch * n)``
            instead of ``O(n_resamples * n)``. The draws come from one seeded generator in
            the same order whatever the batch, so the interval does not depend on it.

    Returns:
        :class:`RatioInterval`; ratio and ends are NaN when ``b`` sums to 0 or ``n < 2``.
    """
    x, y = _values("a", a), _values("b", b)
    if len(x) != len(y):
        raise ValueError(f"a, b: expected the same users, got {len(x)} and {len(y)} values")
    if not (isinstance(level, float) and 0 < level < 1):
        raise ValueError(f"level: must be a float in (0, 1), got {level!r}")
    check_int("n_resamples", n_resamples, 100)
    check_int("batch", batch, 1)
    n = len(x)
    nan = float("nan")
    if n < 2 or y.sum() == 0:
        return RatioInterval(nan, nan, nan, level, n)

    def ratio(p: FloatArray, q: FloatArray, axis: int = -1) -> Any:
        with np.errstate(divide="ignore", invalid="ignore"):
            return p.mean(axis=axis) / q.mean(axis=axis)

    res = stats.bootstrap(
        (x, y),
        ratio,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        batch=batch,
        confidence_level=level,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return RatioInterval(float(ratio(x, y)), float(ci.low), float(ci.high), level, n)
