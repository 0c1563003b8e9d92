"""Co-visitation in Spark: the ``features.covisit`` table, its reader, and users' recent items.

:func:`covisit_spark` is the twin of :func:`recsys.training.covisit.covisit_matrix` (same
order, weights, normalisation and top-``n`` truncation; agreement test in
``tests/recsys/training/test_covisit_spark.py``), over raw item ids instead of item indices.
Its cost is linear in the interactions: one shuffle of the events by user, at most ``window``
pairs per event (a sliding frame of the next ``window`` events in the user's time order, so a
user with thousands of events costs ``window`` times their events, never their square), a
partial then final aggregation by ``(item, next item)``, one by item for the row sums, and a
per-item top-``n`` window.

The features job writes it per ``(ds, split_id)`` (:func:`covisit_table_rows`); training,
evaluation and serving read it with :func:`load_covisit_matrix`, which brings at most
``n_items · top_n`` entries to the driver in bounded chunks. The daily DAG rebuilds it on
training days only; serving reads the newest day stored with its ranker's settings
(:func:`stored_day`). :func:`recent_items_spark` gives
each user's last events (the vote side of the score) without collecting anything, and
:func:`collect_recent_items` collects them for a given set of users only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark import StorageLevel
from pyspark.sql import Window
from pyspark.sql import functions as F

from recsys.features.split import table_slice, train_rows
from recsys.training.covisit import CovisitConfig, matrix_from_ids
from recsys.validation import check_int
from recsys.warehouse.tables import (
    FEATURES_COVISIT,
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_ITEM_FEATURES,
    Col,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: Column of :func:`recent_items_spark`: the user's last events, raw item ids, oldest first.
RECENT_ITEM_IDS: Final = "recent_item_ids"
#: Matrix entries collected per chunk by :func:`load_covisit_matrix`.
CHUNK_ROWS: Final = 5_000_000
_COUNT: Final = "_count"
_ROW_SUM: Final = "_row_sum"


def covisit_spark(events: DataFrame, config: CovisitConfig) -> DataFrame:
    """``item_id, next_item_id, weight (FLOAT), rank (INT)``: the co-visitation matrix of
    ``events`` (``user_id, item_id, event_ts``: each user's sequence, oldest first, ties by item
    id) as :func:`recsys.training.covisit.covisit_matrix` builds it, rows cut to their
    ``config.top_n`` heaviest entries (``rank`` 1 = heaviest, ties by the lower next item id).

    ``weight`` is ``Σ step_decay^(d-1) / (1 + row sum)`` with the row sum over the whole,
    untruncated row; values are ranked as the stored FLOAT, as the numpy twin ranks float32.
    """
    pairs = _following_pairs(events, config)
    counts = pairs.groupBy(Col.ITEM_ID, Col.NEXT_ITEM_ID).agg(F.sum(_COUNT).alias(_COUNT))
    row = Window.partitionBy(Col.ITEM_ID)
    # (1 / (1 + S)) * c in that order, as scipy's diags(norm) @ counts.
    norm = F.lit(1.0) / (F.lit(1.0) + F.sum(_COUNT).over(row))
    weighted = counts.select(
        Col.ITEM_ID,
        Col.NEXT_ITEM_ID,
        (norm * F.col(_COUNT)).cast("float").alias(Col.WEIGHT),
    )
    ranked = Window.partitionBy(Col.ITEM_ID).orderBy(
        F.col(Col.WEIGHT).desc(), F.col(Col.NEXT_ITEM_ID)
    )
    return (
        weighted.withColumn(Col.RANK, F.row_number().over(ranked))
        .where(F.col(Col.RANK) <= F.lit(config.top_n))
        .select(Col.ITEM_ID, Col.NEXT_ITEM_ID, Col.WEIGHT, F.col(Col.RANK).cast("int"))
    )


def _following_pairs(events: DataFrame, config: CovisitConfig) -> DataFrame:
    """``item_id, next_item_id, _count``: one row per event and each of the (at most
    ``config.window``) events after it in its user's sequence (by ``event_ts``, then
    ``item_id``), ``_count`` the step weight ``step_decay^(d-1)`` of distance ``d``.

    One sliding frame (the next ``window`` rows) collects the followers of each event, exploded
    with their distance. Not ``window`` separate ``lead`` columns: a user whose events overflow
    the window operator's in-memory buffer then makes every offset open its own reader per spill
    file, which exhausted a 4 GiB driver at 1M users. Not one ``collect_list`` per user either:
    with a million users per map task its partial aggregation falls back to sorting and builds
    every struct interpreted, minutes per task.
    """
    # The step weights as literals computed here, bit for bit those of the numpy twin.
    decays = F.array(*[F.lit(float(config.step_decay) ** d) for d in range(config.window)])
    order = Window.partitionBy(Col.USER_ID).orderBy(Col.EVENT_TS, Col.ITEM_ID)
    ahead = order.rowsBetween(1, config.window)
    return (
        events.select(Col.USER_ID, F.col(Col.ITEM_ID).cast("long").alias(Col.ITEM_ID), Col.EVENT_TS)
        .select(Col.ITEM_ID, F.collect_list(Col.ITEM_ID).over(ahead).alias("_next"))
        .select(Col.ITEM_ID, F.posexplode("_next").alias("_d", Col.NEXT_ITEM_ID))
        .select(
            Col.ITEM_ID,
            Col.NEXT_ITEM_ID,
            F.element_at(decays, F.col("_d") + 1).alias(_COUNT),
        )
    )


def train_events(split: DataFrame, items: DataFrame) -> DataFrame:
    """``user_id, item_id, event_ts`` of the train role of ``split`` (``interactions_split``
    rows) whose item is in ``items`` (an ``item_id`` frame: the catalogue, as offline sequences
    drop items without an index)."""
    return (
        train_rows(split)
        .join(items.select(Col.ITEM_ID), Col.ITEM_ID, "left_semi")
        .select(Col.USER_ID, Col.ITEM_ID, Col.EVENT_TS)
    )


def covisit_table_rows(split: DataFrame, items: DataFrame, config: CovisitConfig) -> DataFrame:
    """Rows of ``features.covisit`` without ``split_id`` and ``ds``: :func:`covisit_spark` of
    the train events (:func:`train_events`) and the settings it was built with."""
    return covisit_spark(train_events(split, items), config).select(
        "*",
        F.lit(config.window).cast("int").alias(Col.COVISIT_WINDOW),
        F.lit(float(config.step_decay)).cast("double").alias(Col.STEP_DECAY),
        F.lit(config.top_n).cast("int").alias(Col.TOP_N),
    )


def stored_day(spark: SparkSession, ds: date, split_id: str, config: CovisitConfig) -> date | None:
    """The newest day on or before ``ds`` whose ``features.covisit`` rows of ``split_id`` were
    built with ``config``'s window and step decay and at least its ``top_n``; None without one.

    The daily DAG rebuilds the matrix on training days only (its cost grows with the
    interactions times the window), so a scoring day reads the last training day's matrix: the
    one the champion ranker was trained with, or a newer one built with the same settings.
    """
    row = (
        spark.table(FEATURES_COVISIT.qualified_name)
        .where(
            (F.col(Col.SPLIT_ID) == F.lit(split_id))
            & (F.col(Col.DS) <= F.lit(ds))
            & (F.col(Col.COVISIT_WINDOW) == F.lit(config.window))
            & (F.col(Col.STEP_DECAY) == F.lit(float(config.step_decay)))
            & (F.col(Col.TOP_N) >= F.lit(config.top_n))
        )
        .agg(F.max(Col.DS).alias(Col.DS))
        .first()
    )
    return None if row is None else row[Col.DS]


def stored_settings(spark: SparkSession, ds: date, split_id: str) -> tuple[int, float, int] | None:
    """``(covisit_window, step_decay, top_n)`` of ``features.covisit`` for ``(ds, split_id)``,
    None without rows."""
    row = (
        table_slice(spark, FEATURES_COVISIT, ds, split_id)
        .select(Col.COVISIT_WINDOW, Col.STEP_DECAY, Col.TOP_N)
        .limit(1)
        .first()
    )
    if row is None:
        return None
    return int(row[0]), float(row[1]), int(row[2])


def covisit_rows(spark: SparkSession, ds: date, split_id: str, config: CovisitConfig) -> DataFrame:
    """``item_id, next_item_id, weight, rank`` of ``config``'s matrix for ``(ds, split_id)``:
    the stored ``features.covisit`` rows with ``rank <= config.top_n``.

    The stored table must have been built with ``config.window`` and ``config.step_decay`` and a
    ``top_n`` of at least ``config.top_n`` (a smaller cut of a larger one is exact). Without
    stored rows (a feature run from before the table, or train events that never follow each
    other) the rows are built here from ``features.interactions_split`` by the same
    :func:`covisit_table_rows`, with a warning.

    Raises:
        ValueError: the stored table was built with other settings.
    """
    stored = stored_settings(spark, ds, split_id)
    if stored is None:
        log.warning(
            "%s: no rows for ds=%s split_id=%s; building it from %s (run jobs.features to "
            "store it)",
            FEATURES_COVISIT,
            ds,
            split_id,
            FEATURES_INTERACTIONS_SPLIT,
        )
        rows = covisit_table_rows(
            table_slice(spark, FEATURES_INTERACTIONS_SPLIT, ds, split_id),
            table_slice(spark, FEATURES_ITEM_FEATURES, ds, split_id),
            config,
        )
    else:
        window, step_decay, top_n = stored
        if (window, step_decay) != (config.window, float(config.step_decay)) or (
            top_n < config.top_n
        ):
            raise ValueError(
                f"config: {FEATURES_COVISIT} of ds={ds} split_id={split_id!r} was built with "
                f"window={window}, step_decay={step_decay}, top_n={top_n}; asked for "
                f"window={config.window}, step_decay={config.step_decay}, "
                f"top_n={config.top_n} (rerun jobs.features with those settings)"
            )
        rows = table_slice(spark, FEATURES_COVISIT, ds, split_id)
    return rows.where(F.col(Col.RANK) <= F.lit(config.top_n)).select(
        Col.ITEM_ID, Col.NEXT_ITEM_ID, Col.WEIGHT, Col.RANK
    )


def load_covisit_matrix(
    spark: SparkSession,
    ds: date,
    split_id: str,
    item_ids: np.ndarray[Any, Any],
    config: CovisitConfig,
    chunk_rows: int = CHUNK_ROWS,
) -> sp.csr_matrix:
    """The ``(N + 1, N + 1)`` float32 co-visitation matrix of ``(ds, split_id)`` over the item
    indices of ``item_ids`` (``(N,)`` ascending raw ids; index ``i + 1`` is ``item_ids[i]``):
    :func:`covisit_rows` collected and mapped by
    :func:`recsys.training.covisit.matrix_from_ids`.

    The driver holds at most ``N · top_n`` entries (12 bytes each in the CSR), bounded by the
    catalogue, never by users or interactions; they come back in chunks of about
    ``chunk_rows`` entries (ranges of rows of equal ``top_n`` width), so no single collect
    approaches ``spark.driver.maxResultSize``.
    """
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows: must be an int >= 1, got {chunk_rows!r}")
    ids = np.asarray(item_ids, dtype=np.int64)
    rows = covisit_rows(spark, ds, split_id, config)
    step = max(1, chunk_rows // config.top_n)
    starts = range(0, len(ids), step)
    if len(starts) > 1:  # read (or, without stored rows, build) once for every chunk
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    parts: list[pd.DataFrame] = []
    try:
        for start in starts:
            lo, hi = int(ids[start]), int(ids[min(start + step, len(ids)) - 1])
            chunk = rows.where(F.col(Col.ITEM_ID).between(lo, hi)).select(
                Col.ITEM_ID, Col.NEXT_ITEM_ID, Col.WEIGHT
            )
            parts.append(chunk.toArrow().to_pandas())
    finally:
        if len(starts) > 1:
            rows.unpersist()
    if not parts:
        return matrix_from_ids(np.zeros(0), np.zeros(0), np.zeros(0), ids)
    frame = pd.concat(parts, ignore_index=True)
    return matrix_from_ids(
        frame[Col.ITEM_ID].to_numpy(np.int64),
        frame[Col.NEXT_ITEM_ID].to_numpy(np.int64),
        frame[Col.WEIGHT].to_numpy(np.float32),
        ids,
    )


def recent_items_spark(
    spark: SparkSession,
    ds: date,
    split_id: str,
    roles: Sequence[str],
    users: DataFrame | None,
    last: int,
) -> DataFrame:
    """``user_id, recent_item_ids``: each user's last ``last`` events of ``roles`` as raw item
    ids, oldest first, in the order of the offline sequences (event time, ties by item id;
    items outside the split's catalogue dropped). ``users``: a ``user_id`` frame to keep (a
    sample, the evaluated users), None for every user. Nothing is collected."""
    check_int("last", last, 1)
    if not roles:
        raise ValueError(f"roles: expected at least one role, got {roles!r}")
    events = table_slice(spark, FEATURES_INTERACTIONS_SPLIT, ds, split_id).where(
        F.col(Col.ROLE).isin(list(roles))
    )
    if users is not None:
        events = events.join(users.select(Col.USER_ID), Col.USER_ID, "left_semi")
    catalogue = table_slice(spark, FEATURES_ITEM_FEATURES, ds, split_id).select(Col.ITEM_ID)
    events = events.join(catalogue, Col.ITEM_ID, "left_semi")
    ordered = F.sort_array(
        F.collect_list(F.struct(Col.EVENT_TS, F.col(Col.ITEM_ID).cast("long").alias("i")))
    )
    seq = F.transform(ordered, lambda s: s["i"])
    # The last `last` events (slice with a start below 1 is refused: clamp it).
    tail = F.slice(seq, F.greatest(F.size(seq) - F.lit(last) + F.lit(1), F.lit(1)), F.lit(last))
    return events.groupBy(Col.USER_ID).agg(tail.alias(RECENT_ITEM_IDS))


def collect_recent_items(
    spark: SparkSession,
    ds: date,
    split_id: str,
    roles: Sequence[str],
    user_ids: Sequence[int] | np.ndarray[Any, Any],
    last: int,
) -> dict[int, list[int]]:
    """``{user_id: last item ids, oldest first}`` of :func:`recent_items_spark` for the users
    ``user_ids`` only (users without events in ``roles`` are absent): at most
    ``len(user_ids) · last`` ids reach the driver."""
    ids = pd.DataFrame({Col.USER_ID: np.unique(np.asarray(user_ids, dtype=np.int64))})
    if ids.empty:
        return {}
    frame = spark.createDataFrame(ids, f"{Col.USER_ID} BIGINT")
    got = recent_items_spark(spark, ds, split_id, roles, frame, last).toArrow().to_pydict()
    return {
        int(u): [int(i) for i in items]
        for u, items in zip(got[Col.USER_ID], got[RECENT_ITEM_IDS], strict=True)
    }
