"""Shared fixtures for the report tests (fixtures only: test modules cannot import this file
under ``--import-mode=importlib``).

The report is built the way the CLI builds it: unit-level rows with distinctive unit ids are
aggregated by :func:`ab_testing.report.units.experiment_from_units`, so every test can check
that no id reaches the output.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from ab_testing.report import (
    ArmModelVersion,
    DailyPoint,
    ReportData,
    render_html,
    render_markdown,
)
from ab_testing.report.units import UnitMetric, UnitSchema, experiment_from_units
from ab_testing.settings import AnalysisConfig
from ab_testing.stats import analyze_experiment

START = date(2024, 6, 1)
DAYS = 7


def make_units(seed: int = 7, n: int = 600, tiny: int = 20) -> pd.DataFrame:
    """Units of a control/treatment test; slice "tiny" has ``tiny`` units per arm."""
    rng = np.random.default_rng(seed)
    frames = []
    for arm, lift in (("control", 0.0), ("treatment", 0.6)):
        m = n + tiny
        pre = rng.gamma(2.0, 10.0, m)
        impressions = 1.0 + rng.poisson(5, m)
        frames.append(
            pd.DataFrame(
                {
                    "variant": arm,
                    "segment": ["tiny"] * tiny + ["big"] * n,
                    "conversion": (rng.random(m) < 0.10 * (1 + lift)).astype(int),
                    "revenue": 0.8 * pre + rng.normal(0, 4, m) + 2 * lift,
                    "pre_revenue": pre,
                    "clicks": rng.binomial(impressions.astype(int), 0.1),
                    "impressions": impressions,
                    "latency": rng.normal(200, 20, m),
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "user_id", [f"uid{i:06d}q" for i in rng.permutation(len(df))])
    return df


SCHEMA = UnitSchema(
    unit_col="user_id",
    variant_col="variant",
    control="control",
    metrics=[
        UnitMetric.parse("conversion:binomial"),
        UnitMetric.parse("revenue:mean"),
        UnitMetric.parse("clicks/impressions:ratio"),
        UnitMetric.parse("latency:mean"),
    ],
    covariates={"revenue": "pre_revenue"},
    slice_col="segment",
    guardrails={"latency": 0.05},
    lower_is_better=["latency"],
)


def daily_series() -> list[DailyPoint]:
    """A converging cumulative series for two metrics."""
    points = []
    for metric, lift in (("conversion", 0.3), ("revenue", 0.02)):
        for k in range(DAYS):
            half = 0.5 / math.sqrt(k + 1)
            p = max(1e-6, 0.5 / (k + 1) ** 2)
            day = START + timedelta(days=k)
            points.append(DailyPoint(day, metric, "treatment", lift, lift - half, lift + half, p))
    return points


def build_report(weights: dict[str, float] | None = None) -> ReportData:
    schema = SCHEMA if weights is None else dataclasses.replace(SCHEMA, weights=weights)
    exp = experiment_from_units(make_units(), schema, "exp-report")
    config = AnalysisConfig()
    return ReportData(
        analyze_experiment(exp, config),
        daily=daily_series(),
        metrics=exp.metrics,
        config=config,
        start_date=START,
        end_date=START + timedelta(days=DAYS - 1),
        covariates=schema.covariates,
        source="units.csv",
        expected_weights=exp.expected_weights,
    )


@pytest.fixture(scope="session")
def unit_ids() -> list[str]:
    """Every unit id of the input data."""
    return list(make_units()["user_id"])


@pytest.fixture(scope="session")
def report() -> ReportData:
    """A report whose SRM check passes, with a suppressed slice, a guardrail and a daily series."""
    return build_report()


@pytest.fixture(scope="session")
def srm_report() -> ReportData:
    """The same data analysed against an 80/20 expected split: SRM fails."""
    return build_report({"control": 0.8, "treatment": 0.2})


@pytest.fixture(scope="session")
def html(report: ReportData) -> str:
    return render_html(report)


@pytest.fixture(scope="session")
def srm_html(srm_report: ReportData) -> str:
    return render_html(srm_report)


@pytest.fixture(scope="session")
def markdown(report: ReportData) -> str:
    return render_markdown(report)


#: The arms' served versions: control one evaluated baseline; treatment an evaluated bundle, a
#: newer bundle never evaluated offline, and fallback lists without a version.
ARM_VERSIONS = (
    ArmModelVersion(
        "treatment",
        "tt1+rk1",
        "model",
        3000,
        0.75,
        {"ndcg@10": 0.0642, "recall@10": 0.0911, "recall@100": 0.3125},
        date(2024, 5, 31),
        "two_tower+ranker",
    ),
    ArmModelVersion("treatment", None, "popularity", 100, 0.025),
    ArmModelVersion("treatment", "tt2+rk2", "model", 900, 0.225),
    ArmModelVersion(
        "control",
        "popularity-2024-05-31",
        "popularity",
        4000,
        1.0,
        {"ndcg@10": 0.0317, "recall@10": 0.0523, "recall@100": 0.2071},
        date(2024, 5, 31),
        "popularity",
    ),
)


@pytest.fixture(scope="session")
def versions_report(report: ReportData) -> ReportData:
    """The report with the model versions behind its arms (the offline vs online section)."""
    return dataclasses.replace(report, arm_versions=ARM_VERSIONS)
