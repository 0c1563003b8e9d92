"""Experiment config validation: every mistake is refused at the edge, naming path and value."""

from __future__ import annotations

import copy
import dataclasses
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from ab_testing.config import (
    Experiment,
    ExperimentsConfig,
    Layer,
    TargetingFilter,
    Variant,
    load_config,
    parse_config,
    quantise_weights,
)
from recsys.settings import PROJECT_ROOT
from tests.helpers.experiments import experiment, layer

EXAMPLE = PROJECT_ROOT / "ab_testing" / "experiments.example.yaml"


def base() -> dict[str, Any]:
    """A valid raw config: holdout, two layers, ramp and targeting."""
    return {
        "version": 7,
        "holdout": {"salt": "holdout-t", "buckets": 500},
        "layers": [
            layer(
                "ranking",
                experiment(
                    "exp_a",
                    date(2026, 1, 1),
                    date(2026, 2, 1),
                    [0, 4000],
                    {"control": 1, "treat": 1},
                    ramp=[
                        {"date": date(2026, 1, 1), "percent": 10},
                        {"date": "2026-01-05", "percent": 100},
                    ],
                ),
                experiment(
                    "exp_b",
                    "2026-01-01",
                    "2026-03-01",
                    [4000, 10000],
                    {"control": 0.5, "b1": 0.25, "b2": 0.25},
                    targeting=[{"attribute": "age", "op": "ge", "value": 18}],
                ),
            ),
            layer(
                "ui",
                experiment(
                    "exp_c", "2026-01-01", "2026-03-01", [0, 10000], {"control": 1, "c1": 3}
                ),
                salt="ui.v2",
            ),
        ],
    }


def mutate(path: str, value: Any) -> dict[str, Any]:
    """``base()`` with the value at a dotted path (``layers.0.experiments.1.id``) replaced."""
    raw = copy.deepcopy(base())
    *parents, last = path.split(".")
    node: Any = raw
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return raw


_DELETE = object()
EXP_A = "layers.0.experiments.0"
EXP_B = "layers.0.experiments.1"


def test_base_and_example_parse() -> None:
    cfg = parse_config(base())
    assert cfg.version == 7
    assert [e.id for e in cfg.experiments] == ["exp_a", "exp_b", "exp_c"]
    assert [e.salt for e in cfg.experiments] == ["exp-exp_a", "exp-exp_b", "exp-exp_c"]
    assert [layer.salt for layer in cfg.layers] == ["layer-ranking", "ui.v2"]
    assert cfg.experiments[1].variant_bounds == (5000, 7500, 10000)
    assert cfg.experiments[2].variant_bounds == (2500, 10000)
    assert cfg.experiments[1].targeting[0] == TargetingFilter("age", "ge", 18)
    example = load_config(EXAMPLE)
    assert example.version >= 1
    assert example.holdout.buckets == 500
    assert len(example.layers) == 2


def test_config_is_frozen() -> None:
    cfg = parse_config(base())
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.version = 8  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.experiments[0].buckets = (0, 10000)  # type: ignore[misc]


BAD = [
    # (path, bad value, expected path in the message, exception)
    (f"{EXP_A}.id", "Exp-A", f"{EXP_A}.id", ValueError),
    (f"{EXP_A}.id", "x'; DROP TABLE ab.assignments; --", f"{EXP_A}.id", ValueError),
    (f"{EXP_A}.id", "a.b", f"{EXP_A}.id", ValueError),
    (f"{EXP_A}.id", "1abc", f"{EXP_A}.id", ValueError),
    (f"{EXP_A}.id", "a" * 64, f"{EXP_A}.id", ValueError),
    ("layers.0.id", "rank`ing", "layers[0].id", ValueError),
    (f"{EXP_A}.variants.1.id", "treat) OR (1=1", f"{EXP_A}.variants[1].id", ValueError),
    (f"{EXP_A}.salt", "exp:a", f"{EXP_A}.salt", ValueError),
    (f"{EXP_A}.salt", "Exp-A", f"{EXP_A}.salt", ValueError),
    ("holdout.salt", "hold out", "holdout.salt", ValueError),
    (f"{EXP_B}.targeting.0.attribute", "age; DROP", f"{EXP_B}.targeting[0].attribute", ValueError),
    (f"{EXP_B}.targeting.0.attribute", "`age`", f"{EXP_B}.targeting[0].attribute", ValueError),
    (f"{EXP_B}.targeting.0.op", "like", f"{EXP_B}.targeting[0].op", ValueError),
    (f"{EXP_B}.variants.1.weight", 0.2, f"{EXP_B}.variants", ValueError),
    (f"{EXP_A}.variants.1.weight", 0, f"{EXP_A}.variants[1].weight", ValueError),
    (f"{EXP_A}.variants.1.weight", -1, f"{EXP_A}.variants[1].weight", ValueError),
    (f"{EXP_A}.variants.1.weight", float("nan"), f"{EXP_A}.variants[1].weight", ValueError),
    (f"{EXP_A}.variants.1.weight", True, f"{EXP_A}.variants[1].weight", TypeError),
    (f"{EXP_A}.variants.1.weight", "1", f"{EXP_A}.variants[1].weight", TypeError),
    (f"{EXP_A}.variants.1.control", True, f"{EXP_A}.variants", ValueError),
    (f"{EXP_A}.variants.0.control", False, f"{EXP_A}.variants", ValueError),
    (f"{EXP_A}.variants.1.id", "control", f"{EXP_A}.variants", ValueError),
    (f"{EXP_A}.start", date(2026, 2, 1), f"{EXP_A}.end", ValueError),
    (f"{EXP_A}.end", "2026-13-01", f"{EXP_A}.end", ValueError),
    (f"{EXP_A}.end", datetime(2026, 2, 1, 12), f"{EXP_A}.end", TypeError),
    (f"{EXP_A}.buckets", [0, 10001], f"{EXP_A}.buckets", ValueError),
    (f"{EXP_A}.buckets", [3000, 3000], f"{EXP_A}.buckets", ValueError),
    (f"{EXP_A}.buckets", [0, 1, 2], f"{EXP_A}.buckets", ValueError),
    (f"{EXP_A}.buckets", [0, 4500], "layers[0].experiments", ValueError),  # overlaps exp_b
    (f"{EXP_A}.ramp.1.percent", 5, f"{EXP_A}.ramp", ValueError),  # ramp down
    (f"{EXP_A}.ramp.1.date", "2026-01-01", f"{EXP_A}.ramp", ValueError),
    (f"{EXP_A}.ramp.1.date", "2026-02-01", f"{EXP_A}.ramp", ValueError),  # after end
    (f"{EXP_A}.ramp.0.percent", 0, f"{EXP_A}.ramp[0].percent", ValueError),
    (f"{EXP_A}.ramp.0.percent", 150, f"{EXP_A}.ramp[0].percent", ValueError),
    (f"{EXP_A}.variants.1.weigth", 1, f"{EXP_A}.variants[1].weigth", ValueError),  # typo
    (f"{EXP_A}.variants", [{"id": "control", "weight": 1, "control": True}], EXP_A, ValueError),
    ("version", _DELETE, "config.version", ValueError),
    ("version", 0, "config.version", ValueError),
    ("version", "1", "config.version", TypeError),
    ("holdout.buckets", 10000, "holdout.buckets", ValueError),
    ("layers.1.experiments.0.id", "exp_a", "experiments[0].id", ValueError),  # duplicate
    ("layers.1.salt", "holdout-t", "layers[1].salt", ValueError),  # duplicate salt
    ("layers.1.id", "ranking", "layers[1].id", ValueError),
    (f"{EXP_B}.targeting.0.value", "18", f"{EXP_B}.targeting[0].value", TypeError),
    (f"{EXP_B}.targeting.0.value", [18], f"{EXP_B}.targeting[0].value", TypeError),
    ("layers", {"id": "x"}, "config.layers", TypeError),
]


@pytest.mark.parametrize(("path", "value", "where", "exc"), BAD, ids=[b[0] for b in BAD])
def test_invalid_config_names_field_and_value(
    path: str, value: Any, where: str, exc: type[Exception]
) -> None:
    with pytest.raises(exc) as info:
        parse_config(mutate(path, value))
    message = str(info.value)
    assert where.replace(".", "").replace("[", "").replace("]", "") in message.replace(
        ".", ""
    ).replace("[", "").replace("]", ""), message
    about_the_field = where.endswith(path.rsplit(".", 1)[-1])
    if about_the_field and value is not _DELETE and not isinstance(value, list | dict):
        assert repr(value) in message or str(value) in message, message


@pytest.mark.parametrize(
    ("op", "value", "exc"),
    [
        ("in", [], ValueError),
        ("in", ["a", 1], TypeError),
        ("eq", ["a"], TypeError),
        ("lt", "a", TypeError),
        ("ge", True, TypeError),
        ("eq", float("inf"), ValueError),
        ("eq", 2**70, ValueError),
        ("eq", None, TypeError),
    ],
)
def test_bad_targeting_values(op: str, value: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc, match="value"):
        TargetingFilter("age", op, value)  # type: ignore[arg-type]


def test_overlapping_buckets_allowed_when_dates_do_not_overlap() -> None:
    raw = mutate(f"{EXP_A}.buckets", [0, 6000])
    raw["layers"][0]["experiments"][1]["start"] = "2026-02-01"  # starts when exp_a ends
    cfg = parse_config(raw)
    assert cfg.experiments[0].buckets == (0, 6000)
    with pytest.raises(ValueError, match="overlap"):
        parse_config(mutate(f"{EXP_A}.buckets", [0, 6000]))


def test_quantise_weights() -> None:
    assert quantise_weights([1, 1]) == (5000, 5000)
    assert quantise_weights([1, 1, 1]) == (3334, 3333, 3333)
    assert quantise_weights([0.5, 0.25, 0.25]) == (5000, 2500, 2500)
    assert quantise_weights([0.1, 0.2, 0.7]) == (1000, 2000, 7000)
    assert quantise_weights([1 / 3, 1 / 3, 1 / 3]) == (3334, 3333, 3333)
    assert quantise_weights([1, 9999]) == (1, 9999)
    assert sum(quantise_weights([3, 7, 11, 13])) == 10000
    with pytest.raises(ValueError, match="rounds to 0"):
        quantise_weights([1, 100_000])
    with pytest.raises(ValueError, match="sum to 1"):
        quantise_weights([0.5, 0.5 + 2e-9])
    quantise_weights([0.5, 0.5 + 1e-10])  # within the 1e-9 tolerance


def test_live_range_follows_dates_and_ramp() -> None:
    exp = parse_config(base()).experiments[0]  # [0, 4000), 10% from Jan 1, 100% from Jan 5
    assert exp.live_range(date(2025, 12, 31)) == (0, 0)
    assert exp.live_range(date(2026, 1, 1)) == (0, 400)
    assert exp.live_range(date(2026, 1, 4)) == (0, 400)
    assert exp.live_range(date(2026, 1, 5)) == (0, 4000)
    assert exp.live_range(date(2026, 2, 1)) == (0, 0)  # end is exclusive
    late_ramp = mutate(f"{EXP_A}.ramp.0.date", "2026-01-03")
    assert parse_config(late_ramp).experiments[0].live_range(date(2026, 1, 2)) == (0, 0)
    odd = mutate(f"{EXP_A}.ramp.0.percent", 0.3)  # 0.3% of 4000 = 12 exactly, no float slop
    assert parse_config(odd).experiments[0].live_range(date(2026, 1, 1)) == (0, 12)
    cfg = parse_config(base())
    assert [a.layer.id for a in cfg.active(date(2026, 1, 1))] == ["ranking", "ui"]
    assert cfg.active(date(2026, 3, 1)) == ()


def test_dataclasses_validate_when_built_directly() -> None:
    variants = (Variant("control", 1, True), Variant("t", 1))
    exp = Experiment("e", "exp-e", date(2026, 1, 1), date(2026, 1, 2), (0, 10), variants)
    with pytest.raises(ValueError, match=r"experiments\[0\]\.salt: 'exp-e' is already used"):
        ExperimentsConfig(1, (Layer("l", "exp-e", (exp,)),))
    with pytest.raises(TypeError, match="on"):
        exp.live_range("2026-01-01")  # type: ignore[arg-type]


def test_load_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [1\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(TypeError, match="config: expected a mapping"):
        load_config(scalar)
