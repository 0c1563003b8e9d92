"""Fused scoring in Spark: one row per user, one ``mapInArrow`` from features to the top N.

The Spark twin of :mod:`recsys.scoring.fused`: :func:`fused_input` joins each user's inputs
into one row (features, two-tower vector, known items, event sequences; every join keyed by
user, nothing collected), and :func:`fused_spark` runs :func:`recsys.scoring.fused.score_batch`
(or :func:`recsys.scoring.fused.candidate_batch`) on every Arrow batch of users. Per user only
the ranked top ``n`` of each set leaves the Python worker; the ``2k`` candidates per user the
two-step path wrote to ``serve.candidates`` and shuffled again for ranking never exist as rows.

What is broadcast is bounded by the catalogue, never by users: the item arrays (two-tower
vectors, genres, counts, SASRec item vectors, and the co-visitation matrix truncated to
``top_n`` entries per item), the fallback and popularity lists, and the model weights.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys.models.device import pick_device
from recsys.models.ranker import InteractionRanker
from recsys.models.sasrec import SequentialRecommender
from recsys.scoring.fused import (
    HAS_EMBEDDING,
    HAS_FEATURES,
    REC_SET_CODE,
    WARM,
    FusedItems,
    FusedModels,
    candidate_batch,
    score_batch,
)
from recsys.scoring.ranking import RANKED_SCHEMA, SOURCES
from recsys.scoring.retrieval import RETRIEVAL_SCHEMA, SEEN
from recsys.scoring.runtime import ModelPayload, cached, set_threads, worker_threads
from recsys.scoring.sequential import SEQUENCE
from recsys.warehouse.tables import Col, RecSet

if TYPE_CHECKING:
    from pyspark.broadcast import Broadcast
    from pyspark.sql import Column, DataFrame

#: The ranked lists of :data:`recsys.scoring.ranking.RANKED_SCHEMA` plus each user's rec set.
FUSED_RANKED_SCHEMA = T.StructType(
    [*RANKED_SCHEMA.fields, T.StructField(REC_SET_CODE, T.IntegerType(), False)]
)
#: The candidates of :data:`recsys.scoring.retrieval.RETRIEVAL_SCHEMA` plus their source.
FUSED_CANDIDATE_SCHEMA = T.StructType(
    [*RETRIEVAL_SCHEMA.fields, T.StructField(Col.SOURCE, T.IntegerType(), False)]
)
_F, _E = "_f", "_e"


def _zeros(width: int) -> Column:
    return F.array_repeat(F.lit(0.0).cast("float"), width)


def _empty_ids() -> Column:
    return F.array().cast("array<bigint>")


def fused_input(
    users: DataFrame,
    features: DataFrame,
    user_embeddings: DataFrame,
    seen: DataFrame,
    sequences: Mapping[str, DataFrame],
    *,
    dense_dim: int,
    n_genres: int,
    dim: int,
    partitions: int,
    restrict: bool = False,
) -> DataFrame:
    """One row per user of ``users``, in ``partitions`` partitions by user: the input of
    :func:`recsys.scoring.fused.score_batch`.

    Args:
        users: ``user_id`` of every user to score (duplicates allowed).
        features: ``features.user_features`` rows: ``user_id, dense, genre_affinity, history``.
        user_embeddings: ``user_id, embedding`` (two-tower vectors of the day).
        seen: ``user_id, item_id`` known pairs (excluded from every list).
        sequences: Output column -> ``user_id, _sequence`` frame (item indices, oldest first).
        dense_dim, n_genres, dim: Widths of the zero vectors of users without features.
        partitions: Partitions of the by-user repartition.
        restrict: Semi-join every input with ``users`` first (a small sample of users, so the
            per-user aggregations run for the sample only).

    A user has features (:data:`recsys.scoring.fused.HAS_FEATURES`) when both a features row
    and a two-tower vector exist, as the two-step ranking's inner join; without, ``dense``,
    ``genre_affinity`` and ``embedding`` are zeros and ``history`` is empty. Warm
    (:data:`recsys.scoring.fused.WARM`): a features row with a non-empty history.
    """
    uid = F.col(Col.USER_ID).cast("long").alias(Col.USER_ID)
    base = users.select(uid).distinct()

    def only_users(df: DataFrame) -> DataFrame:
        return df.join(F.broadcast(base), Col.USER_ID, "left_semi") if restrict else df

    feats = only_users(features.select(uid, Col.DENSE, Col.GENRE_AFFINITY, Col.HISTORY))
    emb = only_users(user_embeddings.select(uid, Col.EMBEDDING))
    lists = (
        only_users(seen.select(uid, F.col(Col.ITEM_ID).cast("long").alias(Col.ITEM_ID)))
        .groupBy(Col.USER_ID)
        .agg(F.collect_list(Col.ITEM_ID).alias(SEEN))
    )
    frame = (
        base.repartition(partitions, Col.USER_ID)
        .join(feats.withColumn(_F, F.lit(True)), Col.USER_ID, "left")
        .join(emb.withColumn(_E, F.lit(True)), Col.USER_ID, "left")
        .join(lists, Col.USER_ID, "left")
    )
    for column, seq in sequences.items():
        frame = frame.join(
            only_users(seq.select(uid, F.col(SEQUENCE).alias(column))), Col.USER_ID, "left"
        )
    has_features = F.coalesce(F.col(_F) & F.col(_E), F.lit(False))
    return frame.select(
        Col.USER_ID,
        F.coalesce(F.col(_F) & (F.size(Col.HISTORY) > 0), F.lit(False)).alias(WARM),
        has_features.alias(HAS_FEATURES),
        F.coalesce(F.col(_E), F.lit(False)).alias(HAS_EMBEDDING),
        F.when(has_features, F.col(Col.DENSE)).otherwise(_zeros(dense_dim)).alias(Col.DENSE),
        F.when(has_features, F.col(Col.GENRE_AFFINITY))
        .otherwise(_zeros(n_genres))
        .alias(Col.GENRE_AFFINITY),
        F.when(has_features, F.col(Col.EMBEDDING)).otherwise(_zeros(dim)).alias(Col.EMBEDDING),
        F.when(has_features, F.col(Col.HISTORY)).otherwise(_empty_ids()).alias(Col.HISTORY),
        F.coalesce(F.col(SEEN), _empty_ids()).alias(SEEN),
        *[F.coalesce(F.col(c), _empty_ids()).alias(c) for c in sequences],
    )


def _fused_batches(
    batches: Iterator[pa.RecordBatch],
    *,
    items_bc: Broadcast[FusedItems],
    models_bc: Broadcast[dict[str, tuple[ModelPayload, str | None]]],
    key: str,
    k: int,
    n: int,
    threads: int,
    candidates: bool,
) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: the models built once per Python worker, then one pure call per
    batch."""
    set_threads(threads)
    device = pick_device()

    def load() -> FusedModels:
        payloads = models_bc.value
        # The SASRec retriever and the ranker's sequencer of one bundle are usually one
        # artifact: build it once, so score_batch can share its forward pass.
        modules: dict[str, Any] = {}
        built: dict[str, tuple[Any, str | None]] = {}
        for name, (p, column) in payloads.items():
            if p.key not in modules:
                modules[p.key] = p.build(device)
            built[name] = (modules[p.key], column)
        retriever = built.get("retriever")
        sequencer = built.get("sequencer")
        return FusedModels.load(
            items_bc.value,
            cast(InteractionRanker, built["ranker"][0]),
            device,
            retriever=None if retriever is None else cast(SequentialRecommender, retriever[0]),
            retriever_column=None if retriever is None else retriever[1],
            sequencer=None if sequencer is None else cast(SequentialRecommender, sequencer[0]),
            sequencer_column=None if sequencer is None else sequencer[1],
        )

    models = cached(key + "@" + str(device), load)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        yield candidate_batch(batch, models, k) if candidates else score_batch(batch, models, k, n)


def fused_spark(
    frame: DataFrame,
    items: FusedItems,
    ranker: ModelPayload,
    k: int,
    n: int,
    *,
    retriever: tuple[ModelPayload, str] | None = None,
    sequencer: tuple[ModelPayload, str] | None = None,
    candidates: bool = False,
    threads: int | None = None,
) -> DataFrame:
    """Fused scoring of every row of ``frame`` (:func:`fused_input`; lazy).

    Args:
        frame: One row per user.
        items: Item-side inputs (broadcast).
        ranker: The ranker.
        k: Candidates per user and source, >= 1.
        n: Recommendations per user and set, ``1 <= n <= k``.
        retriever: SASRec candidates: the model and the sequence column it reads.
        sequencer: The SASRec the ranker reads, and its sequence column.
        candidates: Return the merged candidates instead of the ranked lists.
        threads: torch threads per Python worker.

    Returns:
        Ranked: ``user_id, rank, item_id, score, source STRING, because_item_id, rec_set
        STRING`` (``model`` or ``popularity``). Candidates: ``user_id, item_id,
        retrieval_score, candidate_rank, source STRING``. Unordered.
    """
    if not isinstance(k, int) or not isinstance(n, int) or not 1 <= n <= k:
        raise ValueError(f"k, n: need 1 <= n <= k, got k={k!r}, n={n!r}")
    if ranker.model_name != "ranker":
        raise ValueError(f"ranker: expected a ranker model, got {ranker.model_name!r}")
    payloads: dict[str, tuple[ModelPayload, str | None]] = {"ranker": (ranker, None)}
    for name, given in (("retriever", retriever), ("sequencer", sequencer)):
        if given is not None:
            if given[0].model_name != "sasrec":
                raise ValueError(f"{name}: expected a sasrec model, got {given[0].model_name!r}")
            payloads[name] = given
    spark = frame.sparkSession
    body = functools.partial(
        _fused_batches,
        items_bc=spark.sparkContext.broadcast(items),
        models_bc=spark.sparkContext.broadcast(payloads),
        key="fused/" + uuid.uuid4().hex,
        k=k,
        n=n,
        threads=threads or worker_threads(spark),
        candidates=candidates,
    )
    codes = F.array(*[F.lit(s) for s in SOURCES])
    source = F.element_at(codes, F.col(Col.SOURCE) + 1)
    if candidates:
        out = frame.mapInArrow(body, FUSED_CANDIDATE_SCHEMA)
        return out.withColumn(Col.SOURCE, source)
    out = frame.mapInArrow(body, FUSED_RANKED_SCHEMA)
    rec_set: Any = F.when(F.col(REC_SET_CODE) == 0, F.lit(RecSet.MODEL)).otherwise(
        F.lit(RecSet.POPULARITY)
    )
    return out.withColumn(Col.SOURCE, source).withColumn(Col.REC_SET, rec_set).drop(REC_SET_CODE)
