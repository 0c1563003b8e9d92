r"""Regression adjustment (CUPED generalised): Lin's interacted OLS with a robust SE.

Estimator (Lin 2013, "Agnostic notes on regression adjustments to experimental data").  With
treatment indicator T, K pre-period covariates x and x̄ their mean over *both* arms, fit

    y = a + τ T + θ_cᵀ (x - x̄) + (θ_t - θ_c)ᵀ T (x - x̄) + e

and report τ̂.  The design spans the same space as one regression per arm,
``y = m_arm + θ_armᵀ (x - x̄) + e`` (columns ``1_arm``, ``1_arm (x - x̄)``), so fitted values
and residuals are the per-arm OLS ones and τ̂ = m̂_t - m̂_c with

    m̂_arm = ȳ_arm + θ_armᵀ (x̄ - x̄_arm),      θ_arm = S_xx,arm⁻¹ S_xy,arm,

S being within-arm centred sums of squares and cross-products: the adjusted mean is the arm's
regression line read at the pooled covariate mean.  All of it comes from ``m2 = Σ v vᵀ``,
``v = (1, x, y)``, per arm.

Robust variance.  The design is block-diagonal by arm, so the sandwich
``(XᵀX)⁻¹ Xᵀ diag(ω_i e_i²) X (XᵀX)⁻¹`` splits into per-arm blocks and
``Var(τ̂) = Var(m̂_t) + Var(m̂_c)``.  For one arm, m̂ = Σ_i w_i y_i with the influence weight

    w_i = 1/n + (x_i - x̄_arm)ᵀ S_xx⁻¹ δ,    δ = x̄ - x̄_arm,

and the HC0 sandwich is ``Σ_i e_i² w_i²``.  Expanding w_i²,

    Σ e_i² w_i² = Σ e_i² / n²  +  (2/n) Σ e_i² x̃_iᵀ S⁻¹δ  +  δᵀ S⁻¹ (Σ e_i² x̃_i x̃_iᵀ) S⁻¹ δ.

The first term is the arm's residual sum of squares over n² (order-2 moments: it is what
"per-arm residual variances" means).  The other two are **not** functions of order-2 moments
(e² x̃ is cubic, e² x̃ x̃ᵀ quartic in the data) but they are small: δ = O(n^-1/2) in a
randomised experiment, so they are O(n^-2) against O(n^-1).  Hence:

* with ``m4 = Σ v⊗v⊗v⊗v`` the sandwich is exact: ``Σ (uᵀv_i)² (gᵀv_i)²`` with e_i = uᵀv_i and
  w_i = gᵀv_i linear in v_i, a contraction of m4 — matching statsmodels to rounding;
* with m2 only, the leading term ``SSE_arm / n²`` is used (``exact_se=False``), relative error
  O(1/n); it is exact when K = 0 (δ-terms vanish).

HC1 multiplies by ``N / (N - P)`` (N units, P = 2 + rank_c + rank_t regressors), exactly as
statsmodels ``cov_type="HC1"``.  HC1 is the default because it is a polynomial in the moments
(HC2/HC3 weight each unit by its leverage, which no finite set of sums reproduces); HC2 is
offered by :func:`regression_test_arrays` only.  With K = 0, HC2 is exactly Welch's s²/n per
arm and HC1 is ``N/(N-2) · Σ(y-ȳ)²/n²`` per arm, which equals Welch's SE when n_c = n_t.

Same family.  The unadjusted comparison reported next to the adjusted one is this estimator
with no covariates (difference of means, unpooled robust SE, z reference), so an
uninformative covariate changes the SE only by O(1/n) and ``variance_reduction`` is
``1 - Var_adj / Var_unadj`` within that family.  For binomial metrics this is the unpooled
Wald test; the engine's pooled two-proportion z remains the test for metrics without
covariates.  Reference distribution: standard normal (statsmodels' default for robust
covariances), so ``df`` is infinite.

Ratio metrics (R = Σnum/Σden) are linearised per arm (delta method, Deng et al. 2018):
``z_i = R_arm + (num_i - R_arm den_i) / mean_den_arm``, whose arm mean is R_arm, and the
estimator above is applied to z.  z is linear in v = (1, x, num, den), so its moments are an
exact linear transform of the arm's moments.

Missing covariate values: pooled-mean fill plus a missing indicator per such covariate (an
extra covariate, interacted like the others); see :mod:`ab_testing.stats.moments` for the
sums.  A covariate constant within an arm gets slope 0 in that arm (Moore-Penrose solve).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from ab_testing.stats._num import Array, Num, arr, out, safe_div
from ab_testing.stats.comparison import Comparison, compare, validate_test_args
from ab_testing.stats.moments import (
    MISSING_SUFFIX,
    RegressionStats,
    embed,
    transform,
    union_covariates,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ab_testing.settings import Alternative, Reason
    from ab_testing.stats._num import Mask

CovType = Literal["HC0", "HC1", "HC2"]
COV_TYPES: tuple[CovType, ...] = ("HC0", "HC1", "HC2")
_TOL = 1e-10


@dataclass(frozen=True, slots=True)
class RegressionResult:
    """Regression-adjusted treatment vs control, with its same-family unadjusted twin.

    ``adjusted.abs_lift`` is τ̂ = adjusted mean_t - adjusted mean_c (its ``mean_*`` are the
    adjusted means, so they subtract to the lift); ``unadjusted`` is the same estimator
    without covariates (``mean_*`` unadjusted).  Both use ``cov_type`` and a z reference
    (``df`` inf); ``p_value`` is for the requested alternative (two-sided by default).
    ``theta_control``/``theta_treatment`` are the per-arm slopes per covariate (outcome units
    per covariate unit; statsmodels' interacted fit reports θ_c and θ_t - θ_c);
    ``variance_reduction`` = 1 - Var_adj / Var_unadj (fraction, < 1, may be slightly
    negative for useless covariates).  ``n_filled_*`` count units whose covariate was
    missing and filled, per covariate with an indicator.
    """

    adjusted: Comparison
    unadjusted: Comparison
    covariates: tuple[str, ...]
    theta_control: tuple[Num, ...]
    theta_treatment: tuple[Num, ...]
    variance_reduction: Num
    n_filled_control: Mapping[str, Num]
    n_filled_treatment: Mapping[str, Num]
    cov_type: CovType
    exact_se: bool


@dataclass(frozen=True, slots=True)
class _ArmFit:
    n: Array
    mean: Array  # unadjusted
    adjusted: Array
    theta: Array  # (..., K)
    rank: Array
    var0: Array  # HC0 sandwich of the adjusted mean (exact or leading term)
    var0_unadj: Array  # HC0 variance of the unadjusted mean: Σ(y - ȳ)² / n²


def _bcast(a: Array, k: int) -> Array:
    return a[(..., *([None] * k))]


def _solve_arm(sxx: Array, sxy: Array, raw_diag: Array) -> tuple[Array, Array, Array]:
    """θ = S⁺ s_xy with S scaled to unit diagonal first; constant covariates get slope 0."""
    d = np.diagonal(sxx, axis1=-2, axis2=-1)
    live = (d > _TOL * np.maximum(raw_diag, 0.0)) & (d > 0)
    scale = np.where(live, np.sqrt(np.where(live, d, 1.0)), 1.0)
    outer = scale[..., :, None] * scale[..., None, :]
    mask = live[..., :, None] & live[..., None, :]
    corr = np.where(mask, sxx / outer, 0.0)
    pinv = np.linalg.pinv(corr, rcond=_TOL, hermitian=True)
    rank = np.rint(np.trace(pinv @ corr, axis1=-2, axis2=-1))
    sinv = np.where(mask, pinv / outer, 0.0)
    return sinv, np.einsum("...kl,...l->...k", sinv, sxy), rank


def _fit_arm(m2: Array, m4: Array | None, centre: Array) -> _ArmFit:
    """Per-arm fit on moments of v = (1, x_1..x_K, y); ``centre`` = pooled covariate mean."""
    k = m2.shape[-1] - 2
    n = m2[..., 0, 0]
    inv_n = safe_div(np.ones_like(n), n)
    means = m2[..., 0, :] * inv_n[..., None]
    c = m2 - n[..., None, None] * means[..., :, None] * means[..., None, :]
    xbar, ybar = means[..., 1 : k + 1], means[..., k + 1]
    sxx, sxy, syy = c[..., 1 : k + 1, 1 : k + 1], c[..., 1 : k + 1, k + 1], c[..., k + 1, k + 1]
    if k:
        raw = np.diagonal(m2[..., 1 : k + 1, 1 : k + 1], axis1=-2, axis2=-1)
        sinv, theta, rank = _solve_arm(np.nan_to_num(sxx), np.nan_to_num(sxy), raw)
    else:
        sinv, theta, rank = np.zeros((*n.shape, 0, 0)), np.zeros((*n.shape, 0)), np.zeros(n.shape)
    delta = centre - xbar
    adjusted = ybar + np.sum(theta * delta, axis=-1)
    sse = np.maximum(syy - np.sum(theta * sxy, axis=-1), 0.0)
    var0 = sse * inv_n**2
    if m4 is not None and k:
        h = np.einsum("...kl,...l->...k", sinv, delta)
        one = np.ones((*n.shape, 1))
        u = np.concatenate([(-ybar + np.sum(theta * xbar, -1))[..., None], -theta, one], -1)
        g = np.concatenate([(inv_n - np.sum(h * xbar, -1))[..., None], h, 0 * one], -1)
        var0 = np.einsum("...ijkl,...i,...j,...k,...l->...", m4, u, u, g, g)
        var0 = np.maximum(var0, 0.0)
    return _ArmFit(n, ybar, adjusted, theta, rank, var0, np.maximum(syy, 0.0) * inv_n**2)


def _linearise(m2: Array, m4: Array | None) -> tuple[Array, Array | None, Array, Array]:
    """Moments of (1, x, z) from (1, x, num, den), z = R + (num - R den)/mean_den."""
    q = m2.shape[-1]
    n, s_num, s_den = m2[..., 0, 0], m2[..., 0, q - 2], m2[..., 0, q - 1]
    ratio, mean_den = safe_div(s_num, s_den), safe_div(s_den, n)
    ok = np.isfinite(ratio) & np.isfinite(mean_den) & (mean_den != 0)
    r = np.where(ok, ratio, 0.0)
    inv_d = np.where(ok, safe_div(np.ones_like(n), mean_den), 0.0)
    t = np.zeros((*n.shape, q - 1, q))
    t[..., np.arange(q - 2), np.arange(q - 2)] = 1.0
    t[..., q - 2, 0], t[..., q - 2, q - 2], t[..., q - 2, q - 1] = r, inv_d, -r * inv_d
    new2, new4 = transform(m2, m4, t)
    return new2, new4, s_den, n


def _mean_fill(
    names: tuple[str, ...], arms: list[tuple[Array, Array | None]]
) -> tuple[list[tuple[Array, Array | None]], dict[str, tuple[Array, Array]]]:
    """Zero-filled sums -> pooled-mean-filled sums (x_k += f_k·missing_k, exact)."""
    q = arms[0][0].shape[-1]
    t = np.broadcast_to(np.eye(q), (*arms[0][0].shape[:-2], q, q)).copy()
    filled: dict[str, tuple[Array, Array]] = {}
    for j, name in enumerate(names):
        if not name.endswith(MISSING_SUFFIX):
            continue
        base = name.removesuffix(MISSING_SUFFIX)
        k, jj = 1 + names.index(base), 1 + j
        observed = sum(a[0][..., 0, 0] - a[0][..., 0, jj] for a in arms)
        total = sum(a[0][..., 0, k] for a in arms)
        t[..., k, jj] = np.where(observed > 0, safe_div(arr(total), arr(observed)), 0.0)
        filled[base] = (arms[0][0][..., 0, jj], arms[1][0][..., 0, jj])
    return [transform(m2, m4, t) for m2, m4 in arms], filled


def _fit_both(
    control: RegressionStats, treatment: RegressionStats
) -> tuple[_ArmFit, _ArmFit, tuple[str, ...], dict[str, tuple[Array, Array]], list[Array]]:
    if not isinstance(control, RegressionStats) or not isinstance(treatment, RegressionStats):
        raise TypeError(
            "control and treatment must be RegressionStats, got "
            f"{type(control).__name__}, {type(treatment).__name__}"
        )
    if control.ratio != treatment.ratio:
        raise ValueError(f"ratio must match, got {control.ratio!r} and {treatment.ratio!r}")
    if (control.m4 is None) != (treatment.m4 is None):
        raise ValueError("m4 must be given for both arms or neither")
    names = union_covariates(control, treatment)
    arms = [embed(control, names), embed(treatment, names)]
    dens: list[Array] = []
    if control.ratio:
        lin = [_linearise(m2, m4) for m2, m4 in arms]
        arms = [(m2, m4) for m2, m4, _, _ in lin]
        dens = [safe_div(s_den, n) for _, _, s_den, n in lin]
    arms, filled = _mean_fill(names, arms)
    k = len(names)
    total_n = arms[0][0][..., 0, 0] + arms[1][0][..., 0, 0]
    centre = safe_div(
        arms[0][0][..., 0, 1 : k + 1] + arms[1][0][..., 0, 1 : k + 1], total_n[..., None]
    )
    fit_c, fit_t = (_fit_arm(m2, m4, np.nan_to_num(centre)) for m2, m4 in arms)
    return fit_c, fit_t, names, filled, dens


def _invalid(fit_c: _ArmFit, fit_t: _ArmFit, dens: list[Array]) -> list[tuple[Reason, Mask]]:
    checks: list[tuple[Reason, Mask]] = [
        ("insufficient_sample", (fit_c.n < 2 + fit_c.rank) | (fit_t.n < 2 + fit_t.rank))
    ]
    if dens:
        checks.append(
            ("zero_denominator", ~np.isfinite(dens[0] * dens[1]) | (dens[0] * dens[1] == 0))
        )
    return checks


def _compose(
    method: str,
    fit_c: _ArmFit,
    fit_t: _ArmFit,
    var_c: tuple[Array, Array],
    var_t: tuple[Array, Array],
    names: tuple[str, ...],
    filled: dict[str, tuple[Array, Array]],
    invalid: list[tuple[Reason, Mask]],
    cov_type: CovType,
    exact: bool,
    alpha: float,
    alternative: Alternative,
) -> RegressionResult:
    adjusted, unadjusted = (
        compare(
            method=name,
            n_c=out(fit_c.n),
            n_t=out(fit_t.n),
            shown_mean_c=out(est_c),
            shown_mean_t=out(est_t),
            est_c=est_c,
            est_t=est_t,
            var_c=v_c,
            var_t=v_t,
            df=None,
            alpha=alpha,
            alternative=alternative,
            invalid=invalid,
        )
        for name, est_c, est_t, v_c, v_t in (
            (method, fit_c.adjusted, fit_t.adjusted, var_c[0], var_t[0]),
            (
                f"regression_{cov_type.lower()}_unadjusted",
                fit_c.mean,
                fit_t.mean,
                var_c[1],
                var_t[1],
            ),
        )
    )
    reduction = 1.0 - safe_div(var_c[0] + var_t[0], var_c[1] + var_t[1])
    return RegressionResult(
        adjusted=adjusted,
        unadjusted=unadjusted,
        covariates=names,
        theta_control=tuple(out(fit_c.theta[..., i]) for i in range(len(names))),
        theta_treatment=tuple(out(fit_t.theta[..., i]) for i in range(len(names))),
        variance_reduction=out(reduction),
        n_filled_control={b: out(c) for b, (c, _) in filled.items()},
        n_filled_treatment={b: out(t) for b, (_, t) in filled.items()},
        cov_type=cov_type,
        exact_se=exact,
    )


def _check(cov_type: object, allowed: tuple[str, ...], alpha: float, alternative: str) -> None:
    validate_test_args(alpha, alternative)
    if cov_type not in allowed:
        raise ValueError(f"cov_type must be one of {list(allowed)}, got {cov_type!r}")


def regression_adjusted_test(
    control: RegressionStats,
    treatment: RegressionStats,
    *,
    cov_type: CovType = "HC1",
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> RegressionResult:
    """Lin's regression-adjusted test from per-arm moments (see the module docstring).

    Args:
        control, treatment: per-arm moments with the same covariates (an indicator absent
            from one arm means no unit there had the value missing) and the same ``ratio``.
        cov_type: "HC0" or "HC1" (statsmodels' definitions); the SE is exact when both arms
            carry ``m4``, else its leading term (``exact_se`` False).
        alpha: significance level in (0, 1); the CIs are two-sided ``1 - alpha``.
        alternative: H1 for the adjusted ``mean_t - mean_c``.
    """
    _check(cov_type, ("HC0", "HC1"), alpha, alternative)
    fit_c, fit_t, names, filled, dens = _fit_both(control, treatment)
    total = fit_c.n + fit_t.n
    one = np.ones_like(total)
    adj_f, unadj_f = one, one
    if cov_type == "HC1":
        adj_f = safe_div(total, total - 2.0 - fit_c.rank - fit_t.rank)
        unadj_f = safe_div(total, total - 2.0)
    exact = control.m4 is not None or not names
    method = f"regression_{cov_type.lower()}" + ("" if exact else "_leading")
    return _compose(
        method,
        fit_c,
        fit_t,
        (adj_f * fit_c.var0, unadj_f * fit_c.var0_unadj),
        (adj_f * fit_t.var0, unadj_f * fit_t.var0_unadj),
        names,
        filled,
        _invalid(fit_c, fit_t, dens),
        cov_type,
        exact,
        alpha,
        alternative,
    )


def regression_test(
    control: RegressionStats,
    treatment: RegressionStats,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """The adjusted :class:`Comparison` of :func:`regression_adjusted_test` with HC1 (the
    engine's test signature, used per metric and per daily look)."""
    return regression_adjusted_test(
        control, treatment, alpha=alpha, alternative=alternative
    ).adjusted


def _design(
    y: Array, xs: Array, den: Array | None, fill: Array, flags: list[int]
) -> tuple[Array, Array]:
    """Per-unit outcome (z for ratios) and filled covariates with indicators, (n, K')."""
    if den is not None:
        r, d = y.sum() / den.sum(), den.mean()
        y = r + (y - r * den) / d
    miss = np.isnan(xs)
    x = np.where(miss, fill[:, None], xs)
    return y, np.vstack([x, *(miss[i].astype(np.float64) for i in flags)]).T


def _hc2_arm(y: Array, x: Array, centre: Array) -> tuple[float, float]:
    """HC2 variance of the arm's adjusted and unadjusted means (unit-level leverages)."""
    n = y.size
    xc = x - x.mean(0)
    s = xc.T @ xc
    sinv, theta, _ = _solve_arm(s, xc.T @ (y - y.mean()), np.sum(x * x, 0))
    e = y - y.mean() - xc @ theta
    lev = 1.0 / n + np.einsum("nk,kl,nl->n", xc, sinv, xc)
    w = 1.0 / n + xc @ (sinv @ (centre - x.mean(0)))
    e0 = y - y.mean()
    return float(np.sum(e**2 * w**2 / (1.0 - lev))), float(np.sum(e0**2) / (n * (n - 1.0)))


def regression_test_arrays(
    y_control: npt.ArrayLike,
    x_control: npt.ArrayLike,
    y_treatment: npt.ArrayLike,
    x_treatment: npt.ArrayLike,
    names: Sequence[str],
    *,
    den_control: npt.ArrayLike | None = None,
    den_treatment: npt.ArrayLike | None = None,
    cov_type: CovType = "HC1",
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> RegressionResult:
    """Lin's regression-adjusted test from unit-level arrays.

    Args:
        y_control, y_treatment: outcome (or ratio numerator) per unit, shape (n_arm,).
        x_control, x_treatment: covariates, shape (K, n_arm); NaN = missing (filled with
            the covariate's mean over both arms, plus a missing indicator covariate).
        names: the K covariate names.
        den_control, den_treatment: per-unit ratio denominators (ratio metrics only).
        cov_type: "HC0", "HC1" (computed through :class:`RegressionStats`, identical to
            :func:`regression_adjusted_test` on ``from_arrays`` moments) or "HC2"
            (unit leverages; no sufficient-statistics equivalent).
        alpha, alternative: as for the other tests.
    """
    _check(cov_type, COV_TYPES, alpha, alternative)
    if (den_control is None) != (den_treatment is None):
        raise ValueError("den_control and den_treatment must both be given or both be None")
    k = len(names)
    ys = [arr(y_control), arr(y_treatment)]
    xs = [arr(x).reshape(k, y.size) for x, y in zip((x_control, x_treatment), ys, strict=True)]
    pooled = np.hstack(xs)
    observed = ~np.isnan(pooled)
    fill = safe_div(np.where(observed, pooled, 0.0).sum(1), observed.sum(1).astype(np.float64))
    fill = np.nan_to_num(fill)
    flags = [i for i in range(k) if not observed[i].all()]
    dens = [None if d is None else arr(d) for d in (den_control, den_treatment)]
    stats = [
        RegressionStats.from_arrays(
            y,
            x - fill[:, None],
            names,
            den=d,
            indicators=[names[i] for i in flags],
            fourth=cov_type != "HC2",
        )
        for y, x, d in zip(ys, xs, dens, strict=True)
    ]
    if cov_type != "HC2":
        return regression_adjusted_test(
            stats[0], stats[1], cov_type=cov_type, alpha=alpha, alternative=alternative
        )
    fit_c, fit_t, names_all, filled, lin_dens = _fit_both(stats[0], stats[1])
    designs = [_design(y, x, d, fill, flags) for y, x, d in zip(ys, xs, dens, strict=True)]
    centre = np.vstack([designs[0][1], designs[1][1]]).mean(0)
    (va_c, vu_c), (va_t, vu_t) = (_hc2_arm(z, x, centre) for z, x in designs)
    return _compose(
        "regression_hc2",
        fit_c,
        fit_t,
        (arr(va_c), arr(vu_c)),
        (arr(va_t), arr(vu_t)),
        names_all,
        filled,
        _invalid(fit_c, fit_t, lin_dens),
        "HC2",
        True,
        alpha,
        alternative,
    )
