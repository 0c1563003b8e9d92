"""Replay held-out future interactions as a recommendation experiment: ab.served and ab.events.

Usage::

    python -m jobs.replay --config ab_testing/experiments.recs.yaml \
        --experiment recs_model_vs_popularity --ds 2027-01-17 --data-start 2017-01-01T00:00:00 \
        [--speed 7] [--recs-ds 2026-11-30] [--interactions-source ml-latest-small] \
        [--list-size 10] [--click-window-days 1] [--pre-days 14] [--surface home] \
        [--align calendar|held_out] [--split-id leave_last_out]

Replays the experiment's days from its start to ``--ds`` (or its last day): every unit assigned
on a day (``ab.assignments``, written by ``jobs.assign`` for that day) is served its variant's
recommendation set from ``serve.recommendations`` of ``--recs-ds`` (default: the latest ds);
impressions and clicks come from the users' interactions in the latest ``bronze.interactions``
delivery (of ``--interactions-source``), mapped onto the calendar by ``--data-start`` and
``--speed``. The rules (calendar mapping, one impression per served item, click attribution,
pre-period clicks for CUPED) are in :mod:`ab_testing.replay`.

``--align held_out`` gives each user its own clock instead (``--data-start`` is then unused):
the first instant of the user's held-out window, the ``test`` role of ``--split-id`` in
``features.interactions_split`` of the recommendations' ds (the split the recommendations were
made from), becomes the first replay day's midnight. The replay's future is then exactly what
offline evaluation holds out (docs/ab-demo-experiment.md); users with nothing held out get no
clicks.

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

import logging
import sys
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
from jobs import common
from recsys.warehouse import quarantine
from recsys.warehouse.io import replace_rows
from recsys.warehouse.tables import (
    AB_ASSIGNMENTS,
    AB_EVENTS,
    AB_SERVED,
    BRONZE_INTERACTIONS,
    BRONZE_QUARANTINE,
    FEATURES_INTERACTIONS_SPLIT,
    SERVE_RECOMMENDATIONS,
    Col,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger("jobs.replay")

#: ``--align values: one global clock from ``--data-start``, or a clock per user from its
#: held-out window.
CALENDAR = "calendar"
HELD_OUT = "held_out"
#: The role of the split whose first instant is a user's origin with ``--align held_out``.
HELD_OUT_ROLE = "test"


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
    align: str = CALENDAR
    split_id: str = "leave_last_out"


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_args(argv: Sequence[str] | None) -> ReplayJob:
    """Command line -> validated :class:`ReplayJob`.

    Raises:
        ValueError/TypeError: the config, the experiment or an option is invalid.
    """
    p = common.job_parser("jobs.replay", __doc__)
    p.add_argument("--config", required=True, type=Path, help="experiments YAML file")
    p.add_argument("--experiment", required=True, help="experiment id in --config")
    common.add_ds(p, required=True, help="last day to replay")
    p.add_argument(
        "--data-start",
        type=_instant,
        help="data instant (ISO 8601, naive = UTC) mapped to the experiment's first day 00:00; "
        "normally the training cutoff of the recommendations (required with --align calendar)",
    )
    p.add_argument(
        "--align",
        choices=(CALENDAR, HELD_OUT),
        default=CALENDAR,
        help="one clock from --data-start (calendar), or each user's held-out window starts on "
        "the first day (held_out)",
    )
    p.add_argument("--split-id", default="leave_last_out", help="split of --align held_out")
    p.add_argument("--recs-ds", type=date.fromisoformat, help="serve.recommendations ds")
    p.add_argument("--interactions-source", help="bronze.interactions delivery (default: latest)")
    common.add_fields(
        p,
        ReplayConfig,
        {
            "speed": "data days per replay day (default 1)",
            "list_size": "items per served list",
            "click_window_days": "click window after serving",
            "pre_days": "pre-period days (CUPED)",
            "surface": "ab.served.surface of the served lists",
        },
    )
    common.add_run_id(p, help="id stamped on quarantined rows (default: a new UUID)")
    args = p.parse_args(argv)
    run_id = common.run_id_or_new(args.run_id)
    common.check_names(
        (("interactions_source", args.interactions_source), ("split_id", args.split_id))
    )
    if args.data_start is None and args.align == CALENDAR:
        raise ValueError("data_start: required with --align calendar, got None")
    # With per-user origins data_start maps nobody; any instant keeps ReplayConfig valid.
    data_start = args.data_start or datetime(1970, 1, 1, tzinfo=UTC)
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
    replay_config = common.config_from(
        args, ReplayConfig, start=exp.start, end=end, data_start=data_start
    )
    return ReplayJob(
        exp,
        replay_config,
        args.recs_ds,
        args.interactions_source,
        run_id,
        args.align,
        args.split_id,
    )


def _latest_ds(df: DataFrame, what: TableRef) -> date:
    row = df.agg(F.max(Col.DS)).first()
    if row is None or row[0] is None:
        raise MissingInputError(f"{what}: no rows")
    latest: date = row[0]
    return latest


def held_out_origins(split: DataFrame, split_id: str, ds: date) -> DataFrame:
    """(user_id, event_ts): each user's first held-out instant in ``split`` (one ds, split id).

    Args:
        split: ``features.interactions_split`` rows.
        split_id: The split.
        ds: Its ds.
    """
    mine = (
        (F.col(Col.DS) == F.lit(ds))
        & (F.col(Col.SPLIT_ID) == F.lit(split_id))
        & (F.col(Col.ROLE) == F.lit(HELD_OUT_ROLE))
    )
    return split.where(mine).groupBy(Col.USER_ID).agg(F.min(Col.EVENT_TS).alias(Col.EVENT_TS))


def inputs(
    spark: SparkSession, job: ReplayJob
) -> tuple[DataFrame, DataFrame, DataFrame, DataFrame | None]:
    """(assignments, recommendations, interactions, per-user origins or None) of the replay.

    Raises:
        MissingInputError: no assignments on the replay days, no recommendations for the ds, no
            interactions delivery (or several sources on its day and no
            ``--interactions-source``), or with ``--align held_out`` no held-out rows of the
            split on the recommendations' ds.
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
    origins = None
    if job.align == HELD_OUT:
        split = spark.table(FEATURES_INTERACTIONS_SPLIT.qualified_name)
        origins = held_out_origins(split, job.split_id, recs_ds)
        if origins.limit(1).count() == 0:
            raise MissingInputError(
                f"{FEATURES_INTERACTIONS_SPLIT}: no {HELD_OUT_ROLE} rows of split {job.split_id} "
                f"on ds {recs_ds} (--align held_out)"
            )
        log.info(
            "origins: first %s instant per user, split %s ds %s",
            HELD_OUT_ROLE,
            job.split_id,
            recs_ds,
        )
    return assignments, recs, interactions, origins


def _between(lo: date, hi: date) -> Column:
    return (F.col(Col.DS) >= F.lit(lo)) & (F.col(Col.DS) <= F.lit(hi))


def quarantine_rows(rejected: DataFrame, experiment_id: str, run_id: str) -> DataFrame:
    """``bronze.quarantine`` rows for assignments that could not be served (``reason``,
    ``detail``): meant for ``ab.served``, from ``ab.assignments``, the assignment as JSON, source
    ``replay``, on the assignment's ``ds``."""
    return quarantine.quarantine_rows(
        rejected,
        target_table=AB_SERVED,
        source_file=AB_ASSIGNMENTS,
        raw_line=quarantine.row_as_json(
            F.lit(experiment_id).alias(Col.EXPERIMENT_ID), Col.UNIT_ID, Col.VARIANT, Col.DS
        ),
        source=REPLAY_SOURCE,
        run_id=run_id,
        ds=F.col(Col.DS),
    )


def run(spark: SparkSession, job: ReplayJob) -> dict[str, int]:
    """Replay and write; returns row counts written per kind (served, impression, click, ...)."""
    cfg = job.replay
    assignments, recs, interactions, origins = inputs(spark, job)
    out = replay(assignments, recs, interactions, cfg, origins)
    replay_rows = F.col(Col.SOURCE) == F.lit(REPLAY_SOURCE)
    served = out.served.select(*SERVED_COLUMNS).persist()
    events = out.events.select(*EVENT_COLUMNS).persist()
    try:
        replace_rows(served, AB_SERVED, replay_rows & _between(cfg.start, cfg.end))
        pre_lo = cfg.start - timedelta(days=cfg.pre_days)
        replace_rows(events, AB_EVENTS, replay_rows & _between(pre_lo, cfg.end))
        rejected = quarantine_rows(out.rejected, job.experiment.id, job.run_id)
        mine = replay_rows & quarantine.of_target(AB_SERVED) & _between(cfg.start, cfg.end)
        replace_rows(rejected, BRONZE_QUARANTINE, mine)
        counts = {"served": served.count(), "rejected": out.rejected.count()}
        for r in events.groupBy(Col.EVENT_TYPE).count().collect():
            counts[r[Col.EVENT_TYPE]] = int(r["count"])
    finally:
        served.unpersist()
        events.unpersist()
    return counts


def _replay(ctx: common.Job[ReplayJob]) -> int:
    job = ctx.config
    counts = run(ctx.spark, job)
    cfg = job.replay
    origin = cfg.data_start.isoformat() if job.align == CALENDAR else "each user's held-out start"
    log.info(
        "replayed %s %s..%s (data %s = %s 00:00, x%d): %s",
        job.experiment.id,
        cfg.start,
        cfg.end,
        origin,
        cfg.start,
        cfg.speed,
        counts,
    )
    return 0


main = common.job_main("replay", parse_args, _replay, exits=((MissingInputError, 1),))


if __name__ == "__main__":
    sys.exit(main())
