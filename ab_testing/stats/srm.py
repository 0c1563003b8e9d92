"""Sample-ratio-mismatch (SRM) check: chi-square goodness of fit of units per variant."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from ab_testing.settings import Reason, check_open_unit, check_positive

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, slots=True)
class SrmResult:
    """SRM outcome: chi-square ``statistic`` (df = variants - 1), ``p_value`` in [0, 1].

    ``passed`` is False only when ``p_value < threshold``; with no units at all the
    p-value is NaN, ``reason`` is ``insufficient_sample`` and ``passed`` is True (no
    evidence of a mismatch).
    """

    statistic: float
    p_value: float
    passed: bool
    reason: Reason | None


def normalise_weights(expected_weights: Mapping[str, float]) -> dict[str, float]:
    """Validate (>= 2 variants, finite weights > 0) and scale the weights to sum to 1."""
    if len(expected_weights) < 2:
        raise ValueError(
            f"expected_weights must name at least 2 variants, got {dict(expected_weights)!r}"
        )
    for name, w in expected_weights.items():
        check_positive(f"expected_weights[{name!r}]", w)
    total = math.fsum(expected_weights.values())
    return {name: float(w) / total for name, w in expected_weights.items()}


def srm_test(
    observed: Mapping[str, float],
    expected_weights: Mapping[str, float],
    *,
    threshold: float = 0.001,
) -> SrmResult:
    """Chi-square test (``scipy.stats.chisquare``) of units per variant vs expected weights.

    Args:
        observed: units assigned per variant (counts >= 0); variants absent here count 0.
        expected_weights: intended traffic split per variant (any positive scale).
        threshold: p-value below which SRM fails, in (0, 1); 0.001 is the usual choice
            because SRM is checked on every experiment, every day.
    """
    check_open_unit("threshold", threshold)
    weights = normalise_weights(expected_weights)
    unknown = sorted(set(observed) - set(weights))
    if unknown:
        raise ValueError(f"observed has variants not in expected_weights: {unknown!r}")
    counts = np.array([float(observed.get(v, 0.0)) for v in weights], dtype=np.float64)
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError(f"observed counts must be finite and >= 0, got {dict(observed)!r}")
    total = float(counts.sum())
    if total == 0.0:
        return SrmResult(math.nan, math.nan, True, "insufficient_sample")
    expected = total * np.array(list(weights.values()))
    res = stats.chisquare(counts, f_exp=expected)
    p = float(res.pvalue)
    return SrmResult(float(res.statistic), p, not p < threshold, None)
