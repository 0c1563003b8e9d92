"""The planted-effect validation: the whole Spark A/B pipeline recovers what was planted."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bench._planted import CONVERTED, VALUE, Design, summarise
from bench.validate_ab_pipeline import experiments_yaml, run_pipeline

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Days of its own (and the ``planted`` source), so the session warehouse's other rows stay apart.
TINY = Design(
    units=3000, aa=3, planted=2, lift=0.4, rho=0.6, days=3, seed=7, start=date(2033, 2, 1)
)


@pytest.mark.spark
def test_pipeline_recovers_a_large_planted_lift(spark: SparkSession, tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = []
    for key, value in run_pipeline(spark, TINY, tmp_path, run_id="test_planted"):
        if key == "rows":
            rows = value
    by_key = {(r["experiment_id"], r["metric"]): r for r in rows}
    assert set(by_key) == {(e, m) for e in TINY.experiment_ids for m in (VALUE, CONVERTED)}
    for (experiment, metric), r in by_key.items():
        assert r["n_control"] + r["n_variant"] == TINY.units  # every unit in every experiment
        truth = TINY.truth(experiment, metric)
        # Within 4 SEs of the truth: the arms' planted effects went to the arms analysed.
        assert abs(r["abs_lift"] - truth) < 4 * r["abs_se"], (experiment, metric, r["abs_lift"])
        if experiment in TINY.planted_ids:
            assert r["abs_ci_low"] <= truth <= r["abs_ci_high"]
            assert r["p_value"] < 1e-4
            assert r["rel_lift"] == pytest.approx(
                TINY.lift, abs=4 * r["abs_se"] / r["mean_control"]
            )
        else:
            assert abs(r["statistic"]) < 4  # A/A: centred on zero
    value = [by_key[(e, VALUE)] for e in TINY.experiment_ids]
    assert {r["method"] for r in value} == {"regression_hc1"}
    for r in value:  # the covariate's correlation shows as the adjustment's variance reduction
        expected = TINY.expected_variance_reduction(r["experiment_id"])
        assert r["variance_reduction"] == pytest.approx(expected, abs=0.08)
    figures = summarise(TINY, rows)
    assert figures[VALUE]["ci_coverage_planted"]["n"] == TINY.planted
    assert figures[VALUE]["detection"]["rate"] == 1.0


def _row(experiment: str, metric: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "experiment_id": experiment,
        "metric": metric,
        "method": "m",
        "p_value": 0.5,
        "p_value_sequential": 1.0,
        "p_value_unadjusted": 0.5,
        "abs_lift": 0.0,
        "abs_se": 1.0,
        "abs_ci_low": -2.0,
        "abs_ci_high": 2.0,
        "statistic": 0.0,
        "variance_reduction": 0.2,
        "srm_p_value": 0.5,
    }
    return row | values


def test_summary_counts_rates_against_the_truth() -> None:
    design = Design(units=1000, aa=4, planted=2, lift=0.1, rho=0.5, days=2)
    delta = design.delta_value
    rows = [
        _row(e, m, p_value=0.01 if e == "aa_0000" else 0.5)
        for e in design.aa_ids
        for m in (VALUE, CONVERTED)
    ]
    rows += [
        _row("pl_0000", VALUE, abs_lift=delta, p_value=0.001, abs_ci_low=0.0, abs_ci_high=1.0),
        _row("pl_0001", VALUE, abs_lift=-delta, p_value=0.001, abs_ci_low=-1.0, abs_ci_high=0.0),
        _row("pl_0000", CONVERTED),
        _row("pl_0001", CONVERTED),
    ]
    figures = summarise(design, rows)
    assert figures[VALUE]["aa_false_positive_fixed"] == {
        "rate": 0.25,
        "se": round(math.sqrt(0.25 * 0.75 / 4), 4),
        "n": 4,
    }
    assert figures[VALUE]["aa_false_positive_peeking"]["rate"] == 0.0
    assert figures[VALUE]["ci_coverage_planted"]["rate"] == 0.5  # the second misses delta
    assert figures[VALUE]["detection"]["rate"] == 0.5  # a wrong-sign rejection is no detection
    assert figures[CONVERTED]["ci_coverage_planted"]["rate"] == 1.0
    with pytest.raises(ValueError, match="not analysed"):
        summarise(design, rows[1:])


def test_each_experiment_has_its_own_layer_and_salt() -> None:
    import yaml

    from ab_testing.config import parse_config

    config = parse_config(yaml.safe_load(experiments_yaml(TINY)))
    assert [e.id for e in config.experiments] == TINY.experiment_ids
    assert len({layer.salt for layer in config.layers}) == len(config.layers)
    assert all(e.buckets == (0, 10000) for e in config.experiments)
