"""Multiple-testing correction across metrics and variants (statsmodels ``multipletests``)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from statsmodels.stats.multitest import multipletests

from ab_testing.settings import CORRECTIONS, Correction, check_choice
from ab_testing.stats._num import Array, arr


def adjust_p_values(p_values: npt.ArrayLike, method: Correction = "holm") -> Array:
    """Adjusted p-values (same shape) for one family of hypotheses.

    ``holm``: Holm–Bonferroni step-down, controls the family-wise error rate.
    ``fdr_bh``: Benjamini–Hochberg, controls the false discovery rate.
    ``none``: returned unchanged.  NaN entries (unanalysable tests) are left NaN and are
    not counted in the family.  Adjusted p-values are >= the raw ones and <= 1.

    Args:
        p_values: raw p-values in [0, 1] (or NaN).
        method: correction name.
    """
    check_choice("method", method, CORRECTIONS)
    p = arr(p_values)
    finite = ~np.isnan(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError(f"p_values must be in [0, 1], got {p_values!r}")
    result = p.copy()
    if method == "none" or not finite.any():
        return result
    result[finite] = multipletests(p[finite], method=method)[1]
    return result
