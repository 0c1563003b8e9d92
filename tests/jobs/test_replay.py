"""The recommendation experiment end to end: assign -> replay -> exposures -> ab_analyze.

Runs the shipped ``experiments.recs.yaml`` experiment (its dates moved to a 3-day window) and
``metrics.recs.yaml`` on a seeded toy warehouse: literal ``serve.recommendations`` rows whose
``model`` lists hold part of each user's future items, so the model arm must win.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import yaml
from pyspark.sql import functions as F

from jobs import ab_analyze, assign, exposures
from jobs import replay as job
from recsys.warehouse.io import replace_delivery, replace_partition
from recsys.warehouse.tables import (
    AB_EVENTS,
    AB_EXPOSURES,
    AB_RESULTS,
    AB_SERVED,
    BRONZE_INTERACTIONS,
    BRONZE_USERS,
    SERVE_RECOMMENDATIONS,
    Col,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EXP = "recs_model_vs_popularity"
SOURCE = "replay-test"
DELIVERY = date(2032, 2, 1)
START, DAYS = date(2032, 3, 1), 3
LAST = START + timedelta(days=DAYS - 1)
DATA_START = datetime(2017, 1, 1, tzinfo=UTC)
N_USERS, N_ITEMS, POPULAR = 300, 200, list(range(1, 11))


def config_file(tmp_path: Path) -> Path:
    raw: dict[str, Any] = yaml.safe_load(
        (ROOT / "ab_testing" / "experiments.recs.yaml").read_text()
    )
    (exp,) = [e for layer in raw["layers"] for e in layer["experiments"] if e["id"] == EXP]
    exp["start"], exp["end"] = START, START + timedelta(days=DAYS)
    path = tmp_path / "experiments.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def seed(spark: SparkSession) -> None:
    rng = np.random.default_rng(5)
    users, interactions, recs = [], [], []
    for u in range(1, N_USERS + 1):
        activity = float(rng.gamma(2.0, 1.0))
        # Future items include the popular ones now and then, so the popularity arm has some
        # clicks: with none its (regression-adjusted) mean is 0 and the relative lift undefined.
        future = rng.choice(np.arange(1, N_ITEMS + 1), size=int(rng.poisson(3 * activity)) + 1)
        for item in future:  # held-out: at or after DATA_START, within the 3 replayed days
            ts = DATA_START + timedelta(hours=float(rng.uniform(0, 24 * DAYS)))
            interactions.append((u, int(item), ts))
        for _ in range(int(rng.poisson(2 * activity))):  # history: the 14 days before
            ts = DATA_START - timedelta(hours=float(rng.uniform(0.1, 24 * 14)))
            interactions.append((u, int(rng.integers(1, N_ITEMS + 1)), ts))
        users.append((u, None, None, len(interactions), None, None, None, None, SOURCE, "r"))
        if u % 50 != 0:  # a few users have no model list: served the popularity fallback
            mine = list(dict.fromkeys(int(i) for i in future))[:5]
            others = [int(i) for i in rng.choice(np.arange(11, N_ITEMS + 1), size=10)]
            for rank, item in enumerate(list(dict.fromkeys(mine + others))[:10], start=1):
                recs.append(("model", u, rank, item, 0.5, "Because", "two_tower", "m1", "r"))
        for rank, item in enumerate(POPULAR, start=1):
            recs.append(("popularity", u, rank, item, 0.1, "Popular", "trending", "p1", "r"))

    def frame(rows: list[tuple[Any, ...]], table: str, extra: tuple[Any, ...]) -> Any:
        return spark.createDataFrame([(*r, *extra) for r in rows], spark.table(table).schema)

    replace_delivery(
        frame(users, BRONZE_USERS.qualified_name, (DELIVERY,)), BRONZE_USERS, DELIVERY, SOURCE
    )
    rows = [
        (u, i, 4.0, True, ts.replace(tzinfo=None), SOURCE, "r", DELIVERY)
        for u, i, ts in interactions
    ]
    replace_delivery(
        spark.createDataFrame(rows, spark.table(BRONZE_INTERACTIONS.qualified_name).schema),
        BRONZE_INTERACTIONS,
        DELIVERY,
        SOURCE,
    )
    replace_partition(
        frame(recs, SERVE_RECOMMENDATIONS.qualified_name, (DELIVERY,)),
        SERVE_RECOMMENDATIONS,
        DELIVERY,
    )


def test_replay_chain_gives_results(spark: SparkSession, tmp_path: Path) -> None:
    seed(spark)
    config = config_file(tmp_path)
    days = ["--from-ds", str(START), "--ds", str(LAST)]  # every day, one run per job
    assert assign.main(["--config", str(config), *days, "--source", SOURCE]) == 0
    replay_argv = [
        "--config",
        str(config),
        "--experiment",
        EXP,
        "--ds",
        str(LAST),
        "--data-start",
        "2017-01-01T00:00:00",
        "--interactions-source",
        SOURCE,
        "--recs-ds",
        str(DELIVERY),
    ]
    assert job.main(replay_argv) == 0
    # Only the replayed days: other tests of the session write source 'replay' rows elsewhere.
    served = spark.table(AB_SERVED.qualified_name).where(
        (F.col(Col.SOURCE) == "replay") & F.col(Col.DS).between(START, LAST)
    )
    assert served.count() == N_USERS * DAYS
    events = spark.table(AB_EVENTS.qualified_name).where(F.col(Col.SOURCE) == "replay")
    n_events = events.count()
    assert job.main(replay_argv) == 0  # a rerun replaces, never duplicates
    assert events.count() == n_events
    assert served.count() == N_USERS * DAYS
    assert exposures.main(days) == 0
    exposed = spark.table(AB_EXPOSURES.qualified_name).where(F.col(Col.EXPERIMENT_ID) == EXP)
    assert exposed.count() == N_USERS
    assert exposed.where(F.col(Col.DS) != F.lit(START)).count() == 0

    argv = [
        "--config",
        str(config),
        "--metrics",
        str(ROOT / "ab_testing" / "metrics.recs.yaml"),
        "--ds",
        str(LAST),
        "--reports-dir",
        str(tmp_path / "reports"),
    ]
    assert ab_analyze.main(argv) == 0
    results = spark.table(AB_RESULTS.qualified_name).where(
        (F.col(Col.DS) == F.lit(LAST)) & (F.col(Col.EXPERIMENT_ID) == EXP)
    )
    rows = {(r.metric, r.slice): r for r in results.collect()}
    assert {m for m, s in rows if s == "all"} == {"converted", "clicks_per_user", "ctr"}
    clicks = rows[("clicks_per_user", "all")]
    assert (clicks.variant, clicks.control) == ("model", "popularity")
    assert clicks.n_control + clicks.n_variant == N_USERS
    assert clicks.method is not None
    assert clicks.method == "regression_hc1"  # exact HC1 from the Spark moments
    assert clicks.covariates == ["pre_click_count_14d"]
    assert clicks.abs_se > 0
    assert clicks.df is None  # z reference
    assert clicks.mean_variant_adjusted - clicks.mean_control_adjusted == pytest.approx(
        clicks.abs_lift
    )
    assert clicks.srm_p_value > 0.001
    assert 0 < clicks.p_value_sequential <= 1
    assert clicks.rel_lift > 0
    assert clicks.decision == "ship"
    assert rows[("ctr", "all")].p_value is not None
    report = tmp_path / "reports" / EXP / str(LAST) / "report.html"
    assert report.exists()


def test_align_held_out_needs_no_data_start() -> None:
    base = ["--config", str(ROOT / "ab_testing" / "experiments.recs.yaml")]
    base += ["--experiment", EXP, "--ds", "2027-01-17"]
    with pytest.raises(ValueError, match="data_start"):
        job.parse_args(base)
    held = job.parse_args([*base, "--align", "held_out", "--split-id", "leave_last_out"])
    assert (held.align, held.split_id) == ("held_out", "leave_last_out")
    assert job.parse_args([*base, "--data-start", "2010-01-01T00:00:00"]).align == "calendar"
    with pytest.raises(ValueError, match="split_id"):
        job.parse_args([*base, "--align", "held_out", "--split-id", "no way"])


def test_run_id_follows_the_kit_rule() -> None:
    base = ["--config", str(ROOT / "ab_testing" / "experiments.recs.yaml")]
    base += ["--experiment", EXP, "--ds", "2027-01-17", "--data-start", "2010-01-01T00:00:00"]
    airflow = "manual__2026-01-05T00:00:00+00:00"
    assert job.parse_args([*base, "--run-id", airflow]).run_id == airflow
    assert len(job.parse_args(base).run_id) == 32  # a new UUID
    with pytest.raises(ValueError, match="run_id"):
        job.parse_args([*base, "--run-id", "no way"])


def test_quarantine_rows_of_unserved_assignments(spark: SparkSession) -> None:
    rejected = spark.createDataFrame(
        [("u7", "model", START, "invalid_value", "unit_id is not a decimal user id")],
        "unit_id string, variant string, ds date, reason string, detail string",
    )
    (row,) = job.quarantine_rows(rejected, EXP, "r1").collect()
    assert row.asDict() == {
        Col.TARGET_TABLE: "ab.served",
        Col.SOURCE_FILE: "ab.assignments",
        Col.RAW_LINE: '{"experiment_id":"recs_model_vs_popularity","unit_id":"u7",'
        '"variant":"model","ds":"2032-03-01"}',
        Col.REASON: "invalid_value",
        Col.DETAIL: "unit_id is not a decimal user id",
        Col.SOURCE: "replay",
        Col.RUN_ID: "r1",
        Col.DS: START,
    }


def test_held_out_origins_are_each_users_first_test_instant(spark: SparkSession) -> None:
    day = date(2032, 2, 1)
    rows = [
        (1, datetime(2015, 1, 1), "train", "leave_last_out", day),
        (1, datetime(2015, 1, 3), "test", "leave_last_out", day),
        (1, datetime(2015, 1, 2), "test", "leave_last_out", day),
        (2, datetime(2011, 5, 5), "validation", "leave_last_out", day),
        (3, datetime(2012, 1, 1), "test", "other_split", day),
        (4, datetime(2013, 1, 1), "test", "leave_last_out", date(2032, 1, 1)),
    ]
    split = spark.createDataFrame(
        rows, "user_id bigint, event_ts timestamp, role string, split_id string, ds date"
    )
    got = {
        (r.user_id, r.event_ts)
        for r in job.held_out_origins(split, "leave_last_out", day).collect()
    }
    assert got == {(1, datetime(2015, 1, 2))}
