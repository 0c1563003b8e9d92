"""Per-arm moment tensors for regression adjustment with any number of covariates.

One arm's sufficient statistics are the sums over its randomisation units of the products of
the per-unit vector ``v = (1, x_1, ..., x_K, y)`` (mean and binomial metrics) or
``v = (1, x_1, ..., x_K, num, den)`` (ratio metrics):

* ``m2 = Σ v vᵀ`` (order 2): holds ``n = m2[0, 0]``, Σx_k, Σy, Σx_k x_l, Σx_k y and Σy².  It
  gives Lin's point estimate, the slopes θ and the leading term of the robust variance.
* ``m4 = Σ v ⊗ v ⊗ v ⊗ v`` (order 4, optional): every monomial of degree <= 4 of the
  per-unit values.  It gives the *exact* HC0/HC1 sandwich of the interacted regression
  (:mod:`ab_testing.stats.regression` shows why order 2 is not enough for the exact value).

Spark computes each distinct monomial once (:func:`moment_keys` lists them, in the order
:meth:`RegressionStats.from_packed` reads them); the symmetric tensors are rebuilt here.

Which order-4 sums the exact sandwich reads.  Per arm the HC0 variance of the adjusted mean is
``Σ_i (uᵀv_i)² (gᵀv_i)²`` (:mod:`ab_testing.stats.regression`): ``e_i = uᵀv_i`` is the residual
and ``w_i = gᵀv_i`` the influence weight ``1/n + (x_i - x̄_arm)ᵀ S_xx⁻¹ δ``, which does not
involve the outcome, so g is zero on the outcome coordinates (y; or num and den, whose
linearisation z only re-mixes 1, num and den).  A term ``m4[a,b,c,d] u_a u_b g_c g_d`` is
therefore non-zero only when c and d index (1, x), i.e. when at most two of the four indices are
outcome coordinates.  :func:`sandwich_keys` lists exactly those monomials (every key of degree
<= 2 in the outcome; they include all of ``m2``, as ``m2[i, j] = m4[0, 0, i, j]``) and
:meth:`RegressionStats.from_sums` rebuilds both tensors from them, the never-read entries
(three or four outcome factors) set to 0.  The covariate transforms (missing fill, ratio
linearisation) map outcome coordinates to outcome coordinates plus the constant, so the entries
they produce from these sums are exact wherever the sandwich reads them.

Missing covariate values (the policy of :func:`ab_testing.stats.regression.regression_test`):
a covariate named ``c`` that may be missing gets a companion column named
``missing_name(c)`` = 1 when the value is missing, 0 otherwise, and the missing value itself
enters every sum as 0 ("zero fill").  The estimator converts this exactly to the documented
"pooled-mean fill + indicator" (the two give identical estimates and standard errors: the
indicator column spans the difference).  Any constant may be subtracted from a covariate
before summing (the estimator is shift-invariant); subtracting a rough mean keeps the
order-4 sums well conditioned.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ab_testing.stats._num import Array, Num, arr, out

if TYPE_CHECKING:
    from collections.abc import Sequence

MISSING_SUFFIX = ":missing"


def missing_name(covariate: str) -> str:
    """Name of the missing-value indicator column of ``covariate``."""
    return f"{covariate}{MISSING_SUFFIX}"


def moment_keys(dim: int, order: int) -> list[tuple[int, ...]]:
    """Index tuples ``i1 <= i2 <= ...`` of the distinct entries of an order-``order`` moment
    tensor of a ``dim``-vector (``dim`` = 2 + K for mean metrics, 3 + K for ratio metrics;
    index 0 is the constant 1).  Spark sums ``Π v[i]`` for each key, in this order."""
    if dim < 1 or order not in (2, 4):
        raise ValueError(f"dim must be >= 1 and order 2 or 4, got dim={dim!r}, order={order!r}")
    return list(itertools.combinations_with_replacement(range(dim), order))


def sandwich_keys(dim: int, outcomes: int) -> list[tuple[int, ...]]:
    """Order-4 keys (as :func:`moment_keys`) with at most two of their indices among the last
    ``outcomes`` coordinates (1 for mean/binomial metrics, 2 for ratio metrics): the sums the
    exact robust SE reads (see the module docstring), which also hold every order-2 sum."""
    if isinstance(outcomes, bool) or outcomes not in (1, 2) or dim < outcomes + 1:
        raise ValueError(
            f"outcomes must be 1 or 2 and dim > outcomes, got dim={dim!r}, outcomes={outcomes!r}"
        )
    first = dim - outcomes
    return [k for k in moment_keys(dim, 4) if sum(i >= first for i in k) <= 2]


def _unpack(packed: Array, dim: int, order: int) -> Array:
    keys = moment_keys(dim, order)
    if packed.shape[-1] != len(keys):
        raise ValueError(
            f"packed order-{order} moments must have {len(keys)} entries for dim {dim}, "
            f"got {packed.shape[-1]}"
        )
    full = np.zeros((*packed.shape[:-1], *([dim] * order)))
    for j, key in enumerate(keys):
        for perm in set(itertools.permutations(key)):
            full[(..., *perm)] = packed[..., j]
    return full


def transform(m2: Array, m4: Array | None, t: Array) -> tuple[Array, Array | None]:
    """Moments of ``T v`` from moments of ``v`` (``t`` of shape (..., p, q), exact)."""
    new2 = np.einsum("...ai,...bj,...ij->...ab", t, t, m2)
    if m4 is None:
        return new2, None
    new4 = np.einsum("...ai,...ijkl->...ajkl", t, m4)
    new4 = np.einsum("...bj,...ajkl->...abkl", t, new4)
    new4 = np.einsum("...ck,...abkl->...abcl", t, new4)
    new4 = np.einsum("...dl,...abcl->...abcd", t, new4)
    return new2, new4


@dataclass(frozen=True, slots=True)
class RegressionStats:
    """Moment tensors of one arm (see the module docstring).

    Attributes:
        m2: ``Σ v vᵀ``, shape (..., q, q) with q = 2 + K (mean/binomial) or 3 + K (ratio);
            leading axes (e.g. daily looks) are vectorised.
        covariates: names of x_1..x_K (missing indicators named by :func:`missing_name`).
        ratio: True when the last two entries of ``v`` are numerator and denominator.
        m4: ``Σ v⊗v⊗v⊗v``, shape (..., q, q, q, q), or None (leading-order robust SE).
    """

    m2: Array
    covariates: tuple[str, ...]
    ratio: bool = False
    m4: Array | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.covariates, tuple) or not all(
            isinstance(c, str) and c for c in self.covariates
        ):
            raise TypeError(f"covariates must be a tuple of non-empty str, got {self.covariates!r}")
        if len(set(self.covariates)) != len(self.covariates):
            raise ValueError(f"covariates must be distinct, got {self.covariates!r}")
        for name in self.covariates:
            base = name.removesuffix(MISSING_SUFFIX)
            if name != base and base not in self.covariates:
                raise ValueError(f"covariates has indicator {name!r} without covariate {base!r}")
        if not isinstance(self.ratio, bool):
            raise TypeError(f"ratio must be a bool, got {self.ratio!r}")
        q = len(self.covariates) + (3 if self.ratio else 2)
        m2 = arr(self.m2)
        if m2.ndim < 2 or m2.shape[-2:] != (q, q):
            raise ValueError(f"m2 must have shape (..., {q}, {q}), got {m2.shape}")
        if not np.all(np.isfinite(m2)):
            raise ValueError("m2 must be finite, got non-finite sums")
        if np.any(m2[..., 0, 0] < 0):
            raise ValueError(f"m2[0, 0] (n) must be >= 0, got {m2[..., 0, 0]!r}")
        object.__setattr__(self, "m2", m2)
        if self.m4 is not None:
            m4 = arr(self.m4)
            if m4.shape != (*m2.shape[:-2], q, q, q, q):
                raise ValueError(f"m4 must have shape (..., {q}, {q}, {q}, {q}), got {m4.shape}")
            if not np.all(np.isfinite(m4)):
                raise ValueError("m4 must be finite, got non-finite sums")
            object.__setattr__(self, "m4", m4)

    # ---- constructors ------------------------------------------------------------------

    @classmethod
    def from_arrays(
        cls,
        y: npt.ArrayLike,
        covariates: Sequence[npt.ArrayLike] | npt.ArrayLike,
        names: Sequence[str],
        *,
        den: npt.ArrayLike | None = None,
        indicators: Sequence[str] | None = None,
        fourth: bool = True,
    ) -> RegressionStats:
        """Moments of one arm from unit-level arrays (units along the last axis).

        Args:
            y: outcome (mean/binomial) or numerator (ratio), shape (n,).
            covariates: K arrays of shape (n,) (or a (K, n) array); NaN marks a missing value.
            names: K covariate names.
            den: per-unit denominator for ratio metrics.
            indicators: covariates that get a missing indicator; None: those with a NaN here
                (the two-arm estimator aligns arms, an absent indicator being all zeros).
            fourth: also compute ``m4`` (exact robust SE).
        """
        yv = arr(y)
        xs = np.asarray(covariates, dtype=np.float64).reshape(len(names), yv.size)
        if yv.ndim != 1 or xs.shape[1] != yv.size:
            raise ValueError(
                f"y and covariates must be 1-D of one length, got {yv.shape}, {xs.shape}"
            )
        if not np.all(np.isfinite(yv)):
            raise ValueError("y must be finite, got NaN or inf")
        flags = (
            [n for n, x in zip(names, xs, strict=True) if np.isnan(x).any()]
            if indicators is None
            else list(indicators)
        )
        for n in flags:
            if n not in names:
                raise ValueError(f"indicators must name covariates {list(names)}, got {n!r}")
        cols = [np.ones_like(yv)]
        cols += [np.where(np.isnan(x), 0.0, x) for x in xs]
        cols += [np.isnan(xs[list(names).index(n)]).astype(np.float64) for n in flags]
        cols.append(yv)
        if den is not None:
            dv = arr(den)
            if dv.shape != yv.shape or not np.all(np.isfinite(dv)):
                raise ValueError(f"den must be finite with shape {yv.shape}, got {dv.shape}")
            cols.append(dv)
        v = np.stack(cols, axis=-1)
        m4 = np.einsum("ni,nj,nk,nl->ijkl", v, v, v, v) if fourth else None
        return cls(
            m2=v.T @ v,
            covariates=(*names, *(missing_name(n) for n in flags)),
            ratio=den is not None,
            m4=m4,
        )

    @classmethod
    def from_packed(
        cls,
        packed2: npt.ArrayLike,
        covariates: Sequence[str],
        *,
        ratio: bool = False,
        packed4: npt.ArrayLike | None = None,
    ) -> RegressionStats:
        """Rebuild the tensors from the distinct sums listed by :func:`moment_keys`."""
        q = len(covariates) + (3 if ratio else 2)
        m2 = _unpack(arr(packed2), q, 2)
        m4 = None if packed4 is None else _unpack(arr(packed4), q, 4)
        return cls(m2=m2, covariates=tuple(covariates), ratio=ratio, m4=m4)

    @classmethod
    def from_sums(
        cls, sums: npt.ArrayLike, covariates: Sequence[str], *, ratio: bool = False
    ) -> RegressionStats:
        """Both tensors from the sums listed by :func:`sandwich_keys` (last axis, in that order;
        leading axes vectorised): what :mod:`ab_testing.outcomes` computes per arm and look.

        ``m4`` entries with three or more outcome factors are not among the sums and are 0;
        the estimator never reads them (module docstring), so the SE is the exact one.
        """
        if not isinstance(ratio, bool):
            raise TypeError(f"ratio must be a bool, got {ratio!r}")
        q = len(covariates) + (3 if ratio else 2)
        keys = sandwich_keys(q, 2 if ratio else 1)
        packed = arr(sums)
        if packed.ndim < 1 or packed.shape[-1] != len(keys):
            raise ValueError(
                f"sums must have {len(keys)} entries on the last axis for {len(covariates)} "
                f"covariate(s) (ratio={ratio}), got shape {packed.shape}"
            )
        m4 = np.zeros((*packed.shape[:-1], q, q, q, q))
        for j, key in enumerate(keys):
            for perm in set(itertools.permutations(key)):
                m4[(..., *perm)] = packed[..., j]
        m2 = m4[..., 0, 0, :, :].copy()
        return cls(m2=m2, covariates=tuple(covariates), ratio=ratio, m4=m4)

    @classmethod
    def stack(cls, looks: Sequence[RegressionStats]) -> RegressionStats:
        """Stack same-shaped statistics (e.g. cumulative daily looks) on a new first axis."""
        first = looks[0]
        for i, s in enumerate(looks):
            if (s.covariates, s.ratio, s.m4 is None) != (
                first.covariates,
                first.ratio,
                first.m4 is None,
            ):
                raise ValueError(f"looks[{i}] differs from looks[0] in covariates, ratio or m4")
        m4 = None if first.m4 is None else np.stack([arr(s.m4) for s in looks])  # type: ignore[arg-type]
        return cls(np.stack([s.m2 for s in looks]), first.covariates, first.ratio, m4)

    # ---- views -------------------------------------------------------------------------

    @property
    def n(self) -> Num:
        """Units in the arm."""
        return out(self.m2[..., 0, 0])

    def n_missing(self, covariate: str) -> Num:
        """Units of the arm whose ``covariate`` was missing (0 without an indicator)."""
        name = missing_name(covariate)
        if name not in self.covariates:
            return out(np.zeros(self.m2.shape[:-2]))
        return out(self.m2[..., 0, 1 + self.covariates.index(name)])


def embed(stats: RegressionStats, covariates: tuple[str, ...]) -> tuple[Array, Array | None]:
    """Moments of ``stats`` re-ordered to ``covariates``; an absent missing indicator is a
    column of zeros (no unit of the arm had the value missing), anything else absent raises."""
    q_old = len(stats.covariates) + (3 if stats.ratio else 2)
    q_new = len(covariates) + (3 if stats.ratio else 2)
    t = np.zeros((q_new, q_old))
    t[0, 0] = 1.0
    for i, name in enumerate(covariates):
        if name in stats.covariates:
            t[1 + i, 1 + stats.covariates.index(name)] = 1.0
        elif not name.endswith(MISSING_SUFFIX):
            raise ValueError(f"covariate {name!r} missing from one arm's statistics")
    tail = 2 if stats.ratio else 1
    for j in range(tail):
        t[q_new - tail + j, q_old - tail + j] = 1.0
    return transform(stats.m2, stats.m4, t)


def union_covariates(*arms: RegressionStats) -> tuple[str, ...]:
    """Covariate names of all arms, first-seen order, indicators after their covariates."""
    names: dict[str, Any] = {}
    for s in arms:
        for c in s.covariates:
            if not c.endswith(MISSING_SUFFIX):
                names[c] = None
    for s in arms:
        for c in s.covariates:
            names[c] = None
    return tuple(names)
