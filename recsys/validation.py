"""Argument checks shared by the recsys configs and functions (models, features, training,
surfaces, evaluation, the reader).

A caller's mistake raises ValueError naming the argument and the value; each check is a pure
function of its inputs, so a config validates the same way wherever it is built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` is an int (not a bool) >= ``minimum``; returns it."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}: must be an int >= {minimum}, got {value!r}")
    return value


def check_typed_int(name: str, value: object, minimum: int) -> None:
    """``value`` is an int (not a bool; TypeError otherwise) >= ``minimum`` (ValueError
    otherwise): the contract of configs that tell a wrong type from a wrong value."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value!r}")


def check_ints(obj: object, minimums: Mapping[str, int]) -> None:
    """:func:`check_int` on each named attribute of ``obj`` (name -> minimum), in order."""
    for name, minimum in minimums.items():
        check_int(name, getattr(obj, name), minimum)


def check_prob(name: str, value: object, *, allow_one: bool) -> None:
    """``value`` is a number in [0, 1), or [0, 1] with ``allow_one``."""
    p = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not (0.0 <= p < 1.0 or (allow_one and p == 1.0)):
        bound = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name}: must be a float in {bound}, got {value!r}")


def check_dims(name: str, value: object) -> None:
    """``value`` is a tuple of layer widths, each an int >= 1 (empty allowed)."""
    if not isinstance(value, tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
    ):
        raise ValueError(f"{name}: must be a tuple of ints >= 1, got {value!r}")
