"""Publish trending items (overall and per genre) of one ds to ``serve.trending``.

Usage (also through ``spark-submit jobs/trending.py ...``)::

    python -m jobs.trending --ds 2026-11-28 [--source ml-latest-small] [--source-ds DATE]
        [--as-of TS] [--recent-days 7] [--baseline-days 28] [--half-life-days R/2]
        [--min-support 5] [--prior 5] [--top-k 100] [--min-items 10] [--max-doublings 5]
        [--run-id ID]

Reads the interactions and items of one bronze delivery (default: the latest of ``--source`` on
or before ``--ds``) and ranks items by the growth of their time-decayed interaction counts in a
recent window against the baseline window before it (formula and units:
``recsys.surfaces.trending_formula``). Both windows end at ``--as-of``, by default the latest
event at or before the end of ``--ds`` (UTC): MovieLens data ends years ago, and windows ending
at the wall clock would be empty. When fewer than ``--min-items`` items reach the support, both
windows (and the half-life) are doubled, at most ``--max-doublings`` times, and the windows used
are logged: ml-latest-small's last weeks hold a handful of users, so its 7/28-day defaults widen
to 56/224 days (``--min-items 0`` keeps the windows as given).

One Delta commit replaces day ``ds`` of ``serve.trending``; a rerun never duplicates. Exits 2 on
bad arguments or missing input.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from jobs import common
from recsys.surfaces.publish import publish_day
from recsys.surfaces.sources import MissingInputError, delivery, resolve_delivery
from recsys.surfaces.trending import default_as_of, trending, widen_windows
from recsys.surfaces.trending_formula import TrendingConfig, as_utc
from recsys.warehouse.tables import SERVE_TRENDING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("jobs.trending")

DEFAULT_SOURCE = "ml-latest-small"


@dataclass(frozen=True, slots=True)
class TrendingJobConfig:
    """One validated run.

    Attributes:
        ds: Publication day (partition of ``serve.trending``).
        source: Bronze delivery name.
        source_ds: Delivery date; None = latest of ``source`` on or before ``ds``.
        as_of: End of the windows (UTC); None = latest event before the end of ``ds``.
        trending: Score parameters (the narrowest windows tried).
        min_items: Items the overall list should hold before windows stop widening, >= 0.
        max_doublings: Most window doublings, >= 0.
        run_id: Id stamped on every row.
    """

    ds: date
    source: str = DEFAULT_SOURCE
    source_ds: date | None = None
    as_of: datetime | None = None
    trending: TrendingConfig = field(default_factory=TrendingConfig)
    min_items: int = 10
    max_doublings: int = 5
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if not isinstance(self.ds, date):
            raise TypeError(f"ds: expected a datetime.date, got {self.ds!r}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError(f"source: expected a delivery name, got {self.source!r}")
        for name in ("min_items", "max_doublings"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: must be an int >= 0, got {value!r}")
        if not isinstance(self.run_id, str) or not self.run_id.strip():
            raise ValueError(f"run_id: expected a non-empty string, got {self.run_id!r}")


def parse_args(argv: Sequence[str] | None) -> TrendingJobConfig:
    """Command line -> validated :class:`TrendingJobConfig`.

    Raises:
        ValueError: an argument is out of range, naming it and its value.
    """
    parser = common.job_parser("jobs.trending", __doc__)
    common.add_ds(parser, help="publication day YYYY-MM-DD")
    common.add_source(parser, "bronze delivery name", default=DEFAULT_SOURCE, delivery_ds=True)
    parser.add_argument(
        "--as-of",
        type=lambda s: as_utc(datetime.fromisoformat(s)),
        help="end of the windows, ISO 8601, naive = UTC (default: latest event <= end of ds)",
    )
    common.add_fields(parser, TrendingConfig, {"recent_days": None, "baseline_days": None})
    parser.add_argument("--half-life-days", type=float, help="default: recent-days / 2")
    common.add_fields(
        parser,
        TrendingConfig,
        {
            "min_support": "distinct users an item needs in the recent window",
            "prior": "pseudo-events",
            "top_k": "items per list",
        },
    )
    common.add_fields(
        parser,
        TrendingJobConfig,
        {
            "min_items": "widen the windows until the overall list has this many items (0: never)",
            "max_doublings": "most window doublings",
        },
    )
    common.add_run_id(parser)
    args = parser.parse_args(argv)
    # argparse gives ints and floats, so the config's TypeErrors cannot happen here
    return common.config_from(
        args,
        TrendingJobConfig,
        trending=common.config_from(args, TrendingConfig),
        run_id=common.run_id_or_new(args.run_id),
    )


def extract(
    spark: SparkSession, config: TrendingJobConfig
) -> tuple[DataFrame, DataFrame, datetime]:
    """Interactions and items of the delivery, and the as-of instant.

    Raises:
        MissingInputError: no delivery, or no interaction before the end of ``ds``.
    """
    source_ds = resolve_delivery(spark, config.source, config.ds, config.source_ds)
    interactions, items = delivery(spark, config.source, source_ds)
    as_of = config.as_of or default_as_of(interactions, config.ds)
    if as_of is None:
        raise MissingInputError(
            f"ds: no interaction of {config.source!r} (delivery {source_ds}) before the end of "
            f"{config.ds.isoformat()}"
        )
    log.info("reading %s ds=%s; windows end at %s", config.source, source_ds, as_of.isoformat())
    return interactions, items, as_of


def windows(interactions: DataFrame, as_of: datetime, config: TrendingJobConfig) -> TrendingConfig:
    """The score parameters to use: the configured ones, widened for sparse data."""
    chosen = widen_windows(
        interactions, as_of, config.trending, config.min_items, config.max_doublings
    )
    log.info(
        "windows: recent %.4g days, baseline %.4g days, half-life %.4g days%s",
        chosen.recent_days,
        chosen.baseline_days,
        chosen.half_life,
        "" if chosen == config.trending else " (widened: sparse data)",
    )
    return chosen


def transform(
    interactions: DataFrame, items: DataFrame, as_of: datetime, scoring: TrendingConfig
) -> DataFrame:
    """The trending lists (``recsys.surfaces.trending.trending``)."""
    return trending(interactions, items, as_of, scoring)


def load(lists: DataFrame, config: TrendingJobConfig) -> int:
    """Replace day ``ds`` of ``serve.trending`` in one commit; returns the rows written."""
    return publish_day(lists, SERVE_TRENDING, config.ds, config.run_id)


def _trending(job: common.Job[TrendingJobConfig]) -> int:
    config = job.config
    interactions, items, as_of = extract(job.spark, config)
    scoring = windows(interactions, as_of, config)
    n = load(transform(interactions, items, as_of, scoring), config)
    log.info(
        "serve.trending ds=%s: %d rows (as of %s, run %s) in %.1f s",
        config.ds,
        n,
        as_of.isoformat(),
        config.run_id,
        job.seconds(),
    )
    return 0


main = common.job_main("trending", parse_args, _trending, exits=((MissingInputError, 2),))


if __name__ == "__main__":
    sys.exit(main())
