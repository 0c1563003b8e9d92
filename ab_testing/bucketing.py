"""The bucketing contract of every assignment: one hash, one recipe, test vectors (stdlib only).

Shared by the pure assignment (:mod:`ab_testing.assignment`), the Spark twin
(:mod:`ab_testing.assignment_spark`), the configuration's validation
(:mod:`ab_testing.config_model`) and the app-side reader. It imports nothing of the project, so
every layer can use it.

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
``MessageDigest`` and a hex string per row, several times slower than ``xxhash64`` (figures in
``docs/decisions/0007-xxh64-bucketing.md``); XXH64 is a standard, well-tested non-cryptographic
hash (SMHasher clean); assignment needs uniformity and independence across salts, not secrecy.
"""

from __future__ import annotations

import struct
from typing import Final

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
