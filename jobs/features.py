"""Build the feature tables of one ds from one bronze delivery: split, users, items, examples.

Usage (also through ``spark-submit jobs/features.py ...``)::

    python -m jobs.features --ds 2026-11-28 [--source ml-latest-small] [--source-ds DATE]
        [--split leave_last_out|time_cutoff] [--cutoff TS] [--validation-cutoff TS]
        [--history-len 50] [--negatives-per-positive 4] [--seed 0] [--half-life-days 180]
        [--no-tags] [--no-content] [--covisit-top-n 500] [--no-covisit]
        [--example-roles validation]

Reads ``bronze.interactions`` and ``bronze.items`` of the delivery ``(source, source-ds)``
(default: the latest ds of the source), splits the interactions (``recsys.features.split``),
computes user and item features from the train role only, embeds item text with
all-MiniLM-L6-v2 (skipped with ``--no-content``: zeros, and a warning), samples ranker
examples of the roles ``--example-roles`` (default: only the validation role, the one the
ranker reads; ``recsys.features.examples.READ_ROLES``), and builds the train role's
co-visitation matrix truncated to ``--covisit-top-n`` followers per item
(``recsys.training.covisit_spark``; training, evaluation and serving read it), unless
``--no-covisit``: the daily DAG passes it on days it does not train, whose readers take the
newest stored matrix, the one the ranker was trained with. Each of
``features.interactions_split``, ``features.user_features``, ``features.item_features``,
``features.ranker_examples`` and ``features.covisit`` gets one Delta commit replacing the rows
of ``(ds, split_id)``: a rerun never duplicates, and other split definitions of the same ds are
left alone. Exits 2 on bad arguments or a missing delivery.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from pyspark import StorageLevel
from pyspark.sql import functions as F

from jobs import common
from recsys.features.content import with_content_embedding
from recsys.features.examples import READ_ROLES, ExampleConfig, check_roles, ranker_examples
from recsys.features.item_features import ItemFeatureConfig, item_features
from recsys.features.split import (
    LeaveLastOut,
    Split,
    TimeCutoff,
    as_of,
    split_interactions,
    table_slice,
)
from recsys.features.user_features import user_features
from recsys.training.covisit import DEFAULT_TOP_N, CovisitConfig
from recsys.training.covisit_spark import covisit_table_rows
from recsys.warehouse.completion import Pipeline, only_completed
from recsys.warehouse.io import replace_rows
from recsys.warehouse.session import fanned_out_shuffle
from recsys.warehouse.tables import (
    BRONZE_INTERACTIONS,
    BRONZE_ITEMS,
    FEATURES_COVISIT,
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_ITEM_FEATURES,
    FEATURES_RANKER_EXAMPLES,
    FEATURES_USER_FEATURES,
    Col,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("jobs.features")

DEFAULT_SOURCE = "ml-latest-small"


class MissingDeliveryError(RuntimeError):
    """The requested bronze delivery has no interactions."""


@dataclass(frozen=True, slots=True)
class FeatureJobConfig:
    """What one feature run does, validated at the edge (the argument parser).

    Attributes:
        ds: Feature run date; the partition every output row gets.
        source: Bronze delivery name to read.
        source_ds: Bronze delivery date to read; the latest of ``source`` when None.
        split: Split definition (its ``split_id`` partitions the outputs).
        history_len: Items kept in ``user_features.history``, >= 1.
        examples: Ranker example sampling.
        items: Item feature options.
        content: Run the sentence encoder (False: zero vectors).
        covisit: Co-visitation settings of ``features.covisit`` (window, step decay, top_n);
            the ranker reads the table with its own copy and refuses other settings.
        example_roles: Roles ``features.ranker_examples`` gets rows for (default
            :data:`~recsys.features.examples.READ_ROLES`, the roles a job reads).
        write_covisit: Build and write ``features.covisit`` (False: leave it alone; readers
            take the newest stored day on or before theirs).
    """

    ds: date
    source: str = DEFAULT_SOURCE
    source_ds: date | None = None
    split: Split = field(default_factory=LeaveLastOut)
    history_len: int = 50
    examples: ExampleConfig = field(default_factory=ExampleConfig)
    items: ItemFeatureConfig = field(default_factory=ItemFeatureConfig)
    content: bool = True
    covisit: CovisitConfig = field(default_factory=CovisitConfig)
    example_roles: tuple[str, ...] = READ_ROLES
    write_covisit: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "example_roles", check_roles("example_roles", self.example_roles))
        if not isinstance(self.ds, date):
            raise ValueError(f"ds: expected a datetime.date, got {self.ds!r}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError(f"source: expected a delivery name, got {self.source!r}")
        if not isinstance(self.history_len, int) or self.history_len < 1:
            raise ValueError(f"history_len: must be an int >= 1, got {self.history_len!r}")


@dataclass(frozen=True, slots=True)
class Features:
    """The outputs of :func:`transform`, without ``split_id`` and ``ds`` (``covisit`` None when
    the run does not write it)."""

    interactions_split: DataFrame
    user_features: DataFrame
    item_features: DataFrame
    ranker_examples: DataFrame
    covisit: DataFrame | None
    persisted: tuple[DataFrame, ...] = ()


def _utc_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_args(argv: Sequence[str] | None) -> FeatureJobConfig:
    """Command line -> validated :class:`FeatureJobConfig`.

    Raises:
        ValueError: an argument is malformed or inconsistent, naming it and its value.
    """
    parser = common.job_parser("jobs.features", __doc__)
    common.add_ds(parser, help="feature run date YYYY-MM-DD")
    common.add_source(parser, "bronze delivery name", default=DEFAULT_SOURCE, delivery_ds=True)
    parser.add_argument(
        "--split", choices=["leave_last_out", "time_cutoff"], default="leave_last_out"
    )
    parser.add_argument(
        "--cutoff",
        type=_utc_datetime,
        help="time_cutoff: first instant of test, ISO 8601 (naive = UTC)",
    )
    parser.add_argument(
        "--validation-cutoff",
        type=_utc_datetime,
        help="time_cutoff: first instant of validation (default: none)",
    )
    parser.add_argument("--history-len", type=int, default=50)
    parser.add_argument("--negatives-per-positive", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--half-life-days",
        type=float,
        default=180.0,
        help="half-life of decayed_popularity in days",
    )
    parser.add_argument("--no-tags", action="store_true", help="leave tags out of the item text")
    parser.add_argument(
        "--no-content",
        action="store_true",
        help="skip the sentence encoder (content_embedding = zeros)",
    )
    parser.add_argument(
        "--covisit-top-n",
        type=int,
        default=DEFAULT_TOP_N,
        help="followers kept per item in features.covisit (bounds it to items x top-n rows)",
    )
    parser.add_argument(
        "--no-covisit",
        action="store_true",
        help="leave features.covisit alone (readers take the newest stored day); the daily DAG "
        "rebuilds it on training days only",
    )
    parser.add_argument(
        "--example-roles",
        default=",".join(READ_ROLES),
        help="comma list of roles to write ranker examples for (train, validation, test); "
        "default: the roles a job reads",
    )
    args = parser.parse_args(argv)
    split: Split
    if args.split == "time_cutoff":
        if args.cutoff is None:
            raise ValueError("cutoff: required with --split time_cutoff, got None")
        split = TimeCutoff(args.cutoff, args.validation_cutoff)
    else:
        if args.cutoff is not None or args.validation_cutoff is not None:
            raise ValueError(f"cutoff: only for --split time_cutoff, got {args.cutoff!r}")
        split = LeaveLastOut()
    return FeatureJobConfig(
        ds=args.ds,
        source=args.source,
        source_ds=args.source_ds,
        split=split,
        history_len=args.history_len,
        examples=ExampleConfig(negatives_per_positive=args.negatives_per_positive, seed=args.seed),
        items=ItemFeatureConfig(half_life_days=args.half_life_days, include_tags=not args.no_tags),
        content=not args.no_content,
        covisit=CovisitConfig(top_n=args.covisit_top_n),
        example_roles=tuple(r.strip() for r in args.example_roles.split(",") if r.strip()),
        write_covisit=not args.no_covisit,
    )


def extract(spark: SparkSession, config: FeatureJobConfig) -> tuple[DataFrame, DataFrame, date]:
    """Interactions and items of the bronze delivery, and the delivery date read.

    Raises:
        MissingDeliveryError: the delivery has no interactions or its ingest did not complete.
    """
    # Only deliveries whose ingest finished: a killed ingest leaves some bronze tables written
    # and no completion record (all days count where completion is not tracked).
    interactions = only_completed(
        spark.table(BRONZE_INTERACTIONS.qualified_name).where(
            F.col(Col.SOURCE) == F.lit(config.source)
        ),
        spark,
        Pipeline.INGEST,
        config.source,
    )
    source_ds = config.source_ds
    if source_ds is None:
        row = interactions.agg(F.max(Col.DS).alias(Col.DS)).first()
        source_ds = None if row is None else row[Col.DS]
        if source_ds is None:
            raise MissingDeliveryError(f"source: no delivery of {config.source!r} in bronze")
    elif interactions.where(F.col(Col.DS) == F.lit(source_ds)).limit(1).count() == 0:
        raise MissingDeliveryError(
            f"source_ds: no completed delivery of {config.source!r} for ds "
            f"{source_ds.isoformat()} (no interactions, or its ingest did not finish: rerun it)"
        )
    in_delivery = F.col(Col.DS) == F.lit(source_ds)
    interactions = interactions.where(in_delivery)
    items = spark.table(BRONZE_ITEMS.qualified_name).where(
        (F.col(Col.SOURCE) == F.lit(config.source)) & in_delivery
    )
    return interactions, items, source_ds


def transform(
    interactions: DataFrame,
    items: DataFrame,
    config: FeatureJobConfig,
    candidates: DataFrame | None = None,
) -> Features:
    """Every feature DataFrame of one split; persists the split and the item base.

    ``candidates`` (user_id, item_id, score) adds hard negatives; the retrieval job will give
    them. Runs one aggregation for the leave-last-out reference time.
    """
    split_df = split_interactions(interactions, config.split).persist(StorageLevel.MEMORY_AND_DISK)
    as_of_ts = as_of(split_df, config.split)
    log.info("split %s: train window ends %s", config.split.split_id, as_of_ts.isoformat())
    base = item_features(items, split_df, as_of_ts, config.items).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    return Features(
        interactions_split=split_df,
        user_features=user_features(split_df, base, as_of_ts, config.history_len),
        item_features=with_content_embedding(base, enabled=config.content),
        ranker_examples=ranker_examples(
            split_df,
            base.select(Col.ITEM_ID, Col.N_INTERACTIONS),
            config.examples,
            candidates,
            roles=config.example_roles,
        ),
        covisit=covisit_table_rows(split_df, base, config.covisit)
        if config.write_covisit
        else None,
        persisted=(split_df, base),
    )


def replace_split(df: DataFrame, table: TableRef, ds: date, split_id: str) -> None:
    """Replace the ``(ds, split_id)`` rows of ``table`` with ``df`` in one Delta commit.

    ``df`` lacks ``ds`` and ``split_id`` (stamped here); its columns are put in the table's order
    and cast to the table's types.
    """
    schema = df.sparkSession.table(table.qualified_name).schema
    stamped = df.withColumns({Col.SPLIT_ID: F.lit(split_id), Col.DS: F.lit(ds)})
    conformed = stamped.select(*[F.col(f.name).cast(f.dataType) for f in schema.fields])
    condition = (F.col(Col.DS) == F.lit(ds)) & (F.col(Col.SPLIT_ID) == F.lit(split_id))
    replace_rows(conformed, table, condition)


def load(spark: SparkSession, features: Features, config: FeatureJobConfig) -> dict[str, int]:
    """Write the tables (one commit each; ``features.covisit`` only when built); returns rows
    written per table."""
    split_id = config.split.split_id
    outputs = (
        (FEATURES_INTERACTIONS_SPLIT, features.interactions_split),
        (FEATURES_USER_FEATURES, features.user_features),
        (FEATURES_ITEM_FEATURES, features.item_features),
        (FEATURES_RANKER_EXAMPLES, features.ranker_examples),
        (FEATURES_COVISIT, features.covisit),
    )
    counts: dict[str, int] = {}
    for table, df in outputs:
        if df is None:
            log.info("%s: not rebuilt (--no-covisit)", table)
            continue
        started = time.perf_counter()
        # Co-visitation shuffles up to `window` pairs per event: partitions sized for the
        # events would be `window` times too large at scale.
        fanout = config.covisit.window if table == FEATURES_COVISIT else 1
        with fanned_out_shuffle(spark, fanout):
            replace_split(df, table, config.ds, split_id)
        seconds = time.perf_counter() - started
        counts[str(table)] = table_slice(spark, table, config.ds, split_id).count()
        log.info("%s: %d rows in %.1f s", table, counts[str(table)], seconds)
        if table == FEATURES_ITEM_FEATURES and config.content:
            n = counts[str(table)]
            log.info(
                "content: encoded %d texts in %.1f s (%.1f texts/s incl. model load)",
                n,
                seconds,
                n / seconds if seconds > 0 else 0.0,
            )
    return counts


def _features(job: common.Job[FeatureJobConfig]) -> int:
    config = job.config
    if not config.content:
        log.warning(
            "--no-content: content_embedding is all zeros for ds=%s split_id=%s; "
            "cold items then have no content signal",
            config.ds,
            config.split.split_id,
        )
    interactions, items, source_ds = extract(job.spark, config)
    log.info(
        "reading %s ds=%s; writing ds=%s split_id=%s",
        config.source,
        source_ds,
        config.ds,
        config.split.split_id,
    )
    features = transform(interactions, items, config)
    try:
        counts = load(job.spark, features, config)
    finally:
        for df in features.persisted:
            df.unpersist()
    log.info(
        "features for ds=%s split_id=%s in %.1f s: %s",
        config.ds,
        config.split.split_id,
        job.seconds(),
        counts,
    )
    return 0


main = common.job_main("features", parse_args, _features, exits=((MissingDeliveryError, 2),))


if __name__ == "__main__":
    sys.exit(main())
