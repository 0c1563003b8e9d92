"""The recommendation experiment's replay at a size that has power: synthetic users, real A/B jobs.

Usage::

    python -m bench.replay_power                      # defaults: see --help
    python -m bench.replay_power --users 40000 --keep # keep the warehouse and the report

The demo replays ml-latest-small's 610 users: far too few for the configured effect (a 5 %
relative lift at 80 % power; docs/ab-demo-experiment.md). This script runs the SAME experiment
(``ab_testing/experiments.recs.yaml``, ``ab_testing/metrics.recs.yaml``, ``jobs.assign`` ->
``jobs.replay`` -> ``jobs.exposures`` -> ``jobs.ab_analyze``) on a throw-away warehouse filled
by the synthetic generator (:mod:`recsys.synthetic`, users in taste clusters over genres):

* **Split in time.** Interactions before the cutoff (``--future-days`` before the generator's
  end) are the training data; the rest is the held-out future. The replay maps the cutoff onto
  the experiment's first day with a speed that puts the whole future inside the metrics' 7-day
  window, so every user's held-out interactions can count (and the 14 days before are the
  CUPED pre-period).
* **Two arms from the training data only**, written to ``serve.recommendations`` as the
  platform's sets: ``popularity`` (the most consumed items, the platform's control) and
  ``model``, a genre-affinity recommender (an item's popularity weighted by the user's share of
  training interactions in its genres). Both exclude every item the user consumed in training,
  as the platform's sets do. Training a neural model does not fit in minutes on two cores; the
  point here is the replay's power and whether it agrees with offline metrics, not which model.
* **Offline metrics of the same lists on the same held-out future** (NDCG@10, hit rate@list
  length over the future positives, :mod:`recsys.evaluation.spark_metrics`), beside the online
  result the A/B jobs compute (``ab.results``: lift, CI, p, achieved power, MDE).

Prints the table on stderr and ONE JSON line on stdout. Figures: docs/ab-demo-experiment.md.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench import _harness

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("bench.replay_power")

ROOT: Final = Path(__file__).resolve().parents[1]
EXPERIMENTS: Final = ROOT / "ab_testing" / "experiments.recs.yaml"
METRICS: Final = ROOT / "ab_testing" / "metrics.recs.yaml"
EXPERIMENT: Final = "recs_model_vs_popularity"
SOURCE: Final = "synthetic"
DELIVERY: Final = date(2027, 1, 3)  # on or before the experiment's start (jobs.assign)
#: Days of the metrics' window (ab_testing/metrics.recs.yaml): the future must fit inside it.
WINDOW_DAYS: Final = 7
#: Candidate items per genre (model) and beyond the list (popularity) before known items go.
SPARE: Final = 200
TOP_GENRES: Final = 3
#: The arguments that size the run, echoed in the record's ``params``.
PARAMS: Final = ("users", "items", "draws_per_user", "future_days", "list_size", "seed")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    p = argparse.ArgumentParser(prog="bench.replay_power", description=doc.split("\n\n")[0])
    p.add_argument("--users", type=int, default=20_000, help="synthetic users (all assigned)")
    p.add_argument("--items", type=int, default=2_000, help="catalogue size")
    p.add_argument("--draws-per-user", type=int, default=100, help="interaction draws per user")
    p.add_argument("--future-days", type=int, default=730, help="held-out days before the end")
    p.add_argument("--list-size", type=int, default=20, help="items per served list")
    p.add_argument("--seed", type=int, default=0, help="generator seed")
    _harness.add_work_args(p)
    args = p.parse_args(argv)
    for name, lo in (("users", 200), ("items", 100), ("draws_per_user", 1), ("future_days", 1)):
        if getattr(args, name) < lo:
            p.error(f"--{name.replace('_', '-')}: must be >= {lo}, got {getattr(args, name)}")
    if not 1 <= args.list_size <= 100:
        p.error(f"--list-size: must be in [1, 100], got {args.list_size}")
    return args


def speed_for(future_days: int, window_days: int = WINDOW_DAYS) -> int:
    """Data days per replay day that put ``future_days`` inside ``window_days`` replay days."""
    if future_days < 1 or window_days < 1:
        raise ValueError(
            f"future_days, window_days: must be >= 1, got {future_days}, {window_days}"
        )
    return max(1, math.ceil(future_days / window_days))


# -- the two arms, from the training interactions only ----------------------------------------


def _top(scored: DataFrame, list_size: int) -> DataFrame:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from recsys.warehouse.tables import Col

    order = Window.partitionBy(Col.USER_ID).orderBy(F.col(Col.SCORE).desc(), F.col(Col.ITEM_ID))
    ranked = scored.withColumn(Col.RANK, F.row_number().over(order))
    return ranked.where(F.col(Col.RANK) <= list_size)


def arms(train: DataFrame, items: DataFrame, users: DataFrame, list_size: int) -> DataFrame:
    """(rec_set, user_id, rank, item_id, score) of both arms, known items excluded.

    Args:
        train: user_id, item_id of the training interactions.
        items: item_id, genres (bronze.items).
        users: user_id of every user to serve.
        list_size: Items per list.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from recsys.warehouse.tables import Col, RecSet

    known = train.select(Col.USER_ID, Col.ITEM_ID).distinct()
    counts = train.groupBy(Col.ITEM_ID).agg(F.count(F.lit(1)).alias("n"))
    # Popularity: the most consumed items the user has not consumed.
    top_items = counts.orderBy(F.col("n").desc(), F.col(Col.ITEM_ID)).limit(list_size + SPARE)
    pop = (
        users.crossJoin(F.broadcast(top_items))
        .join(known, [Col.USER_ID, Col.ITEM_ID], "left_anti")
        .select(Col.USER_ID, Col.ITEM_ID, F.col("n").cast("double").alias(Col.SCORE))
    )
    # Genre affinity: the user's share of training interactions per genre, times popularity.
    genre = items.select(Col.ITEM_ID, F.explode(Col.GENRES).alias("genre"))
    share = (
        train.join(genre, Col.ITEM_ID)
        .groupBy(Col.USER_ID, "genre")
        .agg(F.count(F.lit(1)).alias("g"))
        .withColumn("share", F.col("g") / F.sum("g").over(Window.partitionBy(Col.USER_ID)))
    )
    by_share = Window.partitionBy(Col.USER_ID).orderBy(F.col("share").desc(), "genre")
    top_genres = share.withColumn("r", F.row_number().over(by_share)).where(
        F.col("r") <= TOP_GENRES
    )
    per_genre = (
        genre.join(counts, Col.ITEM_ID)
        .withColumn(
            "r",
            F.row_number().over(
                Window.partitionBy("genre").orderBy(F.col("n").desc(), F.col(Col.ITEM_ID))
            ),
        )
        .where(F.col("r") <= list_size + SPARE)
        .select("genre", Col.ITEM_ID, "n")
    )
    model = (
        top_genres.select(Col.USER_ID, "genre", "share")
        .join(F.broadcast(per_genre), "genre")
        .join(known, [Col.USER_ID, Col.ITEM_ID], "left_anti")
        .groupBy(Col.USER_ID, Col.ITEM_ID)
        .agg((F.sum("share") * F.log1p(F.max("n"))).alias(Col.SCORE))
    )
    return (
        _top(pop, list_size)
        .withColumn(Col.REC_SET, F.lit(RecSet.POPULARITY))
        .unionByName(_top(model, list_size).withColumn(Col.REC_SET, F.lit(RecSet.MODEL)))
    )


# -- the run ----------------------------------------------------------------------------------


def _job(name: str, main: Any, argv: list[str]) -> None:
    status = main(argv)
    if status != 0:
        raise RuntimeError(f"{name} {' '.join(argv)}: exit status {status}")


def run(spark: SparkSession, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Generate, build both arms, evaluate them offline, replay and analyse; the figures."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from ab_testing.config import load_config
    from jobs import ab_analyze, assign, exposures
    from jobs import replay as replay_job
    from jobs.generate_synthetic import GenerateConfig, generate, midnight
    from recsys.evaluation.spark_metrics import hit_rate_at_k, ndcg_at_k
    from recsys.synthetic import SyntheticConfig
    from recsys.warehouse.io import replace_partition
    from recsys.warehouse.tables import (
        AB_RESULTS,
        BRONZE_INTERACTIONS,
        BRONZE_ITEMS,
        SERVE_RECOMMENDATIONS,
        Col,
    )

    record: dict[str, Any] = {}
    t = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal t
        now = time.perf_counter()
        record[f"{stage}_seconds"] = round(now - t, 1)
        log.info("%s: %.1f s", stage, now - t)
        t = now

    end = midnight(DELIVERY)
    cutoff = end - timedelta(days=args.future_days)
    speed = speed_for(args.future_days)
    synthetic = SyntheticConfig(
        n_users=args.users,
        n_items=args.items,
        n_interactions=args.users * args.draws_per_user,
        start=end - timedelta(days=3652),
        end=end,
        seed=args.seed,
        partitions=max(2, math.ceil(args.users * args.draws_per_user / 1_000_000)),
    )
    generated = generate(spark, GenerateConfig(synthetic, DELIVERY, SOURCE, run_id="replay-power"))
    record["interactions"] = generated.n_interactions
    lap("generate")

    inter = spark.table(BRONZE_INTERACTIONS.qualified_name).where(
        (F.col(Col.DS) == F.lit(DELIVERY)) & (F.col(Col.SOURCE) == F.lit(SOURCE))
    )
    train = inter.where(F.col(Col.EVENT_TS) < F.lit(cutoff)).persist(StorageLevel.MEMORY_AND_DISK)
    future = inter.where(F.col(Col.EVENT_TS) >= F.lit(cutoff))
    items = spark.table(BRONZE_ITEMS.qualified_name).where(
        (F.col(Col.DS) == F.lit(DELIVERY)) & (F.col(Col.SOURCE) == F.lit(SOURCE))
    )
    users = inter.select(Col.USER_ID).distinct()
    recs = arms(train, items, users, args.list_size).persist(StorageLevel.MEMORY_AND_DISK)
    out = recs.select(
        Col.REC_SET,
        Col.USER_ID,
        F.col(Col.RANK).cast("int").alias(Col.RANK),
        Col.ITEM_ID,
        F.col(Col.SCORE).cast("float").alias(Col.SCORE),
        F.when(F.col(Col.REC_SET) == "model", F.lit("Because you like its genres"))
        .otherwise(F.lit("Popular"))
        .alias(Col.EXPLANATION),
        F.when(F.col(Col.REC_SET) == "model", F.lit("genre_affinity"))
        .otherwise(F.lit("popularity"))
        .alias(Col.SOURCE),
        F.concat(F.col(Col.REC_SET), F.lit("-replay-power")).alias(Col.MODEL_VERSION),
        F.lit("replay-power").alias(Col.RUN_ID),
        F.lit(DELIVERY).alias(Col.DS),
    )
    out = out.select(*spark.table(SERVE_RECOMMENDATIONS.qualified_name).columns)
    replace_partition(out, SERVE_RECOMMENDATIONS, DELIVERY)
    lap("arms")

    # Offline: the same lists against the held-out future's positives (as jobs.evaluate does).
    truth = future.where(F.col(Col.IS_POSITIVE)).select(Col.USER_ID, Col.ITEM_ID).distinct()
    truth = truth.persist(StorageLevel.MEMORY_AND_DISK)
    offline: dict[str, dict[str, float]] = {}
    for rec_set in ("popularity", "model"):
        lists = recs.where(F.col(Col.REC_SET) == rec_set).select(Col.USER_ID, Col.ITEM_ID, Col.RANK)
        offline[rec_set] = {
            "ndcg@10": round(ndcg_at_k(lists, truth, 10), 4),
            f"hit_rate@{args.list_size}": round(hit_rate_at_k(lists, truth, args.list_size), 4),
        }
    record["offline"] = offline
    record["future_users"] = truth.select(Col.USER_ID).distinct().count()
    lap("offline")

    exp = next(e for e in load_config(EXPERIMENTS).experiments if e.id == EXPERIMENT)
    first, last = exp.start.isoformat(), (exp.end - timedelta(days=1)).isoformat()
    days = ["--from-ds", first, "--ds", last]
    _job("jobs.assign", assign.main, ["--config", str(EXPERIMENTS), *days, "--source", SOURCE])
    lap("assign")
    replay_argv = ["--config", str(EXPERIMENTS), "--experiment", EXPERIMENT, "--ds", last]
    replay_argv += ["--data-start", cutoff.isoformat(), "--speed", str(speed)]
    replay_argv += ["--list-size", str(args.list_size), "--interactions-source", SOURCE]
    replay_argv += ["--recs-ds", DELIVERY.isoformat(), "--run-id", "replay-power"]
    _job("jobs.replay", replay_job.main, replay_argv)
    lap("replay")
    _job("jobs.exposures", exposures.main, [*days, "--run-id", "replay-power"])
    lap("exposures")
    argv = ["--config", str(EXPERIMENTS), "--metrics", str(METRICS), "--ds", last]
    argv += ["--experiment", EXPERIMENT, "--reports-dir", str(work / "reports")]
    argv += ["--run-id", "replay-power"]
    _job("jobs.ab_analyze", ab_analyze.main, argv)
    lap("ab_analyze")
    rows = (
        spark.table(AB_RESULTS.qualified_name)
        .where(
            (F.col(Col.DS) == F.lit(date.fromisoformat(last)))
            & (F.col(Col.EXPERIMENT_ID) == F.lit(EXPERIMENT))
            & (F.col(Col.SLICE) == F.lit("all"))
        )
        .collect()
    )
    keys = (
        "n_control", "n_variant", "mean_control", "mean_variant", "rel_lift", "rel_ci_low",
        "rel_ci_high", "p_value", "p_value_adjusted", "power", "mde_relative", "method",
        "variance_reduction", "srm_p_value", "decision",
    )  # fmt: skip
    record["online"] = {r[Col.METRIC]: {k: r[k] for k in keys if k in r.asDict()} for r in rows}
    record["replay"] = {
        "data_start": cutoff.isoformat(),
        "speed": speed,
        "list_size": args.list_size,
        "experiment_days": f"{first}..{last}",
    }
    recs.unpersist()
    train.unpersist()
    truth.unpersist()
    return record


def table(record: dict[str, Any]) -> str:
    """The run's figures as a small text table."""
    lines = [f"replay_power: {record['params']}"]
    for rec_set, metrics in record.get("offline", {}).items():
        figures = ", ".join(f"{k} {v}" for k, v in metrics.items())
        lines.append(f"  offline {rec_set:<10} {figures}")

    def pct(x: Any) -> str:
        return "n/a" if x is None else f"{x:+.1%}"

    def num(x: Any, spec: str) -> str:
        return "n/a" if x is None else format(x, spec)

    for metric, r in sorted(record.get("online", {}).items()):
        lines.append(
            f"  online  {metric:<16} n {r.get('n_control')}/{r.get('n_variant')}, control "
            f"{num(r.get('mean_control'), '.4g')}, model {num(r.get('mean_variant'), '.4g')}, "
            f"lift {pct(r.get('rel_lift'))} [{pct(r.get('rel_ci_low'))}, "
            f"{pct(r.get('rel_ci_high'))}], p {num(r.get('p_value'), '.3g')}, power "
            f"{num(r.get('power'), '.2f')}, MDE {pct(r.get('mde_relative'))}, {r.get('decision')}"
        )
    lines.append(f"  seconds {record.get('seconds')}, load {record.get('loadavg_1m')}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from recsys.warehouse.catalog import apply_ddl

    session = _harness.warehouse_spark("replay-power-", args.work_dir, args.keep, "replay_power")
    with session as (spark, settings, root):
        started = time.perf_counter()
        load = [os.getloadavg()[0]]
        apply_ddl(spark, settings.warehouse_root)
        record: dict[str, Any] = {"bench": "replay_power"}
        record["params"] = {name: getattr(args, name) for name in PARAMS}
        record.update(run(spark, args, root))
        load.append(os.getloadavg()[0])
        record["at"] = datetime.now(UTC).isoformat(timespec="seconds")
        _harness.finish_timed(record, started, load, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
