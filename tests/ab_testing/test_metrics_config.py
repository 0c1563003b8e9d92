from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ab_testing.metrics_config import EventAggregate, MetricDefinition, load_metrics, parse_metrics

EXAMPLE = Path(__file__).resolve().parents[2] / "ab_testing" / "metrics.example.yaml"


def test_example_file_loads_and_maps_experiments() -> None:
    config = load_metrics(EXAMPLE)
    names = [m.name for m in config.for_experiment("anything")]
    assert names == ["converted", "clicks_per_user", "ctr", "impressions_per_user"]
    ctr = next(m for m in config.metrics if m.name == "ctr")
    assert ctr.event_types == ("click", "impression")
    assert ctr.spec.kind == "ratio"
    guard = next(m for m in config.metrics if m.guardrail)
    assert (guard.spec.guardrail, guard.spec.margin) == (True, 0.05)


def base() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("metrics", 0, "kind"), "median", "kind"),
        (("metrics", 0, "numerator", "agg"), "count", "binomial metric needs 'any'"),
        (("metrics", 0, "name"), "Bad Name", "name"),
        (("metrics", 0, "window_days"), 0, "window_days"),
        (("metrics", 1, "covariate", "pre_window_days"), None, "pre_window_days"),
        (("metrics", 2, "denominator"), None, "denominator"),
        (("metrics", 3, "margin"), None, "margin"),
        (("metrics", 0, "numerator", "event"), "click; DROP TABLE", "event"),
        (("experiments", "default"), ["nope"], "unknown or empty"),
        (("version",), 0, "version"),
    ],
)
def test_bad_fields_are_named(path: tuple[Any, ...], value: Any, message: str) -> None:
    raw = base()
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises((ValueError, TypeError), match=message):
        parse_metrics(raw)


def test_unknown_keys_and_shapes() -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        parse_metrics({**base(), "extra": 1})
    with pytest.raises(TypeError, match="top"):
        parse_metrics([1, 2])
    with pytest.raises(ValueError, match="only for them"):
        MetricDefinition(
            "m", "mean", EventAggregate("click"), denominator=EventAggregate("impression")
        )
