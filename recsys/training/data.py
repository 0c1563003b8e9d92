"""Training inputs: feature tables of one (ds, split_id) in memory, and petastorm row streams.

Small per-entity tables (items, users) are read once into dense tensors indexed by
``item_index`` (1..n_items, 0 = padding) and by a user row; the per-example streams (training
pairs, sequences, ranker examples) come from Spark through petastorm's converter
(``make_spark_converter`` -> ``make_torch_dataloader``), cached under
``<warehouse_root>/_petastorm_cache`` and deleted after use.

Epoch order (:class:`EpochBatches`): a stream of at most ``max_rows_in_memory`` rows is read
through petastorm once and kept as tensors; every epoch then draws its own permutation from
``(seed, epoch)``, so epochs differ from each other and a rerun with the same seed repeats them
exactly. Optionally, rows are grouped by length inside windows of a few batches and each batch is
cut to its longest row (SASRec: most windows are mostly padding). A larger stream is re-read
every epoch with petastorm's seeded row and row-group shuffling (one worker, seed
``seed + epoch``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
import torch
from pyspark.sql import Window
from pyspark.sql import functions as F

from recsys.features.split import Role
from recsys.features.split import table_slice as table_slice  # re-exported: callers read it here
from recsys.warehouse.tables import (
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_ITEM_FEATURES,
    FEATURES_RANKER_EXAMPLES,
    FEATURES_USER_FEATURES,
    Col,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

PETASTORM_CACHE: Final = "_petastorm_cache"
ROW_ORDER: Final = "_row_order"
USER_ROW: Final = "user_row"
SEQ: Final = "seq"
TARGET: Final = "target"
#: Rows above which :class:`EpochBatches` streams every epoch instead of holding the rows.
MAX_ROWS_IN_MEMORY: Final = 2_000_000
#: :class:`EpochBatches` groups rows by length inside windows of this many batches.
LENGTH_WINDOW_BATCHES: Final = 8
#: Passes over a converter before a short read is an error (see :func:`epoch_batches`).
READ_ATTEMPTS: Final = 3
#: The roles of ``features.interactions_split`` (:class:`recsys.features.split.Role`).
TRAIN: Final = Role.TRAIN.value
VALIDATION: Final = Role.VALIDATION.value
TEST: Final = Role.TEST.value


@dataclass(frozen=True)
class ItemTable:
    """Item features as tensors; row ``i`` is ``item_index = i`` (row 0 = padding, zeros)."""

    item_ids: torch.Tensor  #: (n+1,) int64 raw ids (0 at row 0)
    genres: torch.Tensor  #: (n+1, n_genres) float32
    year: torch.Tensor  #: (n+1,) float32
    content: torch.Tensor  #: (n+1, content_dim) float32
    is_cold: torch.Tensor  #: (n+1,) bool
    log_count: torch.Tensor  #: (n+1,) float32

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0]) - 1

    def index_of(self) -> dict[int, int]:
        """Raw item id -> item_index."""
        return {int(v): i for i, v in enumerate(self.item_ids.tolist()) if i > 0}


@dataclass(frozen=True)
class UserTable:
    """User features as tensors; ``rows[user_id]`` gives the row (row 0: unknown user, zeros)."""

    rows: Mapping[int, int]
    user_ids: torch.Tensor  #: (U+1,) int64
    dense: torch.Tensor  #: (U+1, dense_dim) float32
    history: torch.Tensor  #: (U+1, H) int64 raw item ids, 0-padded at the front
    affinity: torch.Tensor  #: (U+1, n_genres) float32
    n_train: torch.Tensor  #: (U+1,) int64 train interactions

    def row_of(self, user_ids: np.ndarray[Any, Any]) -> torch.Tensor:
        """Rows of raw user ids (0 for users without features)."""
        return torch.tensor([self.rows.get(int(u), 0) for u in user_ids], dtype=torch.long)


def _stack(values: pd.Series, width: int) -> np.ndarray[Any, Any]:
    if len(values) == 0:
        return np.zeros((0, width), dtype=np.float32)
    return np.stack([np.asarray(v, dtype=np.float32) for v in values])


def load_items(spark: SparkSession, ds: date, split_id: str) -> ItemTable:
    """``features.item_features`` of one split as an :class:`ItemTable`."""
    pdf = (
        table_slice(spark, FEATURES_ITEM_FEATURES, ds, split_id)
        .select(
            Col.ITEM_INDEX,
            Col.ITEM_ID,
            Col.GENRES_MULTI_HOT,
            Col.YEAR_STD,
            Col.CONTENT_EMBEDDING,
            Col.IS_COLD,
            Col.LOG_COUNT,
        )
        .orderBy(Col.ITEM_INDEX)
        .toPandas()
    )
    if pdf.empty:
        raise ValueError(f"{FEATURES_ITEM_FEATURES}: no rows for ds={ds} split_id={split_id!r}")
    n = len(pdf)
    if pdf[Col.ITEM_INDEX].tolist() != list(range(1, n + 1)):
        raise ValueError(f"{FEATURES_ITEM_FEATURES}: item_index is not 1..{n}")
    genres = _stack(pdf[Col.GENRES_MULTI_HOT], 0)
    content = _stack(pdf[Col.CONTENT_EMBEDDING], 0)

    def pad(a: np.ndarray[Any, Any]) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([np.zeros_like(a[:1]), a]))

    return ItemTable(
        item_ids=pad(pdf[Col.ITEM_ID].to_numpy(np.int64)),
        genres=pad(genres),
        year=pad(pdf[Col.YEAR_STD].to_numpy(np.float32)),
        content=pad(content),
        is_cold=pad(pdf[Col.IS_COLD].to_numpy(bool)),
        log_count=pad(pdf[Col.LOG_COUNT].to_numpy(np.float32)),
    )


def load_users(
    spark: SparkSession,
    ds: date,
    split_id: str,
    history_len: int,
    sample: DataFrame | None = None,
) -> UserTable:
    """``features.user_features`` of one split; histories keep the last ``history_len`` items.

    ``sample``: a ``user_id`` frame (:mod:`recsys.training.samples`); only those users' rows are
    read (a semi-join before the collect). None reads every user.
    """
    feats = table_slice(spark, FEATURES_USER_FEATURES, ds, split_id)
    if sample is not None:
        feats = feats.join(sample, Col.USER_ID, "left_semi")
    pdf = (
        feats.select(Col.USER_ID, Col.DENSE, Col.HISTORY, Col.GENRE_AFFINITY, Col.N_INTERACTIONS)
        .orderBy(Col.USER_ID)
        .toPandas()
    )
    dense = _stack(pdf[Col.DENSE], 0)
    affinity = _stack(pdf[Col.GENRE_AFFINITY], 0)
    history = np.zeros((len(pdf) + 1, history_len), dtype=np.int64)
    for i, items in enumerate(pdf[Col.HISTORY], start=1):
        tail = list(items)[-history_len:]
        if tail:
            history[i, -len(tail) :] = tail

    def pad(a: np.ndarray[Any, Any]) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([np.zeros_like(a[:1]), a]))

    users = pdf[Col.USER_ID].to_numpy(np.int64)
    return UserTable(
        rows={int(u): i for i, u in enumerate(users, start=1)},
        user_ids=pad(users),
        dense=pad(dense),
        history=torch.from_numpy(history),
        affinity=pad(affinity),
        n_train=pad(pdf[Col.N_INTERACTIONS].to_numpy(np.int64)),
    )


def split_pairs(spark: SparkSession, ds: date, split_id: str) -> pd.DataFrame:
    """Every interaction of the split: user_id, item_id, is_positive, event_ts, role."""
    return (
        table_slice(spark, FEATURES_INTERACTIONS_SPLIT, ds, split_id)
        .select(Col.USER_ID, Col.ITEM_ID, Col.IS_POSITIVE, Col.EVENT_TS, Col.ROLE)
        .toPandas()
    )


def hashed_order(df: DataFrame, seed: int, *keys: str) -> DataFrame:
    """``df`` in one partition, ordered by a seeded hash of ``keys`` (deterministic shuffle)."""
    order = F.xxhash64(F.lit(seed), *[F.col(k) for k in keys])
    return df.withColumn(ROW_ORDER, order).orderBy(ROW_ORDER, *keys).coalesce(1).drop(ROW_ORDER)


def padded_history(history_len: int) -> Column:
    """``history``'s last ``history_len`` raw item ids as ARRAY<BIGINT> of exactly that length,
    0-padded at the front (as :func:`load_users` holds them)."""
    hist = F.col(Col.HISTORY)
    start = F.greatest(F.size(hist) - F.lit(history_len) + F.lit(1), F.lit(1))
    tail = F.transform(F.slice(hist, start, F.lit(history_len)), lambda x: x.cast("long"))
    pad = F.array_repeat(F.lit(0).cast("long"), F.lit(history_len) - F.size(tail))
    return F.concat(pad, tail)


def only_users(df: DataFrame, users: DataFrame | None) -> DataFrame:
    """``df``'s rows of the users in ``users`` (a ``user_id`` frame; a semi-join in Spark), or
    ``df`` itself when ``users`` is None."""
    return df if users is None else df.join(users, Col.USER_ID, "left_semi")


def two_tower_rows(
    spark: SparkSession,
    ds: date,
    split_id: str,
    seed: int,
    history_len: int | None = None,
    users: DataFrame | None = None,
) -> DataFrame:
    """Train positives as (user_id, item_id, item_index), in seeded hash order.

    ``history_len`` given, each row also carries its user's features, so training reads no
    per-user table: :data:`Col.DENSE <recsys.warehouse.tables.Col>` (ARRAY<FLOAT>) and
    :data:`Col.HISTORY` (:func:`padded_history`). Every user with a train positive has a
    ``features.user_features`` row (the table holds every user with a train interaction).
    ``users``: a ``user_id`` frame (a training sample, :func:`recsys.training.samples.
    training_users`); only their rows are kept, before the ordering, so the rows are those of
    every user restricted to the sample, in the same order. None keeps every user.
    """
    split = table_slice(spark, FEATURES_INTERACTIONS_SPLIT, ds, split_id).where(
        (F.col(Col.ROLE) == F.lit(TRAIN)) & F.col(Col.IS_POSITIVE)
    )
    split = only_users(split, users)
    items = table_slice(spark, FEATURES_ITEM_FEATURES, ds, split_id).select(
        Col.ITEM_ID, Col.ITEM_INDEX
    )
    cols = [
        F.col(Col.USER_ID).cast("long"),
        F.col(Col.ITEM_ID).cast("long"),
        F.col(Col.ITEM_INDEX).cast("long"),
    ]
    rows = split.join(items, Col.ITEM_ID)
    if history_len is not None:
        feats = table_slice(spark, FEATURES_USER_FEATURES, ds, split_id).select(
            Col.USER_ID,
            F.col(Col.DENSE).cast("array<float>").alias(Col.DENSE),
            padded_history(history_len).alias(Col.HISTORY),
        )
        rows = rows.join(feats, Col.USER_ID)
        cols += [F.col(Col.DENSE), F.col(Col.HISTORY)]
    return hashed_order(rows.select(*cols), seed, Col.USER_ID, Col.ITEM_ID)


def sasrec_rows(
    spark: SparkSession,
    ds: date,
    split_id: str,
    max_len: int,
    seed: int,
    positives_only: bool = True,
    positive_targets: bool = False,
    users: DataFrame | None = None,
) -> DataFrame:
    """Chronological train events as windows of ``max_len + 1`` item indices, left-padded.

    Each user's train positives (every train interaction with ``positives_only=False``) are cut,
    newest first, into consecutive chunks of ``max_len + 1``; column ``seq`` is ARRAY<BIGINT> of
    fixed length ``max_len + 1``. Order: ``(event_ts, item_id)``, as the split orders events.
    ``positive_targets``: a second column :data:`TARGET`, aligned with ``seq``, holds each
    event's item index when the event is positive and 0 (not a target) otherwise.
    ``users``: as in :func:`two_tower_rows` (only their sequences; None: every user).
    """
    split = table_slice(spark, FEATURES_INTERACTIONS_SPLIT, ds, split_id).where(
        F.col(Col.ROLE) == F.lit(TRAIN)
    )
    split = only_users(split, users)
    if positives_only:
        split = split.where(F.col(Col.IS_POSITIVE))
    items = table_slice(spark, FEATURES_ITEM_FEATURES, ds, split_id).select(
        Col.ITEM_ID, Col.ITEM_INDEX
    )
    newest = Window.partitionBy(Col.USER_ID).orderBy(
        F.col(Col.EVENT_TS).desc(), F.col(Col.ITEM_ID).desc()
    )
    width = max_len + 1
    ranked = split.join(items, Col.ITEM_ID).withColumn("_r", F.row_number().over(newest) - 1)
    target = F.when(F.col(Col.IS_POSITIVE), F.col(Col.ITEM_INDEX)).otherwise(F.lit(0))
    chunks = ranked.groupBy(Col.USER_ID, (F.col("_r") / width).cast("int").alias("_chunk")).agg(
        F.sort_array(
            F.collect_list(F.struct(F.col("_r"), F.col(Col.ITEM_INDEX), target.alias("_t")))
        ).alias("_s")
    )

    def padded(field: str) -> Column:
        # sort_array on _r ascending is newest first: reverse to chronological.
        seq = F.reverse(F.transform(F.col("_s"), lambda s: s[field].cast("long")))
        return F.concat(F.array_repeat(F.lit(0).cast("long"), F.lit(width) - F.size(seq)), seq)

    cols = [F.col(Col.USER_ID).cast("long"), F.col("_chunk").cast("long")]
    cols.append(padded(Col.ITEM_INDEX).alias(SEQ))
    if positive_targets:
        cols.append(padded("_t").alias(TARGET))
    rows = chunks.where(F.size("_s") >= 2).select(*cols)
    return hashed_order(rows, seed, Col.USER_ID, "_chunk").drop("_chunk")


def ranker_rows(
    spark: SparkSession,
    ds: date,
    split_id: str,
    role: str,
    seed: int,
    users: DataFrame | None = None,
) -> DataFrame:
    """``features.ranker_examples`` of one role as (user_id, item_index, label), hash-ordered.

    ``users``: a ``user_id`` frame; only their examples are kept (before the ordering, so a
    sample holding every user gives the same rows in the same order).
    """
    ex = table_slice(spark, FEATURES_RANKER_EXAMPLES, ds, split_id).where(
        F.col(Col.ROLE) == F.lit(role)
    )
    ex = only_users(ex, users)
    items = table_slice(spark, FEATURES_ITEM_FEATURES, ds, split_id).select(
        Col.ITEM_ID, Col.ITEM_INDEX
    )
    rows = ex.join(items, Col.ITEM_ID).select(
        F.col(Col.USER_ID).cast("long"),
        F.col(Col.ITEM_ID).cast("long"),
        F.col(Col.ITEM_INDEX).cast("long"),
        F.col(Col.LABEL).cast("float"),
    )
    return hashed_order(rows, seed, Col.USER_ID, Col.ITEM_ID)


@contextmanager
def petastorm_converter(df: DataFrame, warehouse_root: str) -> Iterator[Any]:
    """A petastorm converter of ``df`` cached under ``<warehouse_root>/_petastorm_cache``.

    The cache is deleted on exit.
    """
    from petastorm.spark import SparkDatasetConverter, make_spark_converter

    root = warehouse_root.rstrip("/")
    url = root if "://" in root else "file://" + root
    df.sparkSession.conf.set(
        SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF, url + "/" + PETASTORM_CACHE
    )
    converter = make_spark_converter(df)
    try:
        yield converter
    finally:
        converter.delete()


class ShortReadError(RuntimeError):
    """A petastorm pass returned fewer rows than the converter holds."""


def _one_pass(
    converter: Any, batch_size: int, seed: int | None
) -> Iterator[dict[str, torch.Tensor]]:
    shuffle: dict[str, Any] = (
        {"shuffle_row_groups": False}
        if seed is None
        else {"shuffle_row_groups": True, "shuffle_rows": True, "seed": seed}
    )
    with converter.make_torch_dataloader(
        batch_size=batch_size,
        num_epochs=1,
        workers_count=1,
        shuffling_queue_capacity=0,
        **shuffle,
    ) as loader:
        yield from loader


def _rows_in(batch: Mapping[str, torch.Tensor]) -> int:
    return len(next(iter(batch.values()))) if batch else 0


def epoch_batches(
    converter: Any, batch_size: int, seed: int | None = None
) -> Iterator[dict[str, torch.Tensor]]:
    """One pass over the converter's rows through one reader worker, checked against its count.

    ``seed`` None: stored order. Otherwise rows and row groups are shuffled by petastorm with
    that seed (deterministic, as there is one worker).

    petastorm 0.13.1's worker pools can end a pass early: ``get_results`` checks "every worker
    idle" and then "ventilator done", and when the ventilator thread hands out every remaining
    row group between the two checks the reader stops without reading them (seen as a pass of
    0 of 100 rows under load). A pass that yields nothing is retried (:data:`READ_ATTEMPTS` in
    all); a pass that stops part-way raises :class:`ShortReadError`, since its batches are
    already consumed, rather than letting an epoch silently lose rows.
    """
    expected = len(converter)
    for attempt in range(1, READ_ATTEMPTS + 1):
        rows = 0
        for batch in _one_pass(converter, batch_size, seed):
            rows += _rows_in(batch)
            yield batch
        if rows == expected:
            return
        if rows > 0 or attempt == READ_ATTEMPTS:
            raise ShortReadError(f"petastorm pass read {rows} of {expected} rows")
        log.warning(
            "petastorm pass read 0 of %d rows (attempt %d); reading again", expected, attempt
        )


def read_all(converter: Any, batch_size: int = 65_536) -> dict[str, torch.Tensor]:
    """Every row of the converter as one tensor per column, in stored order.

    A pass that does not return every row (see :func:`epoch_batches`) is read again, up to
    :data:`READ_ATTEMPTS` passes; then :class:`ShortReadError`.
    """
    expected, rows = len(converter), 0
    for attempt in range(1, READ_ATTEMPTS + 1):
        parts: dict[str, list[torch.Tensor]] = {}
        rows = 0
        for batch in _one_pass(converter, batch_size, None):
            rows += _rows_in(batch)
            for key, value in batch.items():
                parts.setdefault(key, []).append(value)
        if rows == expected:
            return {k: torch.cat(v) for k, v in parts.items()}
        log.warning(
            "petastorm pass read %d of %d rows (attempt %d of %d)",
            rows,
            expected,
            attempt,
            READ_ATTEMPTS,
        )
    raise ShortReadError(f"petastorm read {rows} of {expected} rows in {READ_ATTEMPTS} passes")


class EpochBatches:
    """Callable giving one epoch of batches per call, in a new seeded order each epoch.

    Args:
        converter: A petastorm converter (``len()`` is its row count).
        batch_size: Rows per batch, >= 1.
        seed: Seeds each epoch's order together with the epoch number (1, 2, ...).
        length_of: Column whose non-zero count is a row's length, e.g. :data:`SEQ`, or None.
            Given, rows are sorted by length inside windows of :data:`LENGTH_WINDOW_BATCHES`
            shuffled batches, and each batch of that 2-D column, and of every 2-D column as
            wide (aligned with it, e.g. :data:`TARGET`), is cut to its longest row's trailing
            entries (rows must be left-padded with 0). In-memory streams only.
        max_rows_in_memory: Streams with more rows are re-read (shuffled) every epoch.
    """

    def __init__(
        self,
        converter: Any,
        batch_size: int,
        seed: int,
        *,
        length_of: str | None = None,
        max_rows_in_memory: int = MAX_ROWS_IN_MEMORY,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size!r}")
        self.converter = converter
        self.batch_size = batch_size
        self.seed = seed
        self.length_of = length_of
        self.epoch = 0
        self.rows: dict[str, torch.Tensor] | None = (
            read_all(converter) if len(converter) <= max_rows_in_memory else None
        )

    def __call__(self) -> Iterator[dict[str, torch.Tensor]]:
        self.epoch += 1
        if self.rows is None:
            return epoch_batches(self.converter, self.batch_size, self.seed + self.epoch)
        return iter(self._in_memory(self.rows, self.epoch))

    def _in_memory(self, rows: dict[str, torch.Tensor], epoch: int) -> list[dict[str, Any]]:
        n = len(next(iter(rows.values()))) if rows else 0
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=gen)
        if self.length_of is None:
            groups: Sequence[torch.Tensor] = torch.split(perm, self.batch_size)
        else:
            lengths = (rows[self.length_of] != 0).sum(1)
            windows = torch.split(perm, self.batch_size * LENGTH_WINDOW_BATCHES)
            by_length = [w[torch.argsort(lengths[w], stable=True)] for w in windows]
            groups = [g for w in by_length for g in torch.split(w, self.batch_size)]
            order = torch.randperm(len(groups), generator=gen).tolist()
            groups = [groups[i] for i in order]
        out: list[dict[str, Any]] = []
        for idx in groups:
            batch = {k: v[idx] for k, v in rows.items()}
            if self.length_of is not None:
                col = batch[self.length_of]
                width = max(1, int((col != 0).sum(1).max()))
                for key, value in batch.items():
                    if value.dim() == 2 and value.shape[1] == col.shape[1]:
                        batch[key] = value[:, -width:]
            out.append(batch)
        return out


def known_items(pairs: pd.DataFrame, roles: tuple[str, ...]) -> dict[int, set[int]]:
    """Per user, raw item ids of every interaction in ``roles`` (excluded from rankings)."""
    sub = pairs[pairs[Col.ROLE].isin(roles)]
    grouped = sub.groupby(Col.USER_ID)[Col.ITEM_ID].agg(list)
    return {
        int(u): set(map(int, g))
        for u, g in zip(grouped.index.tolist(), grouped.tolist(), strict=True)
    }


def held_out(pairs: pd.DataFrame, role: str) -> pd.DataFrame:
    """Positive (user_id, item_id) pairs of ``role``: the ground truth."""
    sub = pairs[(pairs[Col.ROLE] == role) & pairs[Col.IS_POSITIVE]]
    return sub[[Col.USER_ID, Col.ITEM_ID]].drop_duplicates().reset_index(drop=True)


def positive_sequences(
    pairs: pd.DataFrame, roles: tuple[str, ...], index_of: Mapping[int, int]
) -> dict[int, list[int]]:
    """Per user, item indices of positives in ``roles``, oldest first (ties by item id)."""
    return _sequences(pairs[pairs[Col.ROLE].isin(roles) & pairs[Col.IS_POSITIVE]], index_of)


def event_sequences(
    pairs: pd.DataFrame,
    roles: tuple[str, ...],
    index_of: Mapping[int, int],
    positives_only: bool,
) -> dict[int, list[int]]:
    """Per user, item indices of the events in ``roles``, oldest first (ties by item id).

    ``positives_only``: as :func:`positive_sequences`; otherwise every interaction (a rating
    below the positive threshold is still a watched item), the input SASRec is trained on when
    its config says ``positives_only=False``.
    """
    if positives_only:
        return positive_sequences(pairs, roles, index_of)
    return _sequences(pairs[pairs[Col.ROLE].isin(roles)], index_of)


def _sequences(events: pd.DataFrame, index_of: Mapping[int, int]) -> dict[int, list[int]]:
    """Per user, the item indices of ``events`` (rows of ``pairs``), oldest first (ties by item
    id); items without an index dropped."""
    ordered = events.sort_values([Col.USER_ID, Col.EVENT_TS, Col.ITEM_ID])
    grouped = ordered.groupby(Col.USER_ID, sort=True)[Col.ITEM_ID].agg(list)
    return {
        int(u): [index_of[int(i)] for i in g if int(i) in index_of]
        for u, g in zip(grouped.index.tolist(), grouped.tolist(), strict=True)
    }
