"""Two-tower embeddings for serving: items on the driver, users in Spark's Python workers.

Item vectors come from :func:`recsys.training.inference.item_vectors` over the whole catalogue
(cold items through their content-only embedding), exactly as offline evaluation computes them.
User vectors are computed by :func:`user_embeddings_spark`, a ``mapInArrow`` over
``features.user_features`` rows with the model broadcast once and rebuilt once per worker; its
reference is :func:`recsys.training.inference.user_vectors`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa
import torch
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys.kernels import NDArray, list_matrix, list_parts, matrix_lists
from recsys.models.device import batch_size_for
from recsys.models.two_tower import TwoTower
from recsys.scoring.runtime import ModelPayload, worker_model, worker_threads
from recsys.training.data import ItemTable
from recsys.training.inference import item_vectors
from recsys.training.trainers import feature_spec_of
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.broadcast import Broadcast
    from pyspark.sql import DataFrame

#: History items the user tower reads when the artifact does not say (as in training).
DEFAULT_HISTORY_LEN: Final = 50

USER_EMBEDDING_SCHEMA: Final = T.StructType(
    [
        T.StructField(Col.USER_ID, T.LongType(), False),
        T.StructField(Col.EMBEDDING, T.ArrayType(T.FloatType(), False), False),
    ]
)


def feature_spec(items: ItemTable, user_dense_dim: int, split_id: str) -> dict[str, Any]:
    """The feature spec artifacts are checked against, built without loading every interaction
    (the same function as ``SplitData.feature_spec``)."""
    return feature_spec_of(items, user_dense_dim, split_id)


def item_embedding_arrays(model: TwoTower, items: ItemTable, device: torch.device) -> NDArray:
    """``(n_items, out_dim)`` float32 item vectors in ``item_index`` order (row 0 dropped)."""
    return item_vectors(model.to(device), items, device)[1:].numpy().astype(np.float32)


def history_matrix(column: pa.Array | pa.ChunkedArray, length: int) -> NDArray:
    """A list column of raw item ids as ``(n, length)`` int64, last ``length`` items kept,
    left-padded with 0 (the layout :class:`recsys.training.data.UserTable` uses)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    rows, values = list_parts(column)
    lengths = column.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    out = np.zeros((n, length), dtype=np.int64)
    if len(values) == 0:
        return out
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    within = np.arange(len(values)) - starts[rows]
    from_end = lengths[rows] - 1 - within
    keep = from_end < length
    out[rows[keep], length - 1 - from_end[keep]] = values[keep].astype(np.int64)
    return out


def _user_batches(
    batches: Iterator[pa.RecordBatch],
    *,
    model_bc: Broadcast[ModelPayload],
    key: str,
    dense_dim: int,
    history_len: int,
    threads: int,
) -> Iterator[pa.RecordBatch]:
    model, device = worker_model(model_bc, key, threads)
    size = batch_size_for("two_tower", device, "score")
    for batch in batches:
        if batch.num_rows == 0:
            continue
        ids = batch.column(Col.USER_ID).to_numpy(zero_copy_only=False).astype(np.int64)
        dense = torch.from_numpy(list_matrix(batch.column(Col.DENSE), dense_dim))
        hist = torch.from_numpy(history_matrix(batch.column(Col.HISTORY), history_len))
        uid = torch.from_numpy(ids)
        out = []
        with torch.no_grad():
            for s in range(0, len(ids), size):
                sl = slice(s, s + size)
                out.append(
                    model.user_embedding(  # type: ignore[operator]
                        uid[sl].to(device), dense[sl].to(device), hist[sl].to(device)
                    ).cpu()
                )
        vecs = torch.cat(out).numpy().astype(np.float32)
        yield pa.RecordBatch.from_arrays(
            [pa.array(ids, pa.int64()), matrix_lists(vecs)], names=[Col.USER_ID, Col.EMBEDDING]
        )


def user_embeddings_spark(
    user_features: DataFrame,
    payload: ModelPayload,
    *,
    history_len: int = DEFAULT_HISTORY_LEN,
    threads: int | None = None,
) -> DataFrame:
    """User-tower vectors of every row of ``user_features`` (lazy).

    Args:
        user_features: ``user_id BIGINT, dense ARRAY<FLOAT>, history ARRAY<BIGINT>`` (as in
            ``features.user_features``).
        payload: A two-tower model.
        history_len: Last history items fed to the tower, >= 1 (training's ``history_len``).
        threads: torch threads per Python worker.

    Returns:
        ``user_id BIGINT, embedding ARRAY<FLOAT>`` (unit L2 norm, ``out_dim`` floats).
    """
    if payload.model_name != "two_tower":
        raise ValueError(f"payload: expected a two_tower model, got {payload.model_name!r}")
    if history_len < 1:
        raise ValueError(f"history_len: must be >= 1, got {history_len!r}")
    spark = user_features.sparkSession
    dense_dim = int(payload.config["user_dense_dim"])
    body = functools.partial(
        _user_batches,
        model_bc=spark.sparkContext.broadcast(payload),
        key=payload.key,
        dense_dim=dense_dim,
        history_len=history_len,
        threads=threads or worker_threads(spark),
    )
    frame = user_features.select(
        F.col(Col.USER_ID).cast("long"), F.col(Col.DENSE), F.col(Col.HISTORY)
    )
    return frame.mapInArrow(body, USER_EMBEDDING_SCHEMA)
