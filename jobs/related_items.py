"""Publish related items of one ds to ``serve.related_items``.

Usage (also through ``spark-submit jobs/related_items.py ...``)::

    python -m jobs.related_items --ds 2026-11-28 [--model-version V] [--top-k 50]
        [--split-id leave_last_out] [--source ml-latest-small] [--source-ds DATE]
        [--min-co-users 2] [--block-rows 512] [--partitions 4] [--run-id ID]

Reads the item-tower embeddings of ``--ds`` from ``serve.item_embeddings`` (written by
``jobs.score``; ``--model-version`` is needed only when the day holds several), computes every
item's top-K cosine neighbours, itself excluded (``recsys.surfaces.related``), and gives each a
reason from the item's genres and tags (``bronze.items`` of the delivery: by default the latest
of ``--source`` on or before ``--ds``) or from co-watching in the train role of
``features.interactions_split`` (``--ds``, ``--split-id``). One Delta commit replaces day ``ds``
of ``serve.related_items``; a rerun never duplicates. Exits 2 on bad arguments or missing
embeddings.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from pyspark import StorageLevel
from pyspark.sql import functions as F

from jobs import common
from recsys.surfaces.publish import publish_day
from recsys.surfaces.related import RelatedConfig, similar_pairs, with_reasons
from recsys.surfaces.sources import MissingInputError, delivery, resolve_delivery
from recsys.warehouse.tables import (
    FEATURES_INTERACTIONS_SPLIT,
    SERVE_ITEM_EMBEDDINGS,
    SERVE_RELATED_ITEMS,
    Col,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("jobs.related_items")

DEFAULT_SOURCE = "ml-latest-small"
DEFAULT_SPLIT_ID = "leave_last_out"
TRAIN_ROLE = "train"


@dataclass(frozen=True, slots=True)
class RelatedJobConfig:
    """One validated run.

    Attributes:
        ds: Scoring day: embeddings read and partition written.
        model_version: Embedding version to use; None = the only one of the day.
        split_id: Split whose train role gives co-watching counts.
        source: Bronze delivery name (titles, genres, tags).
        source_ds: Delivery date; None = latest of ``source`` on or before ``ds``.
        related: Neighbour search and reason parameters.
        run_id: Id stamped on every row.
    """

    ds: date
    model_version: str | None = None
    split_id: str = DEFAULT_SPLIT_ID
    source: str = DEFAULT_SOURCE
    source_ds: date | None = None
    related: RelatedConfig = field(default_factory=RelatedConfig)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if not isinstance(self.ds, date):
            raise TypeError(f"ds: expected a datetime.date, got {self.ds!r}")
        for name in ("split_id", "source", "run_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name}: expected a non-empty string, got {value!r}")
        if self.model_version is not None and not self.model_version.strip():
            raise ValueError(
                f"model_version: expected a non-empty string, got {self.model_version!r}"
            )


@dataclass(frozen=True, slots=True)
class Inputs:
    """What :func:`extract` reads."""

    embeddings: DataFrame
    items: DataFrame
    train: DataFrame
    model_version: str


def parse_args(argv: Sequence[str] | None) -> RelatedJobConfig:
    """Command line -> validated :class:`RelatedJobConfig`.

    Raises:
        ValueError: an argument is out of range, naming it and its value.
    """
    parser = common.job_parser("jobs.related_items", __doc__)
    common.add_ds(parser, help="scoring day YYYY-MM-DD")
    parser.add_argument("--model-version", help="default: the only version of the day")
    common.add_fields(parser, RelatedConfig, {"top_k": None})
    common.add_fields(parser, RelatedJobConfig, {"split_id": None})
    common.add_source(parser, "bronze delivery name", default=DEFAULT_SOURCE, delivery_ds=True)
    common.add_fields(
        parser, RelatedConfig, {"min_co_users": None, "block_rows": None, "partitions": None}
    )
    common.add_run_id(parser)
    args = parser.parse_args(argv)
    # argparse gives ints and floats, so the config's TypeErrors cannot happen here
    return common.config_from(
        args,
        RelatedJobConfig,
        related=common.config_from(args, RelatedConfig),
        run_id=common.run_id_or_new(args.run_id),
    )


def extract(spark: SparkSession, config: RelatedJobConfig) -> Inputs:
    """Embeddings of the day (one model version), items of the delivery, train interactions.

    Raises:
        MissingInputError: no embeddings for the day (or the version), several versions and
            none chosen, or no bronze delivery.
    """
    day = spark.table(SERVE_ITEM_EMBEDDINGS.qualified_name).where(F.col(Col.DS) == F.lit(config.ds))
    versions = sorted(
        r[Col.MODEL_VERSION] for r in day.select(Col.MODEL_VERSION).distinct().collect()
    )
    version = config.model_version
    if not versions:
        raise MissingInputError(
            f"ds: no rows in {SERVE_ITEM_EMBEDDINGS} for {config.ds.isoformat()} "
            "(run jobs.score for that day first)"
        )
    if version is None:
        if len(versions) > 1:
            raise MissingInputError(
                f"model_version: {SERVE_ITEM_EMBEDDINGS} holds {versions!r} for "
                f"{config.ds.isoformat()}; pass --model-version"
            )
        version = versions[0]
    elif version not in versions:
        raise MissingInputError(
            f"model_version: {version!r} not in {SERVE_ITEM_EMBEDDINGS} for "
            f"{config.ds.isoformat()} (found {versions!r})"
        )
    source_ds = resolve_delivery(spark, config.source, config.ds, config.source_ds)
    _, items = delivery(spark, config.source, source_ds)
    train = spark.table(FEATURES_INTERACTIONS_SPLIT.qualified_name).where(
        (F.col(Col.DS) == F.lit(config.ds))
        & (F.col(Col.SPLIT_ID) == F.lit(config.split_id))
        & (F.col(Col.ROLE) == F.lit(TRAIN_ROLE))
    )
    if train.limit(1).count() == 0:
        log.warning(
            "no train interactions for ds=%s split_id=%s: no co-watching reasons",
            config.ds,
            config.split_id,
        )
    log.info("embeddings %s ds=%s; items %s ds=%s", version, config.ds, config.source, source_ds)
    return Inputs(
        embeddings=day.where(F.col(Col.MODEL_VERSION) == F.lit(version)),
        items=items,
        train=train,
        model_version=version,
    )


def transform(inputs: Inputs, pairs: DataFrame, config: RelatedJobConfig) -> DataFrame:
    """Reasons for the neighbour ``pairs``, stamped with the model version."""
    related = with_reasons(pairs, inputs.items, inputs.train, config.related)
    return related.withColumn(Col.MODEL_VERSION, F.lit(inputs.model_version))


def _related(job: common.Job[RelatedJobConfig]) -> int:
    config = job.config
    inputs = extract(job.spark, config)
    pairs = similar_pairs(inputs.embeddings, config.related).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        n = publish_day(
            transform(inputs, pairs, config), SERVE_RELATED_ITEMS, config.ds, config.run_id
        )
    finally:
        pairs.unpersist()
    log.info(
        "serve.related_items ds=%s: %d rows (model %s, run %s) in %.1f s",
        config.ds,
        n,
        inputs.model_version,
        config.run_id,
        job.seconds(),
    )
    return 0


main = common.job_main("related_items", parse_args, _related, exits=((MissingInputError, 2),))


if __name__ == "__main__":
    sys.exit(main())
