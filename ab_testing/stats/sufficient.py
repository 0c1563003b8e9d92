"""Sufficient statistics per (variant, metric[, slice]) arm, as computed upstream by Spark.

All sums are over *randomisation units* (one row per unit), e.g. for a ratio metric
``sum_num`` is the sum over users of each user's clicks.  Fields may be Python floats or
numpy arrays of one shape (vectorised use: simulations, or one element per daily look).
Variances and covariances are sample (ddof = 1) moments; they are NaN when ``n < 2``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt

from ab_testing.stats._num import Array, Num, arr, out, safe_div
from ab_testing.stats.moments import RegressionStats

if TYPE_CHECKING:
    from collections.abc import Sequence


def _validate(obj: object) -> None:
    """Reject non-finite sums and negative counts, naming the field (a caller mistake)."""
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        try:
            a = arr(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{f.name} must be a number or numeric array, got {value!r}") from exc
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{f.name} must be finite, got {value!r}")
    n_value = getattr(obj, "n")  # noqa: B009 - obj is any of the stats dataclasses
    if np.any(arr(n_value) < 0):
        raise ValueError(f"n must be >= 0, got {n_value!r}")


def _mean(total: Num, n: Num) -> Array:
    return safe_div(arr(total), arr(n))


def _comoment(sum_ab: Num, sum_a: Num, sum_b: Num, n: Num) -> Array:
    """Sample covariance (ddof = 1) from sums: (S_ab - S_a S_b / n) / (n - 1); NaN if n < 2."""
    n_ = arr(n)
    centred = arr(sum_ab) - arr(sum_a) * safe_div(arr(sum_b), n_)
    return safe_div(centred, np.where(n_ >= 2, n_ - 1.0, 0.0))


def _variance(sum_sq: Num, total: Num, n: Num) -> Array:
    # Clip tiny negative values that cancellation in S_xx - S_x^2/n can produce.
    v = _comoment(sum_sq, total, total, n)
    return np.where(np.isnan(v), v, np.maximum(v, 0.0))


def _sums(axis: int, **per_unit: Array) -> dict[str, Num]:
    """Σ over the units (along ``axis``) of each named per-unit value."""
    return {name: out(v.sum(axis)) for name, v in per_unit.items()}


def _fields(stats: SampleStats | RatioStats) -> dict[str, Num]:
    """``stats``'s fields by name (to build a wider sums type from them)."""
    return {f.name: getattr(stats, f.name) for f in fields(stats)}


P = TypeVar("P", "SampleStats", "RatioStats")


def _part(stats: object, kind: type[P]) -> P:
    """The ``kind`` statistics inside ``stats``: its fields of the same names."""
    return kind(**{f.name: getattr(stats, f.name) for f in fields(kind)})


class _OutcomeMoments:
    """Mean and variance of the per-unit outcome ``y`` from ``n``, ``sum``, ``sum_sq``."""

    __slots__ = ()
    n: Num
    sum: Num
    sum_sq: Num

    @property
    def mean(self) -> Num:
        """Outcome mean per unit, unadjusted (NaN if n == 0)."""
        return out(_mean(self.sum, self.n))

    @property
    def variance(self) -> Num:
        """Sample variance of the per-unit outcome, ddof = 1 (NaN if n < 2)."""
        return out(_variance(self.sum_sq, self.sum, self.n))


class _CovariateMoments:
    """Mean and variance of a CUPED arm's per-unit covariate ``x``."""

    __slots__ = ()
    n: Num
    sum_x: Num
    sum_x_sq: Num

    @property
    def mean_x(self) -> Num:
        """Covariate mean per unit."""
        return out(_mean(self.sum_x, self.n))

    @property
    def variance_x(self) -> Num:
        """Sample variance of the covariate."""
        return out(_variance(self.sum_x_sq, self.sum_x, self.n))


@dataclass(frozen=True, slots=True)
class SampleStats(_OutcomeMoments):
    """Per-arm sums of one per-unit value ``y``: ``n`` units, ``sum`` = Σy, ``sum_sq`` = Σy².

    For a binomial metric ``y`` is 0/1, so ``sum_sq == sum`` (see :meth:`from_counts`).
    """

    n: Num
    sum: Num
    sum_sq: Num

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_array(cls, values: npt.ArrayLike, axis: int = -1) -> SampleStats:
        """Sufficient statistics of ``values`` (units along ``axis``)."""
        v = arr(values)
        return cls(n=float(v.shape[axis]), **_sums(axis, sum=v, sum_sq=v * v))

    @classmethod
    def from_counts(cls, n: Num, successes: Num) -> SampleStats:
        """Binomial arm: ``successes`` of ``n`` units (``y`` in {0, 1})."""
        return cls(n=n, sum=successes, sum_sq=successes)


@dataclass(frozen=True, slots=True)
class RatioStats:
    """Per-arm sums for a ratio metric Σnum / Σden (e.g. clicks / impressions).

    ``n`` is the number of randomisation units; ``sum_num_sq``, ``sum_den_sq`` and
    ``sum_num_den`` are Σnum², Σden² and Σnum·den over units (for the delta method).
    """

    n: Num
    sum_num: Num
    sum_num_sq: Num
    sum_den: Num
    sum_den_sq: Num
    sum_num_den: Num

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_arrays(cls, num: npt.ArrayLike, den: npt.ArrayLike, axis: int = -1) -> RatioStats:
        """Sufficient statistics of per-unit numerators and denominators."""
        a, b = arr(num), arr(den)
        return cls(
            n=float(a.shape[axis]),
            **_sums(
                axis, sum_num=a, sum_num_sq=a * a, sum_den=b, sum_den_sq=b * b, sum_num_den=a * b
            ),
        )

    @property
    def mean_num(self) -> Num:
        """Mean numerator per unit."""
        return out(_mean(self.sum_num, self.n))

    @property
    def mean_den(self) -> Num:
        """Mean denominator per unit."""
        return out(_mean(self.sum_den, self.n))

    @property
    def ratio(self) -> Num:
        """Σnum / Σden (NaN if Σden == 0)."""
        return out(safe_div(arr(self.sum_num), arr(self.sum_den)))

    @property
    def variance_num(self) -> Num:
        """Sample variance of the per-unit numerator."""
        return out(_variance(self.sum_num_sq, self.sum_num, self.n))

    @property
    def variance_den(self) -> Num:
        """Sample variance of the per-unit denominator."""
        return out(_variance(self.sum_den_sq, self.sum_den, self.n))

    @property
    def covariance(self) -> Num:
        """Sample covariance of per-unit numerator and denominator."""
        return out(_comoment(self.sum_num_den, self.sum_num, self.sum_den, self.n))


@dataclass(frozen=True, slots=True)
class CupedStats(_OutcomeMoments, _CovariateMoments):
    """Per-arm sums of an outcome ``y`` and a pre-experiment covariate ``x`` (CUPED, mean metric).

    ``sum_x``, ``sum_x_sq`` = Σx, Σx²; ``sum_xy`` = Σx·y over units.
    """

    n: Num
    sum: Num
    sum_sq: Num
    sum_x: Num
    sum_x_sq: Num
    sum_xy: Num

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_arrays(cls, y: npt.ArrayLike, x: npt.ArrayLike, axis: int = -1) -> CupedStats:
        """Sufficient statistics of outcomes ``y`` and covariates ``x``."""
        a, b = arr(y), arr(x)
        covariate = _sums(axis, sum_x=b, sum_x_sq=b * b, sum_xy=a * b)
        return cls(**_fields(SampleStats.from_array(a, axis)), **covariate)

    @property
    def outcome(self) -> SampleStats:
        """The outcome alone (for the unadjusted analysis)."""
        return _part(self, SampleStats)

    @property
    def covariance(self) -> Num:
        """Sample covariance of outcome and covariate."""
        return out(_comoment(self.sum_xy, self.sum, self.sum_x, self.n))


@dataclass(frozen=True, slots=True)
class CupedRatioStats(_CovariateMoments):
    """Per-arm sums for a ratio metric plus a per-unit pre-experiment covariate ``x``.

    Adds to :class:`RatioStats` Σx, Σx², Σnum·x and Σden·x.  ``x`` is typically the unit's
    pre-period numerator or pre-period ratio.
    """

    n: Num
    sum_num: Num
    sum_num_sq: Num
    sum_den: Num
    sum_den_sq: Num
    sum_num_den: Num
    sum_x: Num
    sum_x_sq: Num
    sum_num_x: Num
    sum_den_x: Num

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_arrays(
        cls, num: npt.ArrayLike, den: npt.ArrayLike, x: npt.ArrayLike, axis: int = -1
    ) -> CupedRatioStats:
        """Sufficient statistics of per-unit numerators, denominators and covariates."""
        a, b, c = arr(num), arr(den), arr(x)
        covariate = _sums(axis, sum_x=c, sum_x_sq=c * c, sum_num_x=a * c, sum_den_x=b * c)
        return cls(**_fields(RatioStats.from_arrays(a, b, axis)), **covariate)

    @property
    def ratio_stats(self) -> RatioStats:
        """The ratio metric alone (for the unadjusted analysis)."""
        return _part(self, RatioStats)

    @property
    def covariance_num_x(self) -> Num:
        """Sample covariance of per-unit numerator and covariate."""
        return out(_comoment(self.sum_num_x, self.sum_num, self.sum_x, self.n))

    @property
    def covariance_den_x(self) -> Num:
        """Sample covariance of per-unit denominator and covariate."""
        return out(_comoment(self.sum_den_x, self.sum_den, self.sum_x, self.n))


def cuped_moments(stats: CupedStats | CupedRatioStats, name: str = "covariate") -> RegressionStats:
    """Order-2 moments of a one-covariate CUPED arm (no ``m4``: leading-order SE), the
    covariate named ``name``.

    The existing Spark sums need no change for this: ``CupedStats`` holds exactly
    ``Σ v vᵀ`` of ``v = (1, x, y)`` and ``CupedRatioStats`` that of ``(1, x, num, den)``.
    """
    if isinstance(stats, CupedStats):
        rows = [
            [stats.n, stats.sum_x, stats.sum],
            [stats.sum_x, stats.sum_x_sq, stats.sum_xy],
            [stats.sum, stats.sum_xy, stats.sum_sq],
        ]
    elif isinstance(stats, CupedRatioStats):
        rows = [
            [stats.n, stats.sum_x, stats.sum_num, stats.sum_den],
            [stats.sum_x, stats.sum_x_sq, stats.sum_num_x, stats.sum_den_x],
            [stats.sum_num, stats.sum_num_x, stats.sum_num_sq, stats.sum_num_den],
            [stats.sum_den, stats.sum_den_x, stats.sum_num_den, stats.sum_den_sq],
        ]
    else:
        raise TypeError(f"stats must be CupedStats or CupedRatioStats, got {type(stats).__name__}")
    q = len(rows)
    flat = np.broadcast_arrays(*(arr(v) for r in rows for v in r))
    m2 = np.moveaxis(np.stack(flat).reshape(q, q, *flat[0].shape), (0, 1), (-2, -1))
    return RegressionStats(m2=m2, covariates=(name,), ratio=isinstance(stats, CupedRatioStats))


def regression_outcome(stats: RegressionStats) -> SampleStats | RatioStats:
    """The metric of a regression arm alone, for the engine's unadjusted tests (Welch, pooled z,
    delta)."""
    q = len(stats.covariates) + 1
    m = stats.m2
    if stats.ratio:
        return RatioStats(
            n=out(m[..., 0, 0]),
            sum_num=out(m[..., 0, q]),
            sum_num_sq=out(m[..., q, q]),
            sum_den=out(m[..., 0, q + 1]),
            sum_den_sq=out(m[..., q + 1, q + 1]),
            sum_num_den=out(m[..., q, q + 1]),
        )
    return SampleStats(n=out(m[..., 0, 0]), sum=out(m[..., 0, q]), sum_sq=out(m[..., q, q]))


AnyStats = SampleStats | RatioStats | CupedStats | CupedRatioStats | RegressionStats
S = TypeVar("S", SampleStats, RatioStats, CupedStats, CupedRatioStats, RegressionStats)


def stack_stats(looks: Sequence[S]) -> S:
    """Stack same-typed scalar statistics (e.g. cumulative daily looks) into one array-valued
    object whose fields have shape ``(len(looks),)``, for vectorised analysis of all looks."""
    if len(looks) == 0:
        raise ValueError("looks must be non-empty, got an empty sequence")
    kind = type(looks[0])
    for i, look in enumerate(looks):
        if type(look) is not kind:
            raise TypeError(f"looks[{i}] must be {kind.__name__}, got {type(look).__name__}")
    if isinstance(looks[0], RegressionStats):
        return RegressionStats.stack(looks)  # type: ignore[arg-type,return-value]
    columns: dict[str, Array] = {
        f.name: np.array([getattr(s, f.name) for s in looks], dtype=np.float64)
        for f in fields(kind)
    }
    return kind(**columns)
