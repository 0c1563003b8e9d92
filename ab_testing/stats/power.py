"""Power, minimum detectable effect (MDE) and sample size (statsmodels ``stats.power``).

The planning functions work per arm from baseline inputs; the ``*_from_se`` functions take
the standard error of an estimated difference, so they apply to every test here (ratio and
CUPED included: a smaller SE gives more power and a smaller MDE).  Effects are magnitudes
(> 0); for ``alternative="smaller"`` the power is that of detecting a decrease of that size.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize
from statsmodels.stats.power import NormalIndPower, normal_power
from statsmodels.stats.proportion import proportion_effectsize

from ab_testing.settings import (
    ALTERNATIVES,
    Alternative,
    check_choice,
    check_open_unit,
    check_positive,
)
from ab_testing.stats._num import Num, arr, out


def _one_sided(alternative: Alternative) -> Alternative:
    # Power is symmetric in the sign of the effect, so "smaller" is solved as "larger".
    return "larger" if alternative == "smaller" else alternative


def _solve_effect(
    nobs1: float, ratio: float, alpha: float, power: float, alternative: Alternative
) -> float:
    """Standardised effect with the given power: root of statsmodels' ``NormalIndPower.power``.

    ``NormalIndPower.solve_power`` stops within ~1e-5 of the root for effect sizes; brentq
    with a tight tolerance on the same power function is exact to ~1e-12.
    """
    nobs = nobs1 * ratio / (1.0 + ratio) if ratio > 0 else nobs1
    engine = NormalIndPower()

    def gap(es: float) -> float:
        return float(engine.power(es, nobs1, alpha, ratio, _one_sided(alternative))) - power

    return float(optimize.brentq(gap, 0.0, 40.0 / math.sqrt(nobs), xtol=1e-14, rtol=1e-13))


def _validate(alpha: float, power: float | None, alternative: str) -> None:
    check_open_unit("alpha", alpha)
    if power is not None:
        check_open_unit("power", power)
    check_choice("alternative", alternative, ALTERNATIVES)


def _validate_plan(
    alpha: float,
    power: float,
    ratio: float,
    alternative: str,
    baseline_rate: float | None = None,
    **positive: float,
) -> None:
    """The checks every planning function makes, in this order: the test's settings, the
    ``baseline_rate`` in (0, 1) when given, each of ``positive`` (name -> value) > 0, ``ratio``."""
    _validate(alpha, power, alternative)
    if baseline_rate is not None:
        check_open_unit("baseline_rate", baseline_rate)
    for name, value in positive.items():
        check_positive(name, value)
    check_positive("ratio", ratio)


def _solve_nobs(
    effect_size: float, alpha: float, power: float, ratio: float, alternative: Alternative
) -> float:
    """Control-arm units with the given power for a standardised effect (statsmodels'
    ``NormalIndPower.solve_power``, which ``zt_ind_solve_power`` is)."""
    return float(
        NormalIndPower().solve_power(
            effect_size=effect_size,
            nobs1=None,
            alpha=alpha,
            power=power,
            ratio=ratio,
            alternative=_one_sided(alternative),
        )
    )


def power_from_se(
    effect: Num, se: Num, *, alpha: float = 0.05, alternative: Alternative = "two-sided"
) -> Num:
    """Power in [0, 1] of a z test to detect an absolute ``effect`` given the SE of the
    estimated difference (both in metric units).  NaN where ``se`` is NaN or <= 0."""
    _validate(alpha, None, alternative)
    e, s = np.abs(arr(effect)), arr(se)
    sigma = np.where(s > 0, s, np.nan)
    return out(arr(normal_power(e, 1.0, alpha, alternative=_one_sided(alternative), sigma=sigma)))


def mde_from_se(
    se: Num, *, alpha: float = 0.05, power: float = 0.8, alternative: Alternative = "two-sided"
) -> Num:
    """Smallest absolute effect (metric units) detectable with ``power`` given the SE of the
    estimated difference: ``k · se``, k solved on ``NormalIndPower.power`` (≈ 2.80 at 5 %/80 %).
    NaN where ``se`` is NaN or <= 0."""
    _validate(alpha, power, alternative)
    k = _solve_effect(1.0, 0.0, alpha, power, alternative)
    s = arr(se)
    return out(np.where(s > 0, k * s, np.nan))


def sample_size_proportions(
    baseline_rate: float,
    relative_mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: Alternative = "two-sided",
) -> float:
    """Control-arm units needed to detect ``baseline_rate · (1 + relative_mde)`` (the
    treatment arm needs ``ratio`` times as many), via Cohen's h
    (``proportion_effectsize``) and ``NormalIndPower``.  Rates in (0, 1)."""
    _validate_plan(alpha, power, ratio, alternative, baseline_rate, relative_mde=relative_mde)
    target = baseline_rate * (1.0 + relative_mde)
    check_open_unit("baseline_rate * (1 + relative_mde)", target)
    h = abs(float(proportion_effectsize(target, baseline_rate)))
    return _solve_nobs(h, alpha, power, ratio, alternative)


def sample_size_means(
    std: float,
    absolute_mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: Alternative = "two-sided",
) -> float:
    """Control-arm units needed to detect a mean difference ``absolute_mde`` (metric units)
    for a per-unit standard deviation ``std`` (z approximation, ``zt_ind_solve_power``)."""
    _validate_plan(alpha, power, ratio, alternative, std=std, absolute_mde=absolute_mde)
    return _solve_nobs(absolute_mde / std, alpha, power, ratio, alternative)


def mde_proportions(
    baseline_rate: float,
    n_control: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: Alternative = "two-sided",
) -> float:
    """Relative MDE (fraction of ``baseline_rate``, an increase) with ``n_control`` control
    units and ``ratio · n_control`` treatment units; NaN if no rate <= 1 is detectable."""
    _validate_plan(alpha, power, ratio, alternative, baseline_rate, n_control=n_control)
    h = _solve_effect(n_control, ratio, alpha, power, alternative)
    # Invert Cohen's h = 2 asin(sqrt(p2)) - 2 asin(sqrt(p1)) for p2.
    angle = math.asin(math.sqrt(baseline_rate)) + abs(h) / 2.0
    if angle > math.pi / 2.0:
        return math.nan
    return math.sin(angle) ** 2 / baseline_rate - 1.0


def mde_means(
    std: float,
    n_control: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: Alternative = "two-sided",
) -> float:
    """Absolute MDE (metric units) of a mean difference for per-unit standard deviation
    ``std``, ``n_control`` control and ``ratio · n_control`` treatment units."""
    _validate_plan(alpha, power, ratio, alternative, std=std, n_control=n_control)
    return _solve_effect(n_control, ratio, alpha, power, alternative) * std
