"""AnalysisConfig validation: a caller's mistake raises, naming the argument and the value."""

from __future__ import annotations

import pytest

from ab_testing.settings import (
    DECISIONS,
    REASONS,
    AnalysisConfig,
    check_choice,
)


def test_defaults_are_valid() -> None:
    cfg = AnalysisConfig()
    assert (cfg.alpha, cfg.srm_threshold, cfg.correction, cfg.power) == (0.05, 0.001, "holm", 0.8)
    assert cfg.min_units_per_slice == 50


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": 0.0}, "alpha"),
        ({"srm_threshold": -0.1}, "srm_threshold"),
        ({"correction": "bonferroni"}, "correction"),
        ({"power": 1.0}, "power"),
        ({"min_units_per_slice": -1}, "min_units_per_slice"),
        ({"target_relative_effect": 0.0}, "target_relative_effect"),
        ({"sequential_method": "gcs"}, "sequential_method"),
        ({"sequential_tau": float("nan")}, "sequential_tau"),
    ],
)
def test_bad_config_raises_value_error_naming_argument(
    kwargs: dict[str, object], name: str
) -> None:
    with pytest.raises(ValueError, match=name) as info:
        AnalysisConfig(**kwargs)  # type: ignore[arg-type]
    assert repr(next(iter(kwargs.values()))) in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"alpha": "0.05"}, "alpha"), ({"min_units_per_slice": 5.0}, "min_units_per_slice")],
)
def test_wrong_type_raises_type_error(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(TypeError, match=name):
        AnalysisConfig(**kwargs)  # type: ignore[arg-type]


def test_config_is_frozen() -> None:
    cfg = AnalysisConfig()
    with pytest.raises(AttributeError):
        cfg.alpha = 0.1  # type: ignore[misc]


def test_check_choice_message() -> None:
    with pytest.raises(ValueError, match=r"kind must be one of .* got 'poisson'"):
        check_choice("kind", "poisson", ("binomial", "mean"))


def test_literal_sets_are_disjoint_and_documented() -> None:
    assert "suppressed_small_slice" in REASONS
    assert {"ship", "harm", "no_effect", "inconclusive", "srm_fail", "not_analysable"} <= set(
        DECISIONS
    )
