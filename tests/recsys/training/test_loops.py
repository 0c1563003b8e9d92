"""Small helpers of :mod:`recsys.training.loops` (the loop itself: ``test_trainers.py``)."""

from __future__ import annotations

import pytest

from recsys.models.ranker import InteractionRanker, RankerConfig
from recsys.models.sasrec import SASRecConfig, SequentialRecommender
from recsys.training.loops import MODEL_NAMES, as_module, build_model, config_dict

TINY_SASREC = SASRecConfig(n_items=5, max_len=4, d_model=8, n_heads=1, n_layers=1)


def test_as_module_types_or_names_the_mismatch() -> None:
    sasrec = SequentialRecommender(TINY_SASREC)
    assert as_module(sasrec, SequentialRecommender, "sasrec artifact v1") is sasrec
    with pytest.raises(
        TypeError,
        match=r"^sasrec artifact v1: not a InteractionRanker but a SequentialRecommender$",
    ):
        as_module(sasrec, InteractionRanker, "sasrec artifact v1")


def test_build_model_round_trips_a_config_and_refuses_unknown_names() -> None:
    rebuilt = build_model("sasrec", config_dict(TINY_SASREC))
    assert isinstance(rebuilt, SequentialRecommender)
    assert rebuilt.config == TINY_SASREC
    assert "ranker" in MODEL_NAMES
    with pytest.raises(ValueError, match="name: expected one of"):
        build_model("nope", {})  # type: ignore[arg-type]
    assert isinstance(build_model("ranker", config_dict(_ranker_config())), InteractionRanker)


def _ranker_config() -> RankerConfig:
    return RankerConfig(n_dense=3)
