"""Versioned experiment configuration: YAML -> frozen dataclasses, validated once, here.

The file (see ``ab_testing/experiments.example.yaml``)::

    version: 3                                   # int >= 1, bump on every edit
    holdout: {salt: holdout-2026, buckets: 500}  # optional: 5% of units in no experiment
    layers:
      - id: ranking                              # [a-z][a-z0-9_]{0,62}
        salt: layer-ranking                      # optional, default "layer-<id>"
        experiments:
          - id: two_tower_v2
            salt: exp-two_tower_v2               # optional, default "exp-<id>"
            start: 2026-01-01                    # runs on start <= day < end (UTC days)
            end: 2026-02-01
            buckets: [0, 5000]                   # layer buckets reserved, half-open [lo, hi)
            ramp:                                # optional, default 100% from start
              - {date: 2026-01-01, percent: 10}  # live: the first 10% of the reserved range
              - {date: 2026-01-05, percent: 100}
            variants:                            # >= 2, exactly one control
              - {id: control, weight: 1, control: true}
              - {id: treatment, weight: 1}       # integer shares, or floats summing to 1
            targeting:                           # optional, all must hold
              - {attribute: age, op: ge, value: 18}
              - {attribute: gender, op: in, value: [F, M]}

Validation rules are those of :mod:`ab_testing.config_model`, whose classes are re-exported here.
Default salts contain a ``-``, which ids cannot, so they never collide with each other; changing
an experiment's salt, weights or reserved range while it runs moves units between arms.

YAML note: PyYAML reads unquoted ``on``, ``off``, ``yes``, ``no`` as booleans: quote such strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from ab_testing.config_model import (
    ID_PATTERN,
    SALT_PATTERN,
    ActiveLayer,
    Experiment,
    ExperimentsConfig,
    Holdout,
    Layer,
    LiveExperiment,
    RampStep,
    TargetingFilter,
    Variant,
    check_id,
    quantise_weights,
)

__all__ = [
    "ID_PATTERN",
    "SALT_PATTERN",
    "ActiveLayer",
    "Experiment",
    "ExperimentsConfig",
    "Holdout",
    "Layer",
    "LiveExperiment",
    "RampStep",
    "TargetingFilter",
    "Variant",
    "load_config",
    "parse_config",
    "quantise_weights",
]

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Parsing raw YAML mappings. Every error names its path, e.g. ``layers[0].experiments[1].end``.


def _at(path: str, build: Callable[[Any], T], raw: object) -> T:
    try:
        return build(raw)
    except (ValueError, TypeError) as err:
        msg = str(err)
        raise type(err)(path + ("" if msg.startswith(("[", ":")) else ".") + msg) from None


def _fields(raw: object, required: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise TypeError(f": expected a mapping, got {raw!r}")
    for key in raw:
        if key not in required | optional:
            raise ValueError(f"{key}: unknown key (allowed: {sorted(required | optional)})")
    for key in sorted(required):
        if key not in raw:
            raise ValueError(f"{key}: missing")
    return dict(raw)


def _items(name: str, value: object, build: Callable[[Any], T]) -> tuple[T, ...]:
    if not isinstance(value, list):
        raise TypeError(f"{name}: expected a list, got {value!r}")
    return tuple(_at(f"{name}[{i}]", build, item) for i, item in enumerate(value))


def _as_date(name: str, value: object) -> Any:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name}: expected a date YYYY-MM-DD, got {value!r}") from None
    return value


def _variant(raw: object) -> Variant:
    f = _fields(raw, {"id", "weight"}, {"control"})
    return Variant(f["id"], f["weight"], f.get("control", False))


def _ramp_step(raw: object) -> RampStep:
    f = _fields(raw, {"date", "percent"}, set())
    return RampStep(_as_date("date", f["date"]), f["percent"])


def _filter(raw: object) -> TargetingFilter:
    f = _fields(raw, {"attribute", "op", "value"}, set())
    value = tuple(f["value"]) if isinstance(f["value"], list) else f["value"]
    return TargetingFilter(f["attribute"], f["op"], value)


def _experiment(raw: object) -> Experiment:
    f = _fields(
        raw,
        {"id", "start", "end", "buckets", "variants"},
        {"salt", "ramp", "targeting", "description"},
    )
    exp_id = check_id("id", f["id"])
    return Experiment(
        id=exp_id,
        salt=f.get("salt", "exp-" + exp_id),
        start=_as_date("start", f["start"]),
        end=_as_date("end", f["end"]),
        buckets=f["buckets"],
        variants=_items("variants", f["variants"], _variant),
        ramp=_items("ramp", f.get("ramp", []), _ramp_step),
        targeting=_items("targeting", f.get("targeting", []), _filter),
        description=f.get("description", ""),
    )


def _layer(raw: object) -> Layer:
    f = _fields(raw, {"id", "experiments"}, {"salt"})
    layer_id = check_id("id", f["id"])
    experiments = _items("experiments", f["experiments"], _experiment)
    return Layer(layer_id, f.get("salt", "layer-" + layer_id), experiments)


def _holdout(raw: object) -> Holdout:
    f = _fields(raw, set(), {"salt", "buckets"})
    return Holdout(**f)


def _config(raw: object) -> ExperimentsConfig:
    f = _fields(raw, {"version", "layers"}, {"holdout"})
    return ExperimentsConfig(
        version=f["version"],
        layers=_items("layers", f["layers"], _layer),
        holdout=_at("holdout", _holdout, f.get("holdout", {})),
    )


def parse_config(raw: object) -> ExperimentsConfig:
    """Validate a raw mapping (parsed YAML or JSON) into an :class:`ExperimentsConfig`.

    Raises:
        ValueError: a value is invalid or a key unknown/missing, naming its path and the value,
            e.g. ``config.layers[0].experiments[1].end: must be after start ...``.
        TypeError: a value has the wrong type, named the same way.
    """
    return _at("config", _config, raw)


def load_config(path: str | Path) -> ExperimentsConfig:
    """Read and validate a YAML experiments file (see the module docstring for the format).

    Raises:
        ValueError: the file is missing, is not UTF-8 text or valid YAML, repeats a key, or
            fails validation (see :func:`parse_config`).
        TypeError: a value has the wrong type (see :func:`parse_config`).
    """
    from ab_testing.yaml_files import read_yaml  # only the loader needs PyYAML

    return parse_config(read_yaml(path))
