"""Always-valid inference for repeated (e.g. daily) looks: the mixture SPRT.

Johari, Koomen, Pekelis & Walsh (2017), "Peeking at A/B Tests: Why it matters, and what
to do about it" (KDD; the Optimizely "Stats Engine").  With the cumulative difference
estimate ``d_k`` and its variance ``V_k`` at look k, the likelihood ratio of
``N(θ, V_k)`` against ``N(0, V_k)``, mixed over ``θ ~ N(0, τ²)``, is

    Λ_k = sqrt(V_k / (V_k + τ²)) · exp( d_k² τ² / (2 V_k (V_k + τ²)) ).

Λ is a martingale under H0 (d_k is a Brownian motion in information time 1/V_k), so by
Ville's inequality ``p_k = min(1, 1 / max_{j<=k} Λ_j)`` is an always-valid p-value:
rejecting whenever ``p_k < α``, at any look, keeps the type-I error <= α however often one
peeks.  ``p_k`` is non-increasing in k by construction.  Inverting the same test gives the
confidence sequence ``d_k ± sqrt(V_k (V_k + τ²)/τ² · (log((V_k + τ²)/V_k) - 2 log α))``,
intersected over looks.  Variances are plug-in estimates, so validity is asymptotic.

Tuning: ``tau`` is the mixing standard deviation in units of the metric's per-unit
standard deviation (a standardised effect, Cohen's d); τ² = tau² · σ², with σ² the per-unit
variance implied at the latest look, ``V / (1/n_c + 1/n_t)``.  Choose tau close to the
effects you expect (default 0.05): type-I error holds for any value; only power moves.
(Howard et al. 2021 asymptotic confidence sequences are an alternative; not implemented.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ab_testing.settings import Reason, check_open_unit, check_positive
from ab_testing.stats._num import Array, arr, safe_div
from ab_testing.stats.sufficient import S, stack_stats
from ab_testing.stats.ttest import welch_t_test

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ab_testing.stats.comparison import Comparison


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """Always-valid results per look (last axis = looks, chronological).

    ``p_values`` are in [0, 1] and non-increasing along the looks; ``ci_low``/``ci_high``
    bound the absolute lift (metric units) at confidence ``1 - alpha`` uniformly over
    looks.  NaN where a look was not analysable.  ``reason`` is set (scalar-looks use
    only) when the final look is not analysable.
    """

    p_values: Array
    ci_low: Array
    ci_high: Array
    reason: Reason | None

    @property
    def p_value(self) -> float | Array:
        """Always-valid p-value at the latest look."""
        last = self.p_values[..., -1]
        return float(last) if last.ndim == 0 else last


def mixture_variance(
    tau: float, variances: npt.ArrayLike, n_control: npt.ArrayLike, n_treatment: npt.ArrayLike
) -> Array:
    """τ² (metric units²) for standardised ``tau``, from the latest look (last axis)."""
    v, nc, nt = arr(variances), arr(n_control), arr(n_treatment)
    unit_var = safe_div(
        v[..., -1:], safe_div(nc[..., -1:] + nt[..., -1:], nc[..., -1:] * nt[..., -1:])
    )
    return tau**2 * unit_var


def msprt_p_values(
    estimates: npt.ArrayLike, variances: npt.ArrayLike, tau2: npt.ArrayLike
) -> Array:
    """Always-valid two-sided p-values over looks (last axis) for a normal-mixture SPRT.

    Args:
        estimates: cumulative difference estimates d_k (metric units).
        variances: their variances V_k (> 0; NaN or <= 0 marks an unusable look).
        tau2: mixing variance τ² (metric units², > 0), broadcastable against the looks.
    """
    d, v, t2 = arr(estimates), arr(variances), arr(tau2)
    ok = np.isfinite(d) & (v > 0) & (t2 > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = t2 / v  # information ratio τ²/V, grows ~ linearly in n
        log_lr = -0.5 * np.log1p(r) + 0.5 * (d * d / v) * r / (1.0 + r)
        p = np.where(ok, np.minimum(1.0, np.exp(-log_lr)), np.nan)
    # Running minimum; fmin skips unusable (NaN) looks, leaving NaN only before the first.
    return np.asarray(np.fmin.accumulate(p, axis=-1), dtype=np.float64)


def msprt_confidence_sequence(
    estimates: npt.ArrayLike, variances: npt.ArrayLike, tau2: npt.ArrayLike, alpha: float
) -> tuple[Array, Array]:
    """(low, high) of the mSPRT confidence sequence for the difference, over looks."""
    check_open_unit("alpha", alpha)
    d, v, t2 = arr(estimates), arr(variances), arr(tau2)
    ok = np.isfinite(d) & (v > 0) & (t2 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = np.sqrt(v * (v + t2) / t2 * (np.log((v + t2) / v) - 2.0 * np.log(alpha)))
    low = np.where(ok, d - half, np.nan)
    high = np.where(ok, d + half, np.nan)
    return (
        np.asarray(np.fmax.accumulate(low, axis=-1), dtype=np.float64),
        np.asarray(np.fmin.accumulate(high, axis=-1), dtype=np.float64),
    )


def always_valid(
    comparison: Comparison, *, tau: float = 0.05, alpha: float = 0.05
) -> SequentialResult:
    """mSPRT p-values and confidence sequence from an array-valued :class:`Comparison`
    whose last axis indexes looks (cumulative data, chronological)."""
    check_positive("tau", tau)
    check_open_unit("alpha", alpha)
    d, se = arr(comparison.abs_lift), arr(comparison.abs_se)
    if d.ndim == 0:
        raise ValueError(
            "comparison must be array-valued with looks on the last axis, got a scalar comparison"
        )
    v = se * se
    tau2 = mixture_variance(tau, v, comparison.n_control, comparison.n_treatment)
    p = msprt_p_values(d, v, tau2)
    low, high = msprt_confidence_sequence(d, v, tau2, alpha)
    reason: Reason | None = None
    if d.ndim == 1 and not np.isfinite(d[-1]):
        reason = "zero_variance" if se[-1] == 0 else "insufficient_sample"
    return SequentialResult(p, low, high, reason)


def sequential_test(
    control_looks: Sequence[S],
    treatment_looks: Sequence[S],
    *,
    test: Callable[[Any, Any], Comparison] = welch_t_test,
    tau: float = 0.05,
    alpha: float = 0.05,
) -> SequentialResult:
    """Always-valid mSPRT over looks from cumulative per-look statistics of each arm.

    Args:
        control_looks, treatment_looks: cumulative statistics at each look, same length,
            chronological (look k includes all data up to look k).
        test: the fixed-horizon test whose estimate and SE are used at each look, e.g.
            :func:`welch_t_test`, :func:`two_proportion_z_test`, :func:`delta_ratio_test`,
            :func:`cuped_t_test`, :func:`~ab_testing.stats.regression.regression_test`.
        tau: mixing SD as a standardised effect (see module docstring), > 0.
        alpha: level of the confidence sequence, in (0, 1).
    """
    if len(control_looks) != len(treatment_looks):
        raise ValueError(
            "control_looks and treatment_looks must have the same length, got "
            f"{len(control_looks)} and {len(treatment_looks)}"
        )
    comp = test(stack_stats(control_looks), stack_stats(treatment_looks))
    return always_valid(comp, tau=tau, alpha=alpha)
