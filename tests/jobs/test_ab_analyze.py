"""The analysis job end to end: tables in, results table and reports out, failures isolated."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from pyspark.sql import functions as F

from ab_testing.metrics_config import load_metrics
from jobs import ab_analyze

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
DS = date(2026, 3, 5)

CONFIG = """
version: 3
holdout: {salt: holdout-test, buckets: 0}
layers:
  - id: ranking
    salt: layer-ranking-test
    experiments:
      - id: e_ranker
        salt: exp-ranker-test
        start: 2026-03-01
        end: 2026-03-20
        buckets: [0, 5000]
        variants:
          - {id: control, weight: 1, control: true}
          - {id: treat, weight: 1}
      - id: e_empty
        salt: exp-empty-test
        start: 2026-03-01
        end: 2026-03-20
        buckets: [5000, 10000]
        variants:
          - {id: control, weight: 1, control: true}
          - {id: treat, weight: 1}
"""


def seed_tables(spark: SparkSession) -> None:
    rng = np.random.default_rng(11)
    exposures, events = [], []
    start = datetime(2026, 3, 1, 9)
    for i in range(600):
        variant = "control" if i % 2 == 0 else "treat"
        unit = "abu" + str(i)
        exposed = start + timedelta(hours=int(rng.integers(0, 96)))
        exposures.append(("e_ranker", "ranking", variant, unit, exposed, None, exposed.date()))
        rate = 1.0 if variant == "control" else 1.6
        for _ in range(int(rng.poisson(rate))):
            ts = exposed + timedelta(hours=float(rng.uniform(0, 72)))
            events.append((unit, "click", ts, None, None, "test", ts.date()))
        for _ in range(3):
            ts = exposed + timedelta(hours=float(rng.uniform(0, 72)))
            events.append((unit, "impression", ts, None, None, "test", ts.date()))
        pre = exposed - timedelta(days=3)
        events.append((unit, "click", pre, None, None, "test", pre.date()))
    spark.createDataFrame(exposures, spark.table("ab.exposures").schema).writeTo(
        "ab.exposures"
    ).append()
    spark.createDataFrame(events, spark.table("ab.events").schema).writeTo("ab.events").append()


def test_analysis_writes_results_and_reports(spark: SparkSession, tmp_path: Path) -> None:
    seed_tables(spark)
    config = tmp_path / "experiments.yaml"
    config.write_text(CONFIG)
    metrics = ROOT / "ab_testing" / "metrics.example.yaml"
    argv = [
        "--config",
        str(config),
        "--metrics",
        str(metrics),
        "--ds",
        DS.isoformat(),
        "--reports-dir",
        str(tmp_path / "reports"),
    ]
    assert ab_analyze.main(argv) == 0
    results = spark.table("ab.results").where(F.col("ds") == F.lit(DS))
    rows = {(r.experiment_id, r.metric, r.slice): r for r in results.collect()}
    clicks = rows[("e_ranker", "clicks_per_user", "all")]
    assert (clicks.n_control, clicks.n_variant) == (300, 300)
    assert clicks.decision == "ship"
    assert clicks.method is not None
    assert clicks.method.startswith("cuped")
    assert 0 < clicks.p_value_sequential <= 1
    assert clicks.srm_p_value > 0.001
    assert rows[("e_ranker", "impressions_per_user", "all")].guardrail
    # The experiment with no exposures is reported with a reason, and did not stop the other.
    empty = [r for (e, _, _), r in rows.items() if e == "e_empty"]
    assert empty
    assert all(r.decision == "not_analysable" for r in empty)
    assert all(r.reason for r in empty)
    html = (tmp_path / "reports" / "e_ranker" / DS.isoformat() / "report.html").read_text()
    assert 'id="forest-plot"' in html
    assert 'id="cumulative-lift"' in html
    assert "abu1" not in html  # aggregates only
    assert (tmp_path / "reports" / "e_ranker" / DS.isoformat() / "report.md").exists()

    n_stats = spark.table("ab.metric_stats").where(F.col("ds") == F.lit(DS)).count()
    n_results = results.count()
    assert ab_analyze.main(argv) == 0  # a rerun replaces the day
    assert spark.table("ab.metric_stats").where(F.col("ds") == F.lit(DS)).count() == n_stats
    assert spark.table("ab.results").where(F.col("ds") == F.lit(DS)).count() == n_results
    looks = (
        spark.table("ab.metric_stats")
        .where(F.col("ds") == F.lit(DS))
        .select("look_date")
        .distinct()
        .count()
    )
    assert looks == 5  # 1-5 March
    assert len(load_metrics(metrics).metrics) == 4
