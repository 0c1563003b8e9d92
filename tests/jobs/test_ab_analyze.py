"""The analysis job end to end: tables in, results table and reports out, failures isolated."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import yaml
from pyspark.sql import functions as F

from ab_testing.metrics_config import load_metrics
from jobs import ab_analyze
from tests.helpers.experiments import experiment, layer

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
DS = date(2026, 3, 5)


def experiments_yaml(
    version: int, salts: tuple[str, str], experiments: dict[str, str], start: str, end: str
) -> str:
    """An experiments file: ``salts`` (holdout's, of 0 buckets, and layer ``ranking``'s), the
    ``experiments`` (id -> salt) of the layer on buckets [0, 5000) and [5000, 10000), each 1:1
    control vs treat from ``start`` to ``end``."""
    arms = {"control": 1, "treat": 1}
    entries = [
        experiment(exp_id, start, end, [5000 * k, 5000 * (k + 1)], arms, salt=salt)
        for k, (exp_id, salt) in enumerate(experiments.items())
    ]
    return yaml.safe_dump(
        {
            "version": version,
            "holdout": {"salt": salts[0], "buckets": 0},
            "layers": [layer("ranking", *entries, salt=salts[1])],
        }
    )


CONFIG = experiments_yaml(
    3,
    ("holdout-test", "layer-ranking-test"),
    {"e_ranker": "exp-ranker-test", "e_empty": "exp-empty-test"},
    "2026-03-01",
    "2026-03-20",
)


def seed_tables(
    spark: SparkSession,
    experiment_id: str = "e_ranker",
    prefix: str = "abu",
    start: datetime = datetime(2026, 3, 1, 9),
    n_units: int = 600,
    seed: int = 11,
) -> None:
    """Exposures of ``n_units`` units (``prefix`` + i, half control) and their events."""
    rng = np.random.default_rng(seed)
    exposures, events = [], []
    for i in range(n_units):
        variant = "control" if i % 2 == 0 else "treat"
        unit = prefix + str(i)
        exposed = start + timedelta(hours=int(rng.integers(0, 96)))
        exposures.append((experiment_id, "ranking", variant, unit, exposed, None, exposed.date()))
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
    assert clicks.method == "regression_hc1"  # exact HC1 from the Spark moments
    assert clicks.covariates == ["pre_click_count_14d"]
    assert clicks.abs_se > 0
    assert clicks.statistic == pytest.approx(clicks.abs_lift / clicks.abs_se)
    assert clicks.mean_variant_adjusted - clicks.mean_control_adjusted == pytest.approx(
        clicks.abs_lift
    )
    assert clicks.p_value_sides == "two-sided"
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


# Two experiments analysed one task each, as the DAG maps them; own ids and days, so the tests
# share the session warehouse with the one above without touching its rows.
def two_experiments(tmp_path: Path, ids: tuple[str, str]) -> Path:
    salts = {exp_id: "salt-" + exp_id for exp_id in ids}
    path = tmp_path / "two.yaml"
    path.write_text(
        experiments_yaml(1, ("holdout-two", "layer-two"), salts, "2026-05-01", "2026-05-20")
    )
    return path


def analyse_argv(config: Path, ds: date, reports: Path, *experiments: str) -> list[str]:
    argv = ["--config", str(config), "--metrics", str(ROOT / "ab_testing" / "metrics.example.yaml")]
    argv += ["--ds", ds.isoformat(), "--reports-dir", str(reports)]
    for experiment_id in experiments:
        argv += ["--experiment", experiment_id]
    return argv


Row = dict[str, Any]


def day_rows(spark: SparkSession, table: str, ds: date, ids: tuple[str, ...]) -> list[Row]:
    """Rows of ``table`` on ``ds`` for ``ids``, run_id dropped, sorted by their key columns."""
    df = spark.table(table).where((F.col("ds") == F.lit(ds)) & F.col("experiment_id").isin(*ids))
    rows = [r.asDict() for r in df.collect()]
    for r in rows:
        r.pop("run_id", None)
    keys = ("experiment_id", "metric", "variant", "slice", "look_date")
    return sorted(rows, key=lambda r: tuple(str(r.get(k)) for k in keys))


def assert_same_rows(got: list[Row], want: list[Row]) -> None:
    """Equal row sets; floats equal up to summation order (Spark adds in partition order)."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for key in g:
            if isinstance(w[key], float):
                assert g[key] == pytest.approx(w[key], rel=1e-9, abs=1e-12, nan_ok=True), key
            else:
                assert g[key] == w[key], key


def per_experiment(spark: SparkSession, table: str, ds: date) -> dict[str, int]:
    """Rows per experiment of ``table`` on ``ds``."""
    out = spark.table(table).where(F.col("ds") == F.lit(ds)).groupBy("experiment_id").count()
    return {r["experiment_id"]: int(r["count"]) for r in out.collect()}


def test_per_experiment_runs_keep_each_others_rows(spark: SparkSession, tmp_path: Path) -> None:
    ids = ("e_seq_one", "e_seq_two")
    ds = date(2026, 5, 3)
    for k, experiment_id in enumerate(ids):
        seed_tables(spark, experiment_id, f"seq{k}u", datetime(2026, 5, 1, 9), 200, 20 + k)
    config = two_experiments(tmp_path, ids)
    reports = tmp_path / "reports"
    assert ab_analyze.main([*analyse_argv(config, ds, reports, ids[0]), "--run-id", "r1"]) == 0
    first_stats = per_experiment(spark, "ab.metric_stats", ds)
    first_results = per_experiment(spark, "ab.results", ds)
    assert set(first_results) == {ids[0]}
    assert ab_analyze.main([*analyse_argv(config, ds, reports, ids[1]), "--run-id", "r2"]) == 0
    # The second experiment's run left the first one's rows as they were.
    stats, results = (
        per_experiment(spark, "ab.metric_stats", ds),
        per_experiment(spark, "ab.results", ds),
    )
    assert set(stats) == set(results) == set(ids)
    assert stats[ids[0]] == first_stats[ids[0]]
    assert results[ids[0]] == first_results[ids[0]]
    kept = day_rows(spark, "ab.results", ds, ids[1:])
    # A rerun of the first replaces its rows only: same counts, new run id, second untouched.
    assert ab_analyze.main([*analyse_argv(config, ds, reports, ids[0]), "--run-id", "r3"]) == 0
    assert per_experiment(spark, "ab.metric_stats", ds) == stats
    assert per_experiment(spark, "ab.results", ds) == results
    run_ids = {
        r["experiment_id"]: r["run_id"]
        for r in spark.table("ab.results").where(F.col("ds") == F.lit(ds)).collect()
    }
    assert run_ids == {ids[0]: "r3", ids[1]: "r2"}
    assert_same_rows(day_rows(spark, "ab.results", ds, ids[1:]), kept)
    assert (reports / ids[0] / ds.isoformat() / "report.html").exists()
    assert (reports / ids[1] / ds.isoformat() / "report.html").exists()


def test_two_analysis_processes_at_once_equal_a_sequential_run(
    spark: SparkSession, tmp_path: Path
) -> None:
    # The DAG's mapped tasks: one `ab_analyze --experiment <id>` process each, started together,
    # on the same warehouse and day. They commit to the same ds partition of both tables.
    ids = ("e_conc_one", "e_conc_two")
    ds = date(2026, 5, 4)
    for k, experiment_id in enumerate(ids):
        seed_tables(spark, experiment_id, f"conc{k}u", datetime(2026, 5, 1, 9), 200, 30 + k)
    config = two_experiments(tmp_path, ids)
    env = dict(os.environ, RECSYS_DRIVER_MEMORY="1g", RECSYS_SPARK_MASTER="local[1]")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jobs.ab_analyze", *analyse_argv(config, ds, tmp_path / "r", i)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in ids
    ]
    try:
        outputs = [p.communicate(timeout=900)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, "\n".join(
            line for line in out.splitlines() if not line.lstrip().startswith("at ")
        )[-3000:]
    concurrent = {t: day_rows(spark, t, ds, ids) for t in ("ab.metric_stats", "ab.results")}
    assert {r["experiment_id"] for r in concurrent["ab.results"]} == set(ids)
    # The same day analysed again one experiment after the other (replacing the rows above).
    for experiment_id in ids:
        assert ab_analyze.main(analyse_argv(config, ds, tmp_path / "s", experiment_id)) == 0
    for table, rows in concurrent.items():
        assert_same_rows(rows, day_rows(spark, table, ds, ids))


# Offline vs online: the versions served to each arm (ab.served), recorded beside ab.results.
ARM_DS = date(2026, 5, 6)
TT1, TT2, POP = "tt1+rk1-armtest", "tt2+rk2-armtest", "popularity-2026-04-30-armtest"


def seed_served(spark: SparkSession, experiment_id: str) -> dict[tuple[str, Any, str], int]:
    """Served rows for the experiment's exposed units; the servings each arm version should count.

    Control is served POP; treat TT1 up to 3 May, TT2 from 4 May, and every tenth unit a
    fallback (no version). Rows before a unit's first exposure or after ARM_DS count for nothing.
    """
    exposed = (
        spark.table("ab.exposures")
        .where(F.col("experiment_id") == F.lit(experiment_id))
        .select("unit_id", "variant", "first_exposure_ts")
        .collect()
    )
    rows: list[tuple[Any, ...]] = []
    want: dict[tuple[str, Any, str], int] = {}
    for k, (unit, variant, first) in enumerate(sorted(exposed)):
        times = [first - timedelta(hours=1), first]  # the first is before the exposure: not counted
        times += [datetime(2026, 5, d, 12) for d in range(first.day + 1, 8)]  # 7 May: after ARM_DS
        for ts in times:
            if variant == "control":
                version, rec_set = POP, "popularity"
            elif k % 10 == 1:
                version, rec_set = None, "popularity"
            else:
                version, rec_set = (TT1 if ts.day <= 3 else TT2), "model"
            rows.append((unit, "home", ts, rec_set, [1, 2, 3], version, "test", ts.date()))
            if first <= ts and ts.date() <= ARM_DS:
                want[(variant, version, rec_set)] = want.get((variant, version, rec_set), 0) + 1
    schema = spark.table("ab.served").schema
    spark.createDataFrame(rows, schema).writeTo("ab.served").append()
    return want


def seed_offline_metrics(spark: SparkSession) -> None:
    """TT1 evaluated twice (the later run counts) and POP once; TT2 never."""
    rows = []
    for version, name, day, ndcg in (
        (TT1, "two_tower+ranker", date(2026, 4, 20), 0.0101),
        (TT1, "two_tower+ranker", date(2026, 4, 30), 0.0642),
        (POP, "popularity", date(2026, 4, 30), 0.0317),
    ):
        at = datetime.combine(day, datetime.min.time()) + timedelta(hours=6)
        for slice_, metric, k, value in (
            ("all", "ndcg", 10, ndcg),
            ("all", "recall", 10, ndcg * 1.5),
            ("light_users", "ndcg", 10, 0.9),
        ):
            rows.append(
                (
                    name,
                    version,
                    "leave_last_out",
                    "{}",
                    slice_,
                    metric,
                    k,
                    value,
                    100,
                    "r" + str(day),
                    at,
                    day,
                )
            )
    schema = spark.table("eval.offline_metrics").schema
    spark.createDataFrame(rows, schema).writeTo("eval.offline_metrics").append()


def arm_rows(spark: SparkSession, experiment_id: str) -> dict[tuple[str, Any, str], Row]:
    day = spark.table("ab.arm_model_versions").where(
        (F.col("ds") == F.lit(ARM_DS)) & (F.col("experiment_id") == F.lit(experiment_id))
    )
    return {(r.variant, r.model_version, r.rec_set): r.asDict() for r in day.collect()}


def test_arm_model_versions_and_offline_vs_online(spark: SparkSession, tmp_path: Path) -> None:
    ids = ("e_arm_one", "e_arm_two")
    wants = []
    for k, experiment_id in enumerate(ids):
        seed_tables(spark, experiment_id, f"arm{k}u", datetime(2026, 5, 1, 9), 200, 40 + k)
        wants.append(seed_served(spark, experiment_id))
    seed_offline_metrics(spark)
    config = two_experiments(tmp_path, ids)
    reports = tmp_path / "reports"
    assert ab_analyze.main([*analyse_argv(config, ARM_DS, reports, ids[0]), "--run-id", "a1"]) == 0
    first = arm_rows(spark, ids[0])
    assert {key: r["exposures"] for key, r in first.items()} == wants[0]
    assert set(first) == {
        ("control", POP, "popularity"),
        ("treat", TT1, "model"),
        ("treat", TT2, "model"),
        ("treat", None, "popularity"),
    }
    for variant in ("control", "treat"):
        shares = [r["share"] for (v, _, _), r in first.items() if v == variant]
        assert sum(shares) == pytest.approx(1.0)
    assert first[("control", POP, "popularity")]["n_units"] == 100
    assert first[("treat", TT2, "model")]["first_served_ds"] == date(2026, 5, 4)
    assert first[("treat", TT1, "model")]["last_served_ds"] == date(2026, 5, 3)
    assert first[("treat", TT2, "model")]["last_served_ds"] == ARM_DS  # not 7 May
    assert {r["run_id"] for r in first.values()} == {"a1"}

    # The second experiment's analysis leaves the first one's arm versions as they were.
    assert ab_analyze.main([*analyse_argv(config, ARM_DS, reports, ids[1]), "--run-id", "a2"]) == 0
    assert arm_rows(spark, ids[0]) == first
    second = arm_rows(spark, ids[1])
    assert {key: r["exposures"] for key, r in second.items()} == wants[1]
    # A rerun of both in one run (one join) replaces their rows: same rows, the new run id.
    assert ab_analyze.main([*analyse_argv(config, ARM_DS, reports, *ids), "--run-id", "a3"]) == 0
    for experiment_id, before in zip(ids, (first, second), strict=True):
        rerun = arm_rows(spark, experiment_id)
        assert {r["run_id"] for r in rerun.values()} == {"a3"}
        assert {k: {**r, "run_id": "-"} for k, r in rerun.items()} == {
            k: {**r, "run_id": "-"} for k, r in before.items()
        }

    view = spark.table("ab.offline_vs_online").where(
        (F.col("ds") == F.lit(ARM_DS))
        & (F.col("experiment_id") == F.lit(ids[0]))
        & (F.col("metric") == F.lit("clicks_per_user"))
    )
    by_version = {r.model_version: r for r in view.collect()}
    assert set(by_version) == {POP, TT1, TT2, None}
    tt1 = by_version[TT1]
    # The latest evaluation, overall slice, with its evaluation ds.
    assert (tt1.offline_ndcg_at_10, tt1.offline_ds) == (0.0642, date(2026, 4, 30))
    assert tt1.offline_metrics == {"ndcg@10": 0.0642, "recall@10": pytest.approx(0.0963)}
    assert tt1.offline_model_name == "two_tower+ranker"
    assert by_version[TT2].offline_ds is None
    assert by_version[TT2].offline_metrics is None
    online = (
        spark.table("ab.results")
        .where(
            (F.col("ds") == F.lit(ARM_DS))
            & (F.col("experiment_id") == F.lit(ids[0]))
            & (F.col("metric") == F.lit("clicks_per_user"))
            & (F.col("slice") == F.lit("all"))
        )
        .first()
    )
    assert online is not None
    assert (tt1.rel_lift, tt1.rel_ci_low, tt1.p_value) == (
        online.rel_lift,
        online.rel_ci_low,
        online.p_value,
    )
    assert by_version[TT2].rel_lift == online.rel_lift  # the lift is the arm's
    control = by_version[POP]
    assert control.is_control
    assert control.rel_lift is None
    assert control.offline_ndcg_at_10 == 0.0317

    markdown = (reports / ids[0] / ARM_DS.isoformat() / "report.md").read_text()
    section = markdown[markdown.index("## Offline vs online") : markdown.index("## Relative lift")]
    for needle in (TT1, TT2, POP, "0.0642", "0.0317", "not evaluated offline", "fallback"):
        assert needle in section
    html = (reports / ids[0] / ARM_DS.isoformat() / "report.html").read_text()
    assert 'id="offline-online-table"' in html
    assert "arm0u" not in markdown + html  # aggregates only


def test_without_the_arm_table_the_analysis_goes_on(spark: SparkSession, tmp_path: Path) -> None:
    # A warehouse set up before ab.arm_model_versions: no view, so nothing to record or read.
    from recsys.warehouse.catalog import create_views

    config = two_experiments(tmp_path, ("e_old_one", "e_old_two"))
    args = ab_analyze.parse_args(analyse_argv(config, ARM_DS, tmp_path, "e_old_one"))
    chosen = list(args.experiments.experiments)
    owned = ab_analyze.owned_rows(ARM_DS, ["e_old_one"])
    spark.sql("DROP VIEW ab.offline_vs_online")
    try:
        assert ab_analyze.record_arm_versions(spark, args, chosen, owned) is None
    finally:
        create_views(spark)
    assert spark.catalog.tableExists("ab.offline_vs_online")
