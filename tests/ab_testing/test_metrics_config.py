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
    loaded: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return loaded


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


def _with_covariates(covariates: Any, single: Any = None) -> dict[str, Any]:
    raw = base()
    clicks = raw["metrics"][1]
    clicks.pop("covariate")
    if covariates is not None:
        clicks["covariates"] = covariates
    if single is not None:
        clicks["covariate"] = single
    return raw


def test_covariates_list_gives_several_in_order() -> None:
    pre_clicks = {"event": "click", "agg": "count", "pre_window_days": 14}
    pre_views = {"event": "impression", "agg": "sum", "pre_window_days": 7}
    clicks = parse_metrics(_with_covariates([pre_clicks, pre_views])).metrics[1]
    assert clicks.covariate_names == ("pre_click_count_14d", "pre_impression_sum_7d")
    assert clicks.covariate == EventAggregate("click", "count", 14)  # the first
    assert clicks.event_types == ("click", "impression")


def test_single_covariate_form_still_works_and_equals_a_one_item_list() -> None:
    single = parse_metrics(base()).metrics[1]
    listed = parse_metrics(
        _with_covariates([{"event": "click", "agg": "count", "pre_window_days": 14}])
    ).metrics[1]
    assert single.covariates == listed.covariates == (EventAggregate("click", "count", 14),)
    assert single == listed
    assert parse_metrics(base()).metrics[0].covariates == ()


@pytest.mark.parametrize(
    ("covariates", "single", "error", "message"),
    [
        ([], None, TypeError, r"metrics\[1\]\.covariates: expected a non-empty list"),
        ({"event": "click"}, None, TypeError, "non-empty list"),
        (["click"], None, TypeError, r"covariates\[0\]: expected a mapping"),
        ([{"event": "click"}], None, ValueError, r"covariates\[0\]\.pre_window_days: required"),
        (
            [{"event": "click", "pre_window_days": 3}, {"event": "click", "pre_window_days": 3}],
            None,
            ValueError,
            r"covariates\[1\]: repeats 'pre_click_count_3d'",
        ),
        ([{"event": "click", "pre_window_days": 400}], None, ValueError, "pre_window_days"),
        ([{"event": "click", "days": 3}], None, ValueError, "unknown keys"),
        (
            [{"event": "click", "pre_window_days": 3}],
            {"event": "click", "pre_window_days": 3},
            ValueError,
            "covariate or covariates, not both",
        ),
    ],
)
def test_bad_covariates_are_named(
    covariates: Any, single: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        parse_metrics(_with_covariates(covariates, single))


def test_covariates_checked_in_the_dataclass_too() -> None:
    click = EventAggregate("click")
    with pytest.raises(ValueError, match="give one or the other"):
        MetricDefinition(
            "m",
            "mean",
            click,
            covariate=EventAggregate("click", pre_window_days=3),
            covariates=(EventAggregate("view", pre_window_days=3),),
        )
    with pytest.raises(TypeError, match=r"covariates\[0\]: expected an EventAggregate"):
        MetricDefinition("m", "mean", click, covariates=("click",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"covariates\[0\]\.pre_window_days"):
        MetricDefinition("m", "mean", click, covariate=EventAggregate("click"))
