"""Top-K retrieval for every user: blocked inner products against a broadcast item matrix.

Public API (also used by ``bench/``):

- :func:`retrieve_local`: the single-process reference (numpy in, pandas out).
- :func:`retrieve_spark`: the same kernel in Spark's Python workers through ``mapInArrow``.

Both return ``user_id, item_id, retrieval_score, candidate_rank``: per user the ``k`` highest
inner products (cosines for unit vectors), best first, ties broken by lower item id, items in
``seen`` excluded; a user with fewer than ``k`` unseen items gets them all. They share
:func:`recsys.kernels.topk_blocked`, so they agree exactly on order and to float32
rounding on scores.

How the Spark path stays close to plain torch: the item matrix is collected once on the driver
and broadcast; each Python worker converts it to a tensor once (cached at module level, worker
processes are reused); user vectors arrive as Arrow record batches whose ARRAY<FLOAT> column is
viewed as a 2-D numpy array without copying; the kernel scores blocks of users with one matmul
and a per-block ``topk``; the result goes back as flat Arrow columns. No pandas objects, no
per-row Python.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys.kernels import (
    NDArray,
    TopK,
    blocks_for,
    list_matrix,
    list_parts,
    matmul_blocks,
    positions,
    topk_blocked,
)
from recsys.models.device import pick_device
from recsys.scoring.runtime import cached, set_threads, shuffle_slots, task_slots, worker_threads
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.broadcast import Broadcast
    from pyspark.sql import DataFrame

#: Private column: a user's excluded item ids, joined onto the user rows.
SEEN: Final = "_seen_item_ids"

RETRIEVAL_SCHEMA: Final = T.StructType(
    [
        T.StructField(Col.USER_ID, T.LongType(), False),
        T.StructField(Col.ITEM_ID, T.LongType(), False),
        T.StructField(Col.RETRIEVAL_SCORE, T.FloatType(), False),
        T.StructField(Col.CANDIDATE_RANK, T.IntegerType(), False),
    ]
)

SeenLike = pd.DataFrame | Mapping[int, Iterable[int]] | None


def _check_k(k: object) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k: must be an int >= 1, got {k!r}")
    return k


def sorted_items(item_ids: Any, item_vecs: Any) -> tuple[NDArray, NDArray]:
    """Item ids ascending (int64) and their float32 vectors in that order.

    Raises ValueError on duplicate ids or a length mismatch.
    """
    ids = np.asarray(item_ids, dtype=np.int64)
    vecs = np.asarray(item_vecs, dtype=np.float32)
    if vecs.ndim != 2 or vecs.shape[0] != ids.shape[0]:
        raise ValueError(f"item_vecs: expected ({len(ids)}, d), got shape {vecs.shape}")
    order = np.argsort(ids, kind="stable")
    ids, vecs = ids[order], np.ascontiguousarray(vecs[order])
    if len(ids) > 1 and bool((ids[1:] == ids[:-1]).any()):
        raise ValueError("item_ids: duplicate item ids")
    return ids, vecs


def _seen_pairs(user_ids: NDArray, seen: SeenLike) -> tuple[NDArray, NDArray] | None:
    """(user row, raw item id) pairs of ``seen`` for the given users."""
    if seen is None:
        return None
    if isinstance(seen, pd.DataFrame):
        users = seen[Col.USER_ID].to_numpy(np.int64)
        items = seen[Col.ITEM_ID].to_numpy(np.int64)
    else:
        pairs = [(int(u), int(i)) for u, its in seen.items() for i in its]
        users = np.array([p[0] for p in pairs], dtype=np.int64)
        items = np.array([p[1] for p in pairs], dtype=np.int64)
    row_of = pd.Series(np.arange(len(user_ids)), index=pd.Index(user_ids))
    if not row_of.index.is_unique:
        raise ValueError("user_ids: duplicate user ids")
    rows = row_of.reindex(users).to_numpy()
    keep = ~np.isnan(rows)
    return rows[keep].astype(np.int64), items[keep]


def score_users(
    user_vecs: NDArray,
    item_ids: NDArray,
    items: torch.Tensor,
    k: int,
    seen_rows: NDArray | None,
    seen_item_ids: NDArray | None,
) -> TopK:
    """The retrieval kernel: top-``k`` of ``user_vecs @ items.T`` minus seen items.

    ``item_ids`` ascending, ``items`` their ``(N, d)`` matrix on the scoring device.
    """
    user_block, item_block = blocks_for(items.device, len(item_ids))
    cols = None if seen_item_ids is None else positions(item_ids, seen_item_ids)
    return topk_blocked(
        len(user_vecs),
        len(item_ids),
        matmul_blocks(user_vecs, items),
        k,
        seen_rows,
        cols,
        user_block=user_block,
        item_block=item_block,
    )


def retrieve_local(
    user_vecs: Any,
    user_ids: Any,
    item_vecs: Any,
    item_ids: Any,
    k: int,
    seen: SeenLike = None,
    device: torch.device | None = None,
) -> pd.DataFrame:
    """Single-process top-``k`` retrieval (the reference of :func:`retrieve_spark`).

    Args:
        user_vecs: ``(U, d)`` float user vectors.
        user_ids: ``(U,)`` distinct int user ids.
        item_vecs: ``(N, d)`` float item vectors.
        item_ids: ``(N,)`` distinct int item ids.
        k: Items per user, >= 1.
        seen: Excluded pairs: a DataFrame with ``user_id, item_id`` or a mapping user id ->
            item ids; None excludes nothing. Unknown users/items are ignored.
        device: Where to score; :func:`recsys.models.device.pick_device` when None.

    Returns:
        ``user_id, item_id, retrieval_score (float32), candidate_rank (1..k, int32)`` sorted by
        user id then rank.
    """
    k = _check_k(k)
    uids = np.asarray(user_ids, dtype=np.int64)
    uvecs = np.ascontiguousarray(np.asarray(user_vecs, dtype=np.float32))
    if uvecs.ndim != 2 or uvecs.shape[0] != uids.shape[0]:
        raise ValueError(f"user_vecs: expected ({len(uids)}, d), got shape {uvecs.shape}")
    ids, vecs = sorted_items(item_ids, item_vecs)
    if uvecs.shape[1] != vecs.shape[1]:
        raise ValueError(f"user_vecs: width {uvecs.shape[1]} differs from items' {vecs.shape[1]}")
    order = np.argsort(uids, kind="stable")
    uids, uvecs = uids[order], uvecs[order]
    pairs = _seen_pairs(uids, seen)
    dev = device or pick_device()
    items = torch.from_numpy(vecs).to(dev)
    with torch.no_grad():
        top = score_users(uvecs, ids, items, k, *(pairs or (None, None)))
    return pd.DataFrame(
        {
            Col.USER_ID: uids[top.rows],
            Col.ITEM_ID: ids[top.cols],
            Col.RETRIEVAL_SCORE: top.scores,
            Col.CANDIDATE_RANK: top.ranks,
        }
    )


def _retrieve_batches(
    batches: Iterator[pa.RecordBatch],
    *,
    items_bc: Broadcast[tuple[NDArray, NDArray]],
    token: str,
    k: int,
    dim: int,
    threads: int,
    has_seen: bool,
) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: runs in a Python worker, once per partition."""
    set_threads(threads)
    device = pick_device()
    item_ids, item_vecs = cached(token, lambda: items_bc.value)
    items = cached(token + "@" + str(device), lambda: torch.from_numpy(item_vecs).to(device))
    for batch in batches:
        if batch.num_rows == 0:
            continue
        user_ids = batch.column(Col.USER_ID).to_numpy(zero_copy_only=False).astype(np.int64)
        vecs = list_matrix(batch.column(Col.EMBEDDING), dim)
        seen_rows = seen_ids = None
        if has_seen:
            seen_rows, seen_ids = list_parts(batch.column(SEEN))
            seen_ids = seen_ids.astype(np.int64)
        with torch.no_grad():
            top = score_users(vecs, item_ids, items, k, seen_rows, seen_ids)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(user_ids[top.rows], pa.int64()),
                pa.array(item_ids[top.cols], pa.int64()),
                pa.array(top.scores, pa.float32()),
                pa.array(top.ranks, pa.int32()),
            ],
            schema=pa.schema(
                [
                    pa.field(f.name, t, nullable=False)
                    for f, t in zip(
                        RETRIEVAL_SCHEMA.fields,
                        (pa.int64(), pa.int64(), pa.float32(), pa.int32()),
                        strict=True,
                    )
                ]
            ),
        )


def collect_items(items: DataFrame) -> tuple[NDArray, NDArray]:
    """``items`` (``item_id``, ``embedding``) collected on the driver through Arrow, sorted."""
    table = items.select(F.col(Col.ITEM_ID).cast("long"), F.col(Col.EMBEDDING)).toArrow()
    ids = table.column(Col.ITEM_ID).to_numpy().astype(np.int64)
    if len(ids) == 0:
        raise ValueError("items: no rows")
    emb = table.column(Col.EMBEDDING).combine_chunks()
    dim = int(emb.value_lengths()[0].as_py())
    return sorted_items(ids, list_matrix(emb, dim))


def retrieve_spark(
    users: DataFrame,
    items: DataFrame,
    k: int,
    seen: DataFrame | None = None,
    *,
    threads: int | None = None,
) -> DataFrame:
    """Top-``k`` retrieval of every user in Spark (lazy; nothing runs until an action).

    The item matrix is collected on the driver once (``N x d`` float32 must fit there and in
    each Python worker) and broadcast; users are scored where they are, partition by partition.

    Args:
        users: ``user_id BIGINT, embedding ARRAY<FLOAT>`` (every array of one width d, no
            nulls, distinct user ids).
        items: ``item_id BIGINT, embedding ARRAY<FLOAT>`` (width d, distinct ids).
        k: Items per user, >= 1.
        seen: ``user_id, item_id`` pairs to exclude, or None.
        threads: torch threads per Python worker; default
            :func:`recsys.scoring.runtime.worker_threads`.

    Returns:
        ``user_id BIGINT, item_id BIGINT, retrieval_score FLOAT, candidate_rank INT``, as
        :func:`retrieve_local`; unordered.
    """
    k = _check_k(k)
    spark = users.sparkSession
    item_ids, item_vecs = collect_items(items)
    dim = int(item_vecs.shape[1])
    bc = spark.sparkContext.broadcast((item_ids, item_vecs))
    frame = users.select(F.col(Col.USER_ID).cast("long"), F.col(Col.EMBEDDING))
    if seen is not None:
        # Both sides hashed by user into an explicit count: the join needs the shuffle anyway.
        parts = shuffle_slots(spark)
        lists = (
            seen.select(F.col(Col.USER_ID).cast("long"), F.col(Col.ITEM_ID).cast("long"))
            .repartition(parts, Col.USER_ID)
            .groupBy(Col.USER_ID)
            .agg(F.collect_list(Col.ITEM_ID).alias(SEEN))
        )
        frame = frame.repartition(parts, Col.USER_ID).join(lists, Col.USER_ID, "left")
    elif frame.rdd.getNumPartitions() < (slots := task_slots(spark)):
        frame = frame.repartition(slots)
    body = functools.partial(
        _retrieve_batches,
        items_bc=bc,
        token="items/" + uuid.uuid4().hex,
        k=k,
        dim=dim,
        threads=threads or worker_threads(spark),
        has_seen=seen is not None,
    )
    return frame.mapInArrow(body, RETRIEVAL_SCHEMA)
