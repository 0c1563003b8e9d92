"""SASRec candidates in Spark: next-item scores of each user's sequence, top-K unseen.

The sequence is the user's train and validation events (positives only, or every interaction,
as the artifact's ``positives_only`` says), oldest first (ties by item id), as
item indices of ``features.item_features`` (as offline evaluation feeds SASRec); the last
``max_len`` are kept. Scores are SASRec logits; exclusion and ordering are those of
:mod:`recsys.kernels` (ties: lower item id).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final, cast

import numpy as np
import pyarrow as pa
import torch
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys.kernels import NDArray, TopK, list_parts, matrix_lists, positions, topk_blocked
from recsys.models.device import batch_size_for
from recsys.models.sasrec import SequentialRecommender
from recsys.scoring.embeddings import history_matrix
from recsys.scoring.ranking import SEQUENCE_VECTOR
from recsys.scoring.retrieval import RETRIEVAL_SCHEMA, SEEN
from recsys.scoring.runtime import ModelPayload, cached, worker_model, worker_threads
from recsys.training.inference import sasrec_user_vectors
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.broadcast import Broadcast
    from pyspark.sql import DataFrame

#: Column of item-index sequences (oldest first) fed to SASRec.
SEQUENCE: Final = "_sequence"
VECTOR_SCHEMA: Final = T.StructType(
    [
        T.StructField(Col.USER_ID, T.LongType(), False),
        T.StructField(SEQUENCE_VECTOR, T.ArrayType(T.FloatType(), False), False),
    ]
)


def sasrec_topk(
    model: SequentialRecommender,
    sequences: NDArray,
    item_ids: NDArray,
    k: int,
    seen_rows: NDArray | None,
    seen_item_ids: NDArray | None,
    device: torch.device,
    user_vectors: NDArray | None = None,
) -> TopK:
    """Top-``k`` items of each row of ``sequences`` (``(B, max_len)`` item indices, 0-padded
    at the front); ``item_ids[j]`` is item index ``j + 1`` (ascending).

    ``user_vectors``, when given (``(B, d_model + 1)`` float32), is filled with each row's
    :func:`recsys.training.inference.sasrec_user_vectors` ``[h, -log Z]`` from the same forward
    pass, so a caller that also needs them (the ranker's sequence feature) does not run the
    transformer twice. ``log Z`` is the log-sum-exp of the scores of items ``1..n``: every
    item of the model, which here are exactly the columns scored.
    """
    seq = torch.from_numpy(sequences.astype(np.int64))
    size = batch_size_for("sasrec", device, "score")
    if user_vectors is not None and user_vectors.shape != (
        len(seq),
        int(model.item_emb.weight.shape[1]) + 1,
    ):
        raise ValueError(f"user_vectors: shape {user_vectors.shape} does not fit the sequences")

    def block(u0: int, u1: int, i0: int, i1: int) -> torch.Tensor:
        hidden = model.user_representation(seq[u0:u1].to(device))
        scores = model.scores(hidden)
        if user_vectors is not None and i0 == 0:
            log_z = torch.logsumexp(scores[:, 1:], dim=1, keepdim=True)
            user_vectors[u0:u1] = torch.cat([hidden, -log_z], dim=1).float().cpu().numpy()
        return scores[:, 1 + i0 : 1 + i1]

    cols = None if seen_item_ids is None else positions(item_ids, seen_item_ids)
    with torch.no_grad():
        return topk_blocked(
            len(seq),
            len(item_ids),
            block,
            k,
            seen_rows,
            cols,
            user_block=size,
            item_block=max(1, len(item_ids)),
        )


def _sasrec_batches(
    batches: Iterator[pa.RecordBatch],
    *,
    model_bc: Broadcast[ModelPayload],
    ids_bc: Broadcast[NDArray],
    key: str,
    k: int,
    threads: int,
) -> Iterator[pa.RecordBatch]:
    built, device = worker_model(model_bc, key, threads)
    model = cast(SequentialRecommender, built)
    item_ids = cached(key + "/ids", lambda: ids_bc.value)
    max_len = int(model.config.max_len)
    for rb in batches:
        if rb.num_rows == 0:
            continue
        users = rb.column(Col.USER_ID).to_numpy(zero_copy_only=False).astype(np.int64)
        seqs = history_matrix(rb.column(SEQUENCE), max_len)
        seen_rows, seen_ids = list_parts(rb.column(SEEN))
        top = sasrec_topk(
            model,
            seqs,
            item_ids,
            k,
            seen_rows,
            seen_ids.astype(np.int64),
            device,
        )
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(users[top.rows], pa.int64()),
                pa.array(item_ids[top.cols], pa.int64()),
                pa.array(top.scores, pa.float32()),
                pa.array(top.ranks, pa.int32()),
            ],
            names=[f.name for f in RETRIEVAL_SCHEMA.fields],
        )


def _vector_batches(
    batches: Iterator[pa.RecordBatch],
    *,
    model_bc: Broadcast[ModelPayload],
    key: str,
    threads: int,
) -> Iterator[pa.RecordBatch]:
    built, device = worker_model(model_bc, key, threads)
    model = cast(SequentialRecommender, built)
    max_len = int(model.config.max_len)
    size = batch_size_for("sasrec", device, "score")
    for rb in batches:
        if rb.num_rows == 0:
            continue
        seqs = torch.from_numpy(history_matrix(rb.column(SEQUENCE), max_len))
        vecs = torch.cat(
            [
                sasrec_user_vectors(model, seqs[s : s + size].to(device)).float().cpu()
                for s in range(0, len(seqs), size)
            ]
        ).numpy()
        yield pa.RecordBatch.from_arrays(
            [rb.column(Col.USER_ID).cast(pa.int64()), matrix_lists(vecs)],
            names=[f.name for f in VECTOR_SCHEMA.fields],
        )


def sasrec_vectors_spark(
    sequences: DataFrame, payload: ModelPayload, *, threads: int | None = None
) -> DataFrame:
    """SASRec user vectors ``[h, -log Z]`` per user (lazy; see
    :func:`recsys.training.inference.sasrec_user_vectors`): the ranker's SASRec input.

    Args:
        sequences: ``user_id BIGINT, _sequence ARRAY<BIGINT>`` (item indices oldest first).
        payload: A sasrec model.

    Returns:
        ``user_id BIGINT, sequence_vector ARRAY<FLOAT>`` (width ``d_model + 1``).
    """
    if payload.model_name != "sasrec":
        raise ValueError(f"payload: expected a sasrec model, got {payload.model_name!r}")
    spark = sequences.sparkSession
    body = functools.partial(
        _vector_batches,
        model_bc=spark.sparkContext.broadcast(payload),
        key=payload.key,
        threads=threads or worker_threads(spark),
    )
    frame = sequences.select(F.col(Col.USER_ID).cast("long"), F.col(SEQUENCE))
    return frame.mapInArrow(body, VECTOR_SCHEMA)


def sasrec_spark(
    sequences: DataFrame,
    item_ids: NDArray,
    payload: ModelPayload,
    k: int,
    *,
    threads: int | None = None,
) -> DataFrame:
    """SASRec top-``k`` per user (lazy).

    Args:
        sequences: ``user_id BIGINT, _sequence ARRAY<BIGINT>`` (item indices oldest first),
            ``_seen_item_ids ARRAY<BIGINT>`` (raw ids to exclude; may be null).
        item_ids: ``(n_items,)`` raw ids in item-index order (ascending).
        payload: A sasrec model whose ``n_items`` equals ``len(item_ids)``.
        k: Items per user, >= 1.

    Returns:
        ``user_id, item_id, retrieval_score (logit), candidate_rank``.
    """
    if payload.model_name != "sasrec":
        raise ValueError(f"payload: expected a sasrec model, got {payload.model_name!r}")
    if int(payload.config["n_items"]) != len(item_ids):
        raise ValueError(
            f"item_ids: {len(item_ids)} items, the model has {payload.config['n_items']}"
        )
    if k < 1:
        raise ValueError(f"k: must be >= 1, got {k!r}")
    spark = sequences.sparkSession
    body = functools.partial(
        _sasrec_batches,
        model_bc=spark.sparkContext.broadcast(payload),
        ids_bc=spark.sparkContext.broadcast(np.asarray(item_ids, dtype=np.int64)),
        key=payload.key,
        k=k,
        threads=threads or worker_threads(spark),
    )
    frame = sequences.select(
        F.col(Col.USER_ID).cast("long"),
        F.col(SEQUENCE),
        F.coalesce(F.col(SEEN), F.array().cast("array<bigint>")).alias(SEEN),
    )
    return frame.mapInArrow(body, RETRIEVAL_SCHEMA)
