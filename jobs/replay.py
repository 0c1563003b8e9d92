"""Replay held-out future interactions as a recommendation experiment: ab.served and ab.events.

Usage::

    python -m jobs.replay --config ab_testing/experiments.recs.yaml \
        --experiment recs_model_vs_popularity --ds 2027-01-17 --data-start 2017-01-01T00:00:00 \
        [--speed 7] [--recs-ds 2026-11-30] [--interactions-source ml-latest-small] \
        [--list-size 10] [--click-window-days 1] [--pre-days 14] [--surface home]

Replays the experiment's days from its start to ``--ds`` (or its last day): every unit assigned
on a day (``ab.assignments``, written by ``jobs.assign`` for that day) is served its variant's
recommendation set from ``serve.recommendations`` of ``--recs-ds`` (default: the latest ds);
impressions and clicks come from the users' interactions in the latest ``bronze.interactions``
delivery (of ``--interactions-source``), mapped onto the calendar by ``--data-start`` and
``--speed``. The rules (calendar mapping, one impression per served item, click attribution,
pre-period clicks for CUPED) are in :mod:`ab_testing.replay`.

Writes, each in one Delta commit that replaces what a previous replay wrote for the same days
(so a rerun never duplicates): ``ab.served`` rows with ``source = 'replay'`` on the replayed days,
``ab.events`` rows with ``source = 'replay'`` from ``--pre-days`` before the start to ``--ds``,
and assignments that could not be served (unit id not a user id, no list in any set) to
``bronze.quarantine`` with their reason. A replay owns the ``replay`` source of those days:
replaying another experiment over the same days replaces it. Then run ``jobs.exposures
--from-ds <start> --ds <day>`` and ``jobs.ab_analyze``. Exit status: 0 done, 1 missing input
(assignments, recommendations or interactions), 2 invalid arguments or config (checked before
Spark starts).
"""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from ab_testing.config import Experiment, load_config
from ab_testing.replay import (
    EVENT_COLUMNS,
    REPLAY_SOURCE,
    SERVED_COLUMNS,
    ReplayConfig,
    rec_set_for,
    replay,
)
from jobs.common import Job, check_names, job_main
from recsys.warehouse.io import with_conflict_retry
from recsys.warehouse.session import build_spark
from recsys.warehouse.tables import (
    AB_ASSIGNMENTS,
    AB_EVENTS,
    AB_SERVED,
    BRONZE_INTERACTIONS,
    BRONZE_QUARANTINE,
    SERVE_RECOMMENDATIONS,
    Col,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger("jobs.replay")



class MissingInputError(RuntimeError):
    """An input the replay needs is absent (assignments, recommendations or interactions)."""


@dataclass(frozen=True, slots=True)
class ReplayJob:
    """One validated run."""

    experiment: Experiment
    replay: ReplayConfig
    recs_ds: date | None
    interactions_source: str | None
    run_id: str


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_args(argv: Sequence[str] | None) -> ReplayJob:
    """Command line -> validated :class:`ReplayJob`.

    Raises:
        ValueError/TypeError: the config, the experiment or an option is invalid.
    """
    p = argparse.ArgumentParser(prog="jobs.replay", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, type=Path, help="experiments YAML file")
    p.add_argument("--experiment", required=True, help="experiment id in --config")
    p.add_argument("--ds", required=True, type=date.fromisoformat, help="last day to replay")
    p.add_argument(
        "--data-start",
        required=True,
        type=_instant,
        help="data instant (ISO 8601, naive = UTC) mapped to the experiment's first day 00:00; "
        "normally the training cutoff of the recommendations",
    )
    p.add_argument("--speed", type=int, default=1, help="data days per replay day (default 1)")
    p.add_argument("--recs-ds", type=date.fromisoformat, help="serve.recommendations ds")
    p.add_argument("--interactions-source", help="bronze.interactions delivery (default: latest)")
    p.add_argument("--list-size", type=int, default=10, help="items per served list")
    p.add_argument("--click-window-days", type=int, default=1, help="click window after serving")
    p.add_argument("--pre-days", type=int, default=14, help="pre-period days (CUPED)")
    p.add_argument("--surface", default="home", help="ab.served.surface of the served lists")
    p.add_argument("--run-id", help="id stamped on quarantined rows (default: a new UUID)")
    args = p.parse_args(argv)
    run_id = args.run_id or uuid.uuid4().hex
    check_names((("interactions_source", args.interactions_source), ("run_id", run_id)))
    config = load_config(args.config)
    found = [e for e in config.experiments if e.id == args.experiment]
    if not found:
        raise ValueError(
            f"experiment: {args.experiment!r} is not in {args.config} "
            f"({sorted(config.experiment_ids)})"
        )
    exp = found[0]
    if args.ds < exp.start:
        raise ValueError(f"ds: {exp.id} starts on {exp.start}, got {args.ds}")
    sets = {v.id: rec_set_for(v.id) for v in exp.variants}
    if len(set(sets.values())) < 2:
        raise ValueError(f"experiment: its variants serve one recommendation set only: {sets}")
    end = min(args.ds, exp.end - timedelta(days=1))
    replay_config = ReplayConfig(
        start=exp.start,
        end=end,
        data_start=args.data_start,
        speed=args.speed,
        list_size=args.list_size,
        click_window_days=args.click_window_days,
        pre_days=args.pre_days,
        surface=args.surface,
    )
    return ReplayJob(exp, replay_config, args.recs_ds, args.interactions_source, run_id)


def _latest_ds(df: DataFrame, what: TableRef) -> date:
    row = df.agg(F.max(Col.DS)).first()
    if row is None or row[0] is None:
        raise MissingInputError(f"{what}: no rows")
    latest: date = row[0]
    return latest


def inputs(spark: SparkSession, job: ReplayJob) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(assignments, recommendations, interactions) of the replay.

    Raises:
        MissingInputError: no assignments on the replay days, no recommendations for the ds, or
            no interactions delivery (or several sources on its day and no
            ``--interactions-source``).
    """
    cfg = job.replay
    days = (F.col(Col.DS) >= F.lit(cfg.start)) & (F.col(Col.DS) <= F.lit(cfg.end))
    assignments = (
        spark.table(AB_ASSIGNMENTS.qualified_name)
        .where(days & (F.col(Col.EXPERIMENT_ID) == F.lit(job.experiment.id)))
        .select(Col.UNIT_ID, Col.VARIANT, Col.DS)
    )
    assigned_days = {r[Col.DS] for r in assignments.select(Col.DS).distinct().collect()}
    if not assigned_days:
        raise MissingInputError(
            f"{AB_ASSIGNMENTS}: no rows of {job.experiment.id} in [{cfg.start}, {cfg.end}]; "
            "run jobs.assign --from-ds <start> --ds <day> first"
        )
    expected = {cfg.start + timedelta(days=i) for i in range((cfg.end - cfg.start).days + 1)}
    if expected - assigned_days:
        log.warning("no assignments on %s: nothing served then", sorted(expected - assigned_days))
    recs = spark.table(SERVE_RECOMMENDATIONS.qualified_name)
    recs_ds = job.recs_ds or _latest_ds(recs, SERVE_RECOMMENDATIONS)
    recs = recs.where(F.col(Col.DS) == F.lit(recs_ds))
    found_sets = {r[Col.REC_SET] for r in recs.select(Col.REC_SET).distinct().collect()}
    if not found_sets:
        raise MissingInputError(f"{SERVE_RECOMMENDATIONS}: no rows for ds {recs_ds}")
    wanted = {rec_set_for(v.id) for v in job.experiment.variants}
    if wanted - found_sets:
        log.warning("%s ds=%s lacks sets %s", SERVE_RECOMMENDATIONS, recs_ds, wanted - found_sets)
    log.info("recommendations: %s ds=%s, sets %s", SERVE_RECOMMENDATIONS, recs_ds, found_sets)
    interactions = spark.table(BRONZE_INTERACTIONS.qualified_name)
    if job.interactions_source is not None:
        interactions = interactions.where(F.col(Col.SOURCE) == F.lit(job.interactions_source))
    latest = interactions.groupBy(Col.DS).agg(F.collect_set(Col.SOURCE).alias(Col.SOURCE))
    row = latest.orderBy(F.col(Col.DS).desc()).first()
    if row is None:
        raise MissingInputError(f"{BRONZE_INTERACTIONS}: no delivery ({job.interactions_source=})")
    if len(row[Col.SOURCE]) > 1:
        raise MissingInputError(
            f"{BRONZE_INTERACTIONS}: sources {sorted(row[Col.SOURCE])} all delivered on "
            f"{row[Col.DS]}; pick one with --interactions-source"
        )
    log.info(
        "interactions: %s delivery %s of %s", BRONZE_INTERACTIONS, row[Col.DS], row[Col.SOURCE][0]
    )
    interactions = interactions.where(
        (F.col(Col.DS) == F.lit(row[Col.DS])) & (F.col(Col.SOURCE) == F.lit(row[Col.SOURCE][0]))
    ).select(Col.USER_ID, Col.ITEM_ID, Col.EVENT_TS)
    return assignments, recs, interactions


def _replace(df: DataFrame, table: TableRef, condition: Column) -> None:
    with_conflict_retry(
        lambda: df.writeTo(table.qualified_name).overwrite(condition), table.qualified_name
    )


def _between(lo: date, hi: date) -> Column:
    return (F.col(Col.DS) >= F.lit(lo)) & (F.col(Col.DS) <= F.lit(hi))


def run(spark: SparkSession, job: ReplayJob) -> dict[str, int]:
    """Replay and write; returns row counts written per kind (served, impression, click, ...)."""
    cfg = job.replay
    assignments, recs, interactions = inputs(spark, job)
    out = replay(assignments, recs, interactions, cfg)
    replay_rows = F.col(Col.SOURCE) == F.lit(REPLAY_SOURCE)
    served = out.served.select(*SERVED_COLUMNS).persist()
    events = out.events.select(*EVENT_COLUMNS).persist()
    try:
        _replace(served, AB_SERVED, replay_rows & _between(cfg.start, cfg.end))
        pre_lo = cfg.start - timedelta(days=cfg.pre_days)
        _replace(events, AB_EVENTS, replay_rows & _between(pre_lo, cfg.end))
        quarantine = out.rejected.select(
            F.lit(AB_SERVED.qualified_name).alias(Col.TARGET_TABLE),
            F.lit(AB_ASSIGNMENTS.qualified_name).alias(Col.SOURCE_FILE),
            F.to_json(
                F.struct(
                    F.lit(job.experiment.id).alias(Col.EXPERIMENT_ID),
                    Col.UNIT_ID,
                    Col.VARIANT,
                    Col.DS,
                )
            ).alias(Col.RAW_LINE),
            Col.REASON,
            Col.DETAIL,
            F.lit(REPLAY_SOURCE).alias(Col.SOURCE),
            F.lit(job.run_id).alias(Col.RUN_ID),
            Col.DS,
        )
        mine = (
            replay_rows
            & (F.col(Col.TARGET_TABLE) == F.lit(AB_SERVED.qualified_name))
            & _between(cfg.start, cfg.end)
        )
        _replace(quarantine, BRONZE_QUARANTINE, mine)
        counts = {"served": served.count(), "rejected": out.rejected.count()}
        for r in events.groupBy(Col.EVENT_TYPE).count().collect():
            counts[r[Col.EVENT_TYPE]] = int(r["count"])
    finally:
        served.unpersist()
        events.unpersist()
    return counts


def _replay(ctx: Job[ReplayJob]) -> int:
    job = ctx.config
    spark = build_spark(app_name="replay")
    try:
        counts = run(spark, job)
    except MissingInputError as err:
        log.error("%s", err)
        return 1
    cfg = job.replay
    log.info(
        "replayed %s %s..%s (data %s = %s 00:00, x%d): %s",
        job.experiment.id,
        cfg.start,
        cfg.end,
        cfg.data_start.isoformat(),
        cfg.start,
        cfg.speed,
        counts,
    )
    return 0


main = job_main("replay", parse_args, _replay)


if __name__ == "__main__":
    sys.exit(main())
