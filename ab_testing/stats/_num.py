"""Numeric helpers shared by the stats modules: the scalar-or-array type and conversions."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

Array: TypeAlias = npt.NDArray[np.float64]
Mask: TypeAlias = npt.NDArray[np.bool_]
Num: TypeAlias = float | npt.NDArray[Any]
"""A Python float, or a numpy array for vectorised (element-wise) use."""


def arr(x: Num | npt.ArrayLike) -> Array:
    """Return ``x`` as a float64 ndarray (0-d for scalars)."""
    return np.asarray(x, dtype=np.float64)


def out(x: Array) -> Num:
    """Return a 0-d array as a Python ``float`` and any other array unchanged."""
    if x.ndim == 0:
        return float(x)
    return x


def is_scalar(*xs: Num) -> bool:
    """True when every argument is 0-dimensional (scalar mode: reasons are reported)."""
    return all(np.ndim(x) == 0 for x in xs)


def safe_div(num: npt.NDArray[Any], den: npt.NDArray[Any]) -> Array:
    """Element-wise ``num / den`` with NaN (not inf, not a warning) where ``den == 0``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        res = np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)
    return np.asarray(res, dtype=np.float64)
