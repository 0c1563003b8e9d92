"""Generate a seeded synthetic delivery into the bronze tables and/or as MovieLens CSV files.

Usage (also through ``spark-submit jobs/generate_synthetic.py ...``)::

    python -m jobs.generate_synthetic --users 1000000 --items 100000 --interactions 50000000 \\
        --ds 2026-11-28 [--csv-out DIR [--csv-only]]

Builds items, interactions and users with :mod:`recsys.synthetic` and replaces the delivery
``(source, ds)`` (source ``synthetic`` by default) in ``bronze.items``, ``bronze.interactions``
and ``bronze.users``, one Delta commit each: a rerun replaces, never duplicates. ``--interactions``
is the number of draws; repeated (user, item) draws keep the latest, so the delivered count is
lower (about 90% of the draws at 1M x 100k x 50M, 83% at 100k x 10k x 5M) and is logged.

``--csv-out DIR`` also writes ``ratings.csv`` and ``movies.csv`` in the ml-latest-small layout,
which ``jobs.ingest`` reads (``--csv-only`` skips the warehouse): see :func:`write_single_csv`.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Final

from pyspark.sql import functions as F

from jobs import common
from recsys.ingest.layouts import LAYOUT_FILES
from recsys.settings import FileKind, Layout
from recsys.synthetic import (
    SyntheticConfig,
    synthetic_interactions,
    synthetic_items,
    synthetic_users,
)
from recsys.warehouse.io import replace_delivery
from recsys.warehouse.tables import BRONZE_INTERACTIONS, BRONZE_ITEMS, BRONZE_USERS, Col, TableRef

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("jobs.generate_synthetic")

#: Interactions per Spark partition when ``--partitions`` is not given.
ROWS_PER_PARTITION: Final = 1_000_000
RATINGS_CSV: Final = "ratings.csv"
MOVIES_CSV: Final = "movies.csv"

_COLUMNS: Final[dict[TableRef, tuple[str, ...]]] = {
    BRONZE_ITEMS: (Col.ITEM_ID, Col.TITLE, Col.YEAR, Col.GENRES, Col.TAG_TEXT),
    BRONZE_INTERACTIONS: (Col.USER_ID, Col.ITEM_ID, Col.RATING, Col.IS_POSITIVE, Col.EVENT_TS),
    BRONZE_USERS: (
        Col.USER_ID,
        Col.FIRST_SEEN_TS,
        Col.LAST_SEEN_TS,
        Col.N_INTERACTIONS,
        Col.GENDER,
        Col.AGE,
        Col.OCCUPATION,
        Col.ZIP_CODE,
    ),
}


@dataclass(frozen=True, slots=True)
class GenerateConfig:
    """What one run writes.

    Attributes:
        synthetic: Size, shape and seed of the data.
        ds: Delivery date; every event is before it (``synthetic.end`` <= ds 00:00 UTC).
        source: Delivery name, ``[a-z0-9][a-z0-9_.-]*``.
        run_id: Id stamped on every row; a fresh UUID (hex) when None.
        csv_out: Directory for ml-latest-small ``ratings.csv`` and ``movies.csv``; None: none.
        warehouse: Write the bronze tables (False only with ``csv_out``).
    """

    synthetic: SyntheticConfig
    ds: date
    source: str = "synthetic"
    run_id: str | None = None
    csv_out: Path | None = None
    warehouse: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.ds, date):
            raise ValueError(f"ds: expected a datetime.date, got {self.ds!r}")
        # a lower-case name, as recsys.settings.IngestConfig's source
        if not common.NAME_PATTERN.fullmatch(self.source) or self.source != self.source.lower():
            raise ValueError(f"source: expected [a-z0-9][a-z0-9_.-]{{0,63}}, got {self.source!r}")
        common.check_run_id(self.run_id)
        if self.synthetic.end > midnight(self.ds):
            raise ValueError(
                f"end: events must precede the delivery date {self.ds}, "
                f"got end {self.synthetic.end.isoformat()}"
            )
        if not self.warehouse and self.csv_out is None:
            raise ValueError("warehouse: False writes nothing unless csv_out is given")


@dataclass(frozen=True, slots=True)
class Generated:
    """Rows delivered by one run (interactions: after removing repeated pairs)."""

    run_id: str
    n_items: int
    n_users: int
    n_interactions: int


def midnight(ds: date) -> datetime:
    """Start of ``ds`` in UTC."""
    return datetime.combine(ds, time(), tzinfo=UTC)


def _moment(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_args(argv: Sequence[str] | None) -> GenerateConfig:
    """Command line -> validated :class:`GenerateConfig`.

    Raises:
        ValueError: a value is out of range, naming the argument.
    """
    parser = common.job_parser("jobs.generate_synthetic", __doc__)
    common.add_fields(
        parser,
        SyntheticConfig,
        {
            "n_users": "number of users",
            "n_items": "number of items",
            "n_interactions": "interaction draws before repeated pairs are removed",
            "n_genres": "genres used (2-19)",
            "n_clusters": "taste clusters",
            "popularity_exponent": "Zipf exponent of item popularity within a genre (>= 0)",
            "taste_strength": "probability a draw follows the user's cluster genres (0-1)",
            "user_activity_exponent": "power-law exponent of user activity over user ranks (>= 0)",
        },
        flags={
            "n_users": "--users",
            "n_items": "--items",
            "n_interactions": "--interactions",
            "n_genres": "--genres",
            "n_clusters": "--clusters",
        },
    )
    parser.add_argument("--start", type=_moment, help="earliest event, ISO (default: end - 10y)")
    parser.add_argument(
        "--end",
        type=_moment,
        help="events are before this, ISO, UTC if no zone (default: ds 00:00)",
    )
    common.add_fields(parser, SyntheticConfig, {"seed": "random seed (>= 0)"})
    parser.add_argument(
        "--partitions",
        type=int,
        help=f"Spark partitions (default: one per {ROWS_PER_PARTITION:,} draws)",
    )
    common.add_ds(parser, help="delivery date YYYY-MM-DD")
    common.add_source(parser, "delivery name", default="synthetic")
    common.add_run_id(parser)
    parser.add_argument("--csv-out", type=Path, help="also write ml-latest-small CSVs here")
    parser.add_argument("--csv-only", action="store_true", help="write only the CSVs")
    args = parser.parse_args(argv)
    end = args.end or midnight(args.ds)
    start = args.start or end - timedelta(days=3652)
    partitions = args.partitions or max(2, math.ceil(args.n_interactions / ROWS_PER_PARTITION))
    synthetic = common.config_from(
        args, SyntheticConfig, start=start, end=end, partitions=partitions
    )
    return common.config_from(
        args,
        GenerateConfig,
        synthetic=synthetic,
        csv_out=args.csv_out.resolve() if args.csv_out else None,
        warehouse=not args.csv_only,
    )


def _bronze(df: DataFrame, table: TableRef, job: GenerateConfig, run_id: str) -> DataFrame:
    return df.select(
        *_COLUMNS[table],
        F.lit(job.source).alias(Col.SOURCE),
        F.lit(run_id).alias(Col.RUN_ID),
        F.lit(job.ds).alias(Col.DS),
    )


def _delivered(spark: SparkSession, table: TableRef, job: GenerateConfig) -> DataFrame:
    rows = spark.table(table.qualified_name)
    return rows.where((F.col(Col.DS) == F.lit(job.ds)) & (F.col(Col.SOURCE) == F.lit(job.source)))


def _header(kind: FileKind) -> list[str]:
    spec = next(s for s in LAYOUT_FILES[Layout.ML_LATEST_SMALL] if s.kind == kind)
    if spec.header is None:
        raise ValueError(f"kind: the ml-latest-small {kind} file has no header")
    return spec.header.split(",")


def movielens_ratings(interactions: DataFrame) -> DataFrame:
    """Interactions as ml-latest-small ``ratings.csv`` columns: userId, movieId, rating, timestamp
    (epoch seconds)."""
    user, item, rating, ts = _header(FileKind.RATINGS)
    return interactions.select(
        F.col(Col.USER_ID).alias(user),
        F.col(Col.ITEM_ID).alias(item),
        F.col(Col.RATING).alias(rating),
        F.unix_seconds(F.col(Col.EVENT_TS)).alias(ts),
    )


def movielens_movies(items: DataFrame) -> DataFrame:
    """Items as ml-latest-small ``movies.csv`` columns: movieId, "Title (1999)", "A|B" genres."""
    item, title, genres = _header(FileKind.MOVIES)
    return items.select(
        F.col(Col.ITEM_ID).alias(item),
        F.concat(F.col(Col.TITLE), F.lit(" ("), F.col(Col.YEAR).cast("string"), F.lit(")")).alias(
            title
        ),
        F.array_join(F.col(Col.GENRES), "|").alias(genres),
    )


def write_single_csv(df: DataFrame, path: Path) -> None:
    """Write ``df`` as ONE RFC 4180 CSV file at ``path`` (local file system), header first.

    Spark writes a directory of part files, in parallel and without a header, next to ``path``;
    the header line (the column names) and the parts, in partition order, are then concatenated
    into ``path`` (through a temporary file and a rename, so ``path`` is never half written) and
    the directory is removed. Fields holding a comma or a quote are quoted, quotes doubled.
    """
    parts_dir = path.with_name("." + path.name + "." + uuid.uuid4().hex)
    partial = path.with_name(path.name + ".partial")
    try:
        df.write.options(
            header=False,
            quote='"',
            escape='"',
            escapeQuotes=True,
            quoteAll=False,
            lineSep="\n",
            encoding="UTF-8",
            ignoreLeadingWhiteSpace=False,
            ignoreTrailingWhiteSpace=False,
        ).csv(str(parts_dir))
        with partial.open("wb") as out:
            out.write((",".join(df.columns) + "\n").encode("utf-8"))
            for part in sorted(parts_dir.glob("part-*")):
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        os.replace(partial, path)
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)
        partial.unlink(missing_ok=True)


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 22), b""))


def generate(spark: SparkSession, job: GenerateConfig) -> Generated:
    """Build the synthetic delivery and write it; returns the delivered row counts."""
    config = job.synthetic
    run_id = job.run_id or uuid.uuid4().hex
    items = synthetic_items(spark, config)
    interactions = synthetic_interactions(spark, config)
    started = perf_counter()
    if job.warehouse:
        for table, rows in ((BRONZE_ITEMS, items), (BRONZE_INTERACTIONS, interactions)):
            replace_delivery(_bronze(rows, table, job, run_id), table, job.ds, job.source)
            log.info("wrote %s (%.1f s)", table, perf_counter() - started)
        # Later steps read the written rows back rather than generating them again.
        interactions = _delivered(spark, BRONZE_INTERACTIONS, job)
        items = _delivered(spark, BRONZE_ITEMS, job)
        users = synthetic_users(spark, config, interactions)
        replace_delivery(
            _bronze(users, BRONZE_USERS, job, run_id), BRONZE_USERS, job.ds, job.source
        )
        log.info("wrote %s (%.1f s)", BRONZE_USERS, perf_counter() - started)
    if job.csv_out is not None:
        job.csv_out.mkdir(parents=True, exist_ok=True)
        write_single_csv(movielens_movies(items), job.csv_out / MOVIES_CSV)
        write_single_csv(movielens_ratings(interactions), job.csv_out / RATINGS_CSV)
        log.info(
            "wrote %s and %s in %s (%.1f s)",
            MOVIES_CSV,
            RATINGS_CSV,
            job.csv_out,
            perf_counter() - started,
        )
    if job.csv_out is None or job.warehouse:
        n_interactions = interactions.count()
    else:
        n_interactions = _count_lines(job.csv_out / RATINGS_CSV) - 1  # minus the header
    return Generated(run_id, config.n_items, config.n_users, n_interactions)


def _generate(job: common.Job[GenerateConfig]) -> int:
    config = job.config
    out = generate(job.spark, config)
    c = config.synthetic
    log.info(
        "synthetic delivery (%s, %s) run %s: %d items, %d users, %d interactions from %d "
        "draws (%.1f%%; repeated pairs keep the latest)",
        config.source,
        config.ds,
        out.run_id,
        out.n_items,
        out.n_users,
        out.n_interactions,
        c.n_interactions,
        100 * out.n_interactions / c.n_interactions,
    )
    return 0


main = common.job_main("generate_synthetic", parse_args, _generate)


if __name__ == "__main__":
    sys.exit(main())
