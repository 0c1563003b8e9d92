"""Data-quality rules on literal aggregates of a staged day: each rule passes, fails and explains
itself."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from recsys.quality import Observed, Thresholds, evaluate
from recsys.quality.checks import RecSetStats

DS = date(2026, 1, 5)
GOOD_MODEL = RecSetStats(
    rows=500,
    users=10,
    null_rows=0,
    score_min=0.01,
    score_max=0.97,
    bad_lists=0,
    seen_items=0,
    median_length=50,
)
GOOD_POP = replace(GOOD_MODEL, score_min=3.0, score_max=250.0)


def observed(**changes: object) -> Observed:
    base = Observed(
        ds=DS,
        eligible_users=10,
        rec_sets={"model": GOOD_MODEL, "popularity": GOOD_POP},
        run_ids=("run-1",),
        expected_run_id="run-1",
        age_hours=0.5,
        surface_rows={"serve.trending": 40},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def failed(o: Observed, t: Thresholds | None = None) -> set[tuple[str, str]]:
    results = evaluate(
        o, t or Thresholds(), "serve.ranked", "model", ("model", "popularity")
    )
    return {(r.check_name, r.table_name) for r in results if not r.passed}


def test_a_good_day_passes_every_check() -> None:
    results = evaluate(
        observed(), Thresholds(), "serve.ranked", "model", ("model", "popularity")
    )
    # model set (+coverage), popularity, one staged run, freshness, surface
    assert len(results) == 7 + 6 + 1 + 1 + 1
    assert all(r.passed for r in results), [r for r in results if not r.passed]


@pytest.mark.parametrize(
    ("model_changes", "check"),
    [
        ({"null_rows": 1}, "null_rate"),
        ({"score_max": 1.2}, "score_range"),
        ({"score_min": -0.1}, "score_range"),
        ({"score_min": math.nan}, "score_range"),
        ({"bad_lists": 2}, "list_integrity"),
        ({"seen_items": 1}, "seen_items"),
        ({"median_length": 3}, "list_length"),
        ({"users": 9}, "user_coverage"),  # 90% < 95%
    ],
)
def test_each_rule_fails_on_its_defect(model_changes: dict[str, Any], check: str) -> None:
    o = observed(rec_sets={"model": replace(GOOD_MODEL, **model_changes), "popularity": GOOD_POP})
    assert failed(o) == {(check, "serve.ranked[model]")}


def test_popularity_scores_need_only_be_finite() -> None:
    assert failed(observed()) == set()
    bad = replace(GOOD_POP, score_max=math.inf)
    o = observed(rec_sets={"model": GOOD_MODEL, "popularity": bad})
    assert failed(o) == {("score_range", "serve.ranked[popularity]")}


def test_a_missing_set_fails_its_row_count() -> None:
    o = observed(rec_sets={"model": GOOD_MODEL})
    assert failed(o) == {("row_count", "serve.ranked[popularity]")}


def test_no_eligible_users_fails_coverage_not_crashes() -> None:
    assert ("user_coverage", "serve.ranked[model]") in failed(observed(eligible_users=0))


def test_freshness_is_the_age_of_the_staged_commit() -> None:
    assert failed(observed(age_hours=40.0)) == {("freshness", "serve.ranked")}
    assert failed(observed(age_hours=math.inf)) == {("freshness", "serve.ranked")}
    assert failed(observed(age_hours=40.0), Thresholds(max_age_hours=48)) == set()


@pytest.mark.parametrize(
    "changes",
    [
        {"run_ids": ("run-0",)},  # staged by another (older) run than the one to publish
        {"run_ids": ("run-0", "run-1")},  # a mix of runs
        {"run_ids": ()},  # nothing staged
        {"run_ids": ("run-0", "run-1"), "expected_run_id": None},
    ],
)
def test_the_staged_day_must_be_one_run(changes: dict[str, object]) -> None:
    assert failed(observed(**changes)) >= {("staged_run", "serve.ranked")}
    assert ("freshness", "serve.ranked") not in failed(observed(**changes))


def test_any_single_run_passes_without_an_expected_one() -> None:
    assert failed(observed(run_ids=("run-7",), expected_run_id=None)) == set()


def test_empty_surface_fails() -> None:
    assert failed(observed(surface_rows={"serve.trending": 0})) == {("row_count", "serve.trending")}


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValueError, match="min_user_coverage"):
        Thresholds(min_user_coverage=1.5)
    with pytest.raises(ValueError, match="max_age_hours"):
        Thresholds(max_age_hours=0)
    # A looser threshold lets the same day pass.
    o = observed(rec_sets={"model": replace(GOOD_MODEL, users=9), "popularity": GOOD_POP})
    assert failed(o, Thresholds(min_user_coverage=0.9)) == set()
