"""Experiment assignment in pure Python: the reference an app can copy (stdlib only).

Bucketing recipe (the contract every implementation follows)
------------------------------------------------------------
::

    message = UTF-8 bytes of  salt + ":" + unit_id
    digest  = XXH64(message, seed=42)        # reference xxHash, unsigned 64-bit
    bucket  = (digest >> 1) mod 10000        # an int in [0, 9999]

Salts never contain ``":"`` (see :mod:`ab_testing.config`), so ``(salt, unit_id)`` maps to one
message and back. Spark's built-in ``xxhash64(expr)`` is exactly XXH64 of the string's UTF-8 bytes
with seed 42, as a signed long; shifting right by one bit (Java ``>>> 1``) makes it non-negative in
every language's signed 64-bit type, and the bias of reducing 2**63 values mod 10000 is ~1e-15.
Any language with an xxHash library reproduces the bucket; :func:`xxh64` below is a stdlib port.

Test vectors ``(salt, unit_id) -> bucket``, checked against both implementations (the last two
messages exceed 32 bytes, XXH64's long-input path)::

    ("exp-checkout", "user-1")                                   -> 4098
    ("layer-ranking", "42")                                      -> 6287
    ("holdout", "")                                              -> 2775
    ("exp-search_v2", "\u00fcn\u00efc\u00f8d\u00e9-\u7528\u6237-7")  -> 5095   (non-ASCII)
    ("layer-home_feed", "a-rather-long-unit-id-0123456789abcdef") -> 7129

Why XXH64 and not SHA-256: SHA-256 is in every standard library, but Spark's ``sha2`` builds a
``MessageDigest`` and a hex string per row; on the project's 2-core machine it ran at ~0.58M
rows/s against 2.6M rows/s for ``xxhash64``, which could not give the >= 10x lead over a Python
UDF that the platform requires (SHA-256 managed ~4.6x). XXH64 is a standard, well-tested
non-cryptographic hash (SMHasher clean); assignment needs uniformity and independence across
salts, not secrecy.

Decision logic (shared with :mod:`ab_testing.assignment_spark` through
:meth:`ab_testing.config.ExperimentsConfig.active`): a unit whose bucket under the holdout salt is
below ``holdout.buckets`` is in no experiment. Otherwise, in each layer, the unit's bucket under
the layer salt picks at most one experiment (active experiments of a layer own disjoint bucket
ranges, of which the ramp makes a prefix live); the unit must then pass every targeting filter, and
its bucket under the experiment salt picks the variant by the quantised weights. The variant
depends only on the experiment salt, so ramping up (a longer live prefix) adds units and never
moves one between arms.
"""

from __future__ import annotations

import bisect
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Final, cast

if TYPE_CHECKING:
    from ab_testing.config_model import Experiment, ExperimentsConfig, TargetingFilter

#: Buckets per salt; every range, weight and holdout is expressed in these (1 bucket = 0.01%).
N_BUCKETS: Final = 10_000
#: Seed of XXH64, fixed by Spark's ``xxhash64``.
SEED: Final = 42
#: Separator between salt and unit id in the hashed message.
SEPARATOR: Final = ":"

_M64: Final = 0xFFFFFFFFFFFFFFFF
_P1: Final = 0x9E3779B185EBCA87
_P2: Final = 0xC2B2AE3D27D4EB4F
_P3: Final = 0x165667B19E3779F9
_P4: Final = 0x85EBCA77C2B2AE63
_P5: Final = 0x27D4EB2F165667C5


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _round(acc: int, lane: int) -> int:
    acc = (acc + lane * _P2) & _M64
    return (_rotl(acc, 31) * _P1) & _M64


def xxh64(data: bytes, seed: int = 0) -> int:
    """XXH64 of ``data`` (reference xxHash, little-endian lanes) as an unsigned 64-bit int.

    Args:
        data: The bytes to hash.
        seed: Unsigned 64-bit seed, 0 <= seed < 2**64.
    """
    n = len(data)
    i = 0
    if n >= 32:
        v1 = (seed + _P1 + _P2) & _M64
        v2 = (seed + _P2) & _M64
        v3 = seed
        v4 = (seed - _P1) & _M64
        while i <= n - 32:
            a, b, c, d = struct.unpack_from("<4Q", data, i)
            v1, v2, v3, v4 = _round(v1, a), _round(v2, b), _round(v3, c), _round(v4, d)
            i += 32
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & _M64
        for v in (v1, v2, v3, v4):
            h = ((h ^ _round(0, v)) * _P1 + _P4) & _M64
    else:
        h = (seed + _P5) & _M64
    h = (h + n) & _M64
    while i + 8 <= n:
        h ^= _round(0, struct.unpack_from("<Q", data, i)[0])
        h = (_rotl(h, 27) * _P1 + _P4) & _M64
        i += 8
    if i + 4 <= n:
        h ^= (struct.unpack_from("<I", data, i)[0] * _P1) & _M64
        h = (_rotl(h, 23) * _P2 + _P3) & _M64
        i += 4
    while i < n:
        h ^= (data[i] * _P5) & _M64
        h = (_rotl(h, 11) * _P1) & _M64
        i += 1
    # Final avalanche.
    h ^= h >> 33
    h = (h * _P2) & _M64
    h ^= h >> 29
    h = (h * _P3) & _M64
    return h ^ (h >> 32)


def bucket(salt: str, unit_id: str) -> int:
    """The unit's bucket under ``salt``, an int in [0, 10000) (recipe in the module docstring).

    Raises:
        TypeError: ``salt`` or ``unit_id`` is not a ``str``.
        ValueError: ``salt`` contains ``":"``, or ``unit_id`` is not encodable as UTF-8.
    """
    if not isinstance(salt, str):
        raise TypeError(f"salt: expected a str, got {salt!r}")
    if not isinstance(unit_id, str):
        raise TypeError(f"unit_id: expected a str, got {unit_id!r}")
    if SEPARATOR in salt:
        raise ValueError(f"salt: must not contain {SEPARATOR!r}, got {salt!r}")
    try:
        message = (salt + SEPARATOR + unit_id).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"unit_id: not encodable as UTF-8: {unit_id!r}") from None
    return (xxh64(message, SEED) >> 1) % N_BUCKETS


@dataclass(frozen=True, slots=True)
class Assignment:
    """One unit's place in one experiment.

    Attributes:
        experiment_id: The experiment.
        layer_id: Its layer (a unit is in at most one experiment per layer).
        variant: The variant id the unit sees.
        is_control: True for the experiment's control variant.
        bucket: The unit's bucket under the layer salt, [0, 10000).
        variant_bucket: The unit's bucket under the experiment salt, [0, 10000).
    """

    experiment_id: str
    layer_id: str
    variant: str
    is_control: bool
    bucket: int
    variant_bucket: int


def matches(flt: TargetingFilter, attributes: Mapping[str, object]) -> bool:
    """Whether ``attributes`` pass one targeting filter.

    A missing or ``None`` attribute, or a NaN for a numeric filter, never matches.

    Raises:
        TypeError: the attribute's type does not fit the filter (a string for a numeric
            filter, a bool for a string filter, ...), naming the attribute.
    """
    value = attributes.get(flt.attribute)
    if value is None:
        return False
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    kind = "number" if is_number else "bool" if isinstance(value, bool) else "string"
    if kind != flt.kind or not isinstance(value, (str, int, float)):
        raise TypeError(
            f"attributes[{flt.attribute!r}]: expected a {flt.kind} for the targeting filter, "
            f"got {value!r}"
        )
    if isinstance(value, float) and math.isnan(value):
        return False
    if flt.op in ("eq", "in"):
        return value in flt.values
    num, bound = float(value), cast(float, flt.values[0])
    if flt.op == "lt":
        return num < bound
    if flt.op == "le":
        return num <= bound
    if flt.op == "gt":
        return num > bound
    return num >= bound


def _variant_of(experiment: Experiment, unit_id: str) -> tuple[int, str, bool]:
    vb = bucket(experiment.salt, unit_id)
    k = bisect.bisect_right(experiment.variant_bounds, vb)
    variant = experiment.variants[k]
    return vb, variant.id, variant.control


def in_holdout(config: ExperimentsConfig, unit_id: str) -> bool:
    """True when the unit is in the global holdout (in no experiment, ever, for this salt)."""
    h = config.holdout
    return h.buckets > 0 and bucket(h.salt, unit_id) < h.buckets


def assign(
    config: ExperimentsConfig,
    unit_id: str,
    attributes: Mapping[str, object] | None = None,
    *,
    on: date,
) -> tuple[Assignment, ...]:
    """Every experiment ``unit_id`` is in on day ``on``: at most one per layer, in layer order.

    Args:
        config: A validated configuration (:func:`ab_testing.config.load_config`).
        unit_id: The randomisation unit, e.g. a user id as a decimal string.
        attributes: Unit attributes the targeting filters read (e.g. ``{"age": 31}``).
        on: The day (UTC); experiments run on ``start <= on < end`` at the ramp of that day.

    Returns:
        A tuple of :class:`Assignment`, empty when the unit is held out or in nothing.

    Raises:
        TypeError: ``unit_id`` is not a ``str``, ``on`` is not a date, or an attribute's type
            does not fit its filter.
    """
    if not isinstance(unit_id, str):
        raise TypeError(f"unit_id: expected a str, got {unit_id!r}")
    attrs: Mapping[str, object] = {} if attributes is None else attributes
    if in_holdout(config, unit_id):
        return ()
    out: list[Assignment] = []
    for active in config.active(on):
        b = bucket(active.layer.salt, unit_id)
        for live in active.experiments:
            if live.lo <= b < live.hi:
                exp = live.experiment
                if all(matches(f, attrs) for f in exp.targeting):
                    vb, variant, is_control = _variant_of(exp, unit_id)
                    out.append(Assignment(exp.id, active.layer.id, variant, is_control, b, vb))
                # Live ranges of one layer are disjoint: no other experiment can hold b.
                break
    return tuple(out)


def assignment_for(
    config: ExperimentsConfig,
    experiment_id: str,
    unit_id: str,
    attributes: Mapping[str, object] | None = None,
    *,
    on: date,
) -> Assignment | None:
    """The unit's assignment to one experiment on day ``on``, or None when it is not in it.

    Raises:
        ValueError: ``experiment_id`` names no experiment of ``config``.
    """
    if experiment_id not in config.experiment_ids:
        raise ValueError(f"experiment_id: no such experiment {experiment_id!r}")
    for a in assign(config, unit_id, attributes, on=on):
        if a.experiment_id == experiment_id:
            return a
    return None
