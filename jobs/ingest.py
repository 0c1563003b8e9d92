"""Ingest one MovieLens delivery into the bronze Delta tables, quarantining bad lines.

Usage (also through ``spark-submit jobs/ingest.py ...``)::

    python -m jobs.ingest --input data/ml-latest-small --ds 2026-11-28

Reads ratings, movies, tags and users files of the ml-latest-small, ml-100k or ml-1m layout
(detected, or ``--layout``), validates every line, writes good rows to ``bronze.interactions``,
``bronze.items`` and ``bronze.users`` and bad ones, with their reason, to ``bronze.quarantine``.
Each table gets one Delta commit that replaces the delivery ``(source, ds)``: a rerun never
duplicates. If more than ``--max-bad-fraction`` of any file's lines is bad, the bronze tables are
left untouched, the quarantine and ``ops.ingest_runs`` record why, and the job exits 1.

The five commits are atomic per table only, so the delivery is marked complete by one more
commit, LAST: an ``ops.completed_runs`` row ``(pipeline='ingest', ds, source)`` with the Delta
versions written (:mod:`recsys.warehouse.completion`). A run retracts the delivery's earlier
record before its first commit; killed anywhere in between (or failed), the delivery stays
incomplete and consumers keep reading the previous completed one until a rerun finishes.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pyspark import StorageLevel
from pyspark.sql import functions as F

from jobs import common
from recsys.ingest.layouts import FileSpec, IngestInputError, detect_layout, locate_files
from recsys.ingest.pipeline import (
    Classified,
    Delivery,
    classify,
    interactions_rows,
    items_rows,
    line_counts,
    quarantine_rows,
    users_rows,
)
from recsys.settings import FileKind, IngestConfig, Layout
from recsys.warehouse.completion import Pipeline, record_completion, retract_completion
from recsys.warehouse.io import append, replace_delivery
from recsys.warehouse.tables import (
    BRONZE_INTERACTIONS,
    BRONZE_ITEMS,
    BRONZE_QUARANTINE,
    BRONZE_USERS,
    OPS_INGEST_RUNS,
    Col,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("jobs.ingest")
#: What one delivery writes, in commit order; the completion record (``pipeline='ingest'``) comes
#: after all of them.
INGEST_TABLES: Final = (
    BRONZE_ITEMS,
    BRONZE_INTERACTIONS,
    BRONZE_USERS,
    BRONZE_QUARANTINE,
    OPS_INGEST_RUNS,
)
Lines = dict[FileKind, tuple[FileSpec, "DataFrame"]]


class TooManyBadRowsError(RuntimeError):
    """More than the allowed fraction of a file's lines failed validation."""


@dataclass(frozen=True, slots=True)
class FileCount:
    """Lines read and quarantined for one input file kind."""

    kind: str
    n_read: int
    n_quarantined: int

    @property
    def n_good(self) -> int:
        return self.n_read - self.n_quarantined

    @property
    def bad_fraction(self) -> float:
        return self.n_quarantined / self.n_read if self.n_read else 0.0


def parse_args(argv: Sequence[str] | None) -> IngestConfig:
    """Command line -> validated :class:`IngestConfig` (the edge where input is checked)."""
    parser = common.job_parser("jobs.ingest", __doc__)
    parser.add_argument("--input", required=True, type=Path, help="MovieLens directory")
    common.add_ds(parser, help="delivery date YYYY-MM-DD")
    parser.add_argument("--layout", choices=[x.value for x in Layout], help="default: detected")
    common.add_source(parser, "delivery name (default: the layout name)")
    common.add_run_id(parser)
    parser.add_argument(
        "--max-bad-fraction",
        type=float,
        default=0.01,
        help="fail when a file has more bad lines than this (0-1, default 0.01)",
    )
    parser.add_argument(
        "--positive-threshold",
        type=float,
        default=4.0,
        help="ratings >= this are implicit positives (default 4.0)",
    )
    args = parser.parse_args(argv)
    layout = Layout(args.layout) if args.layout else None
    return IngestConfig(
        input_path=args.input,
        ds=args.ds,
        source=args.source or (layout.value if layout else detect_layout(args.input).value),
        layout=layout,
        run_id=args.run_id,
        max_bad_fraction=args.max_bad_fraction,
        positive_threshold=args.positive_threshold,
    )


def extract(spark: SparkSession, config: IngestConfig) -> Lines:
    """Raw lines of every file of the delivery, by kind."""
    layout = config.layout or detect_layout(config.input_path)
    found = locate_files(config.input_path, layout)
    return {
        kind: (
            spec,
            spark.read.text(str(path)).select(
                F.col("_metadata.file_path").alias(Col.SOURCE_FILE), F.col("value")
            ),
        )
        for kind, (spec, path) in found.items()
    }


def count_lines(classified: Classified) -> list[FileCount]:
    rows = line_counts(classified).collect()
    return [FileCount(r[Col.FILE_KIND], r[Col.N_READ], r[Col.N_QUARANTINED]) for r in rows]


def run_rows(
    spark: SparkSession,
    counts: list[FileCount],
    delivery: Delivery,
    status: str,
    message: str | None,
    started: datetime,
) -> DataFrame:
    finished = datetime.now(UTC)
    rows = [
        (
            delivery.run_id,
            delivery.source,
            c.kind,
            c.n_read,
            c.n_good,
            c.n_quarantined,
            c.bad_fraction,
            status,
            message,
            started,
            finished,
            delivery.ds,
        )
        for c in counts
    ]
    return spark.createDataFrame(rows, spark.table(OPS_INGEST_RUNS.qualified_name).schema)


def load(spark: SparkSession, config: IngestConfig, lines: Lines) -> list[FileCount]:
    """Classify, check the bad fraction, and write the delivery. Returns the per-file counts."""
    started = datetime.now(UTC)
    delivery = Delivery(
        config.source, config.ds, config.run_id or uuid.uuid4().hex, config.positive_threshold
    )
    classified = classify(lines, config.ds)
    # Every output reads the classified lines; keep them instead of re-parsing the files.
    classified = Classified(
        {k: df.persist(StorageLevel.MEMORY_AND_DISK) for k, df in classified.files.items()}
    )
    try:
        counts = count_lines(classified)
        for c in counts:
            log.info(
                "%s: read %d, good %d, quarantined %d (%.3f%%)",
                c.kind,
                c.n_read,
                c.n_good,
                c.n_quarantined,
                100 * c.bad_fraction,
            )
        empty = [c.kind for c in counts if c.n_read == 0 and c.kind in ("ratings", "movies")]
        if empty:
            raise IngestInputError(
                "input_path: no data lines in the "
                + ", ".join(empty)
                + " file(s) of "
                + str(config.input_path)
            )
        worst = max(counts, key=lambda c: c.bad_fraction)
        quarantine = quarantine_rows(classified, delivery)
        # Before the first commit: while this run writes (or after it fails) the delivery is not
        # complete, and consumers keep reading the previous completed delivery.
        retract_completion(spark, Pipeline.INGEST, config.ds, config.source)
        if worst.bad_fraction > config.max_bad_fraction:
            message = (
                f"{worst.kind}: {worst.n_quarantined} of {worst.n_read} lines bad "
                f"({worst.bad_fraction:.2%} > --max-bad-fraction "
                f"{config.max_bad_fraction:.2%}); bronze tables left untouched; see "
                f"{BRONZE_QUARANTINE} where run_id = '{delivery.run_id}'"
            )
            replace_delivery(quarantine, BRONZE_QUARANTINE, config.ds, config.source)
            append(run_rows(spark, counts, delivery, "failed", message, started), OPS_INGEST_RUNS)
            raise TooManyBadRowsError(message)
        replace_delivery(items_rows(classified, delivery), BRONZE_ITEMS, config.ds, config.source)
        replace_delivery(
            interactions_rows(classified, delivery), BRONZE_INTERACTIONS, config.ds, config.source
        )
        replace_delivery(users_rows(classified, delivery), BRONZE_USERS, config.ds, config.source)
        replace_delivery(quarantine, BRONZE_QUARANTINE, config.ds, config.source)
        append(run_rows(spark, counts, delivery, "ok", None, started), OPS_INGEST_RUNS)
        # Last: the delivery is complete only once all five commits above are in.
        record_completion(
            spark, Pipeline.INGEST, config.ds, delivery.run_id, INGEST_TABLES, config.source
        )
        return counts
    finally:
        for df in classified.files.values():
            df.unpersist()


def _checked_args(argv: Sequence[str] | None) -> IngestConfig:
    """:func:`parse_args`, then the delivery's files are found before Spark starts
    (:class:`IngestInputError`, a ValueError, when missing)."""
    config = parse_args(argv)
    locate_files(config.input_path, config.layout or detect_layout(config.input_path))
    return config


def _ingest(job: common.Job[IngestConfig]) -> int:
    config = job.config
    counts = load(job.spark, config, extract(job.spark, config))
    total = sum(c.n_quarantined for c in counts)
    log.info(
        "ingested %s (%s) for ds=%s: %d lines quarantined",
        config.input_path,
        config.source,
        config.ds,
        total,
    )
    return 0


# after the arguments: bad data (too many bad lines, unreadable files) exits 1
main = common.job_main(
    "ingest", _checked_args, _ingest, exits=(((TooManyBadRowsError, IngestInputError), 1),)
)


if __name__ == "__main__":
    sys.exit(main())
