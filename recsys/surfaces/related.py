"""Related items: top-K cosine neighbours of every item's embedding, each with a short reason.

Similarity: the item-tower embeddings of ``serve.item_embeddings`` (cold items there are embedded
from content alone). The matrix (n x d float32; 20k x 128 = 10 MB) is collected once, broadcast,
and each partition of items computes its exact neighbours with
:func:`recsys.surfaces.similarity.top_k_cosine` (blocked matrix products) in a ``mapInPandas``.

Reason, first that applies (native Spark expressions):

1. shared genres, in the item's genre order: ``"Also Comedy, Drama"``;
2. shared tags (case-insensitive, at most :attr:`RelatedConfig.max_tags`):
   ``"Also tagged: dark comedy, twist ending"``;
3. co-watching, when at least ``min_co_users`` users have both items among their train
   interactions: ``"People who watched Heat also watched Ronin"``;
4. otherwise ``"Similar to Heat"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys.surfaces.similarity import top_k_cosine, unit_rows
from recsys.validation import check_typed_int
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: Columns of :func:`similar_pairs`.
PAIR_SCHEMA: Final = T.StructType(
    [
        T.StructField(Col.ITEM_ID, T.LongType(), False),
        T.StructField(Col.RANK, T.IntegerType(), False),
        T.StructField(Col.RELATED_ITEM_ID, T.LongType(), False),
        T.StructField(Col.SCORE, T.FloatType(), False),
    ]
)
#: Columns of :func:`with_reasons`.
RELATED_COLUMNS: Final = (Col.ITEM_ID, Col.RANK, Col.RELATED_ITEM_ID, Col.SCORE, Col.REASON)
_TAGS = "_tags"
_SHARED_GENRES = "_shared_genres"
_SHARED_TAGS = "_shared_tags"
_CO_USERS = "_co_users"
_TITLE_A = "_title_a"
_TITLE_B = "_title_b"
_OTHER_USER = "_other_user"
_OTHER_ITEM = "_other_item"


@dataclass(frozen=True, slots=True)
class RelatedConfig:
    """Parameters of the related-items surface.

    Attributes:
        top_k: Related items per item, >= 1 (fewer when the catalogue is smaller).
        block_rows: Query rows per matrix product, >= 1 (memory: block_rows x n_items floats).
        partitions: Spark partitions the items are split into for the neighbour search, >= 1.
        max_genres: Shared genres named in a reason, >= 1.
        max_tags: Shared tags named in a reason, >= 1.
        min_co_users: Users who must have both items in train for the co-watching reason, >= 1.
    """

    top_k: int = 50
    block_rows: int = 512
    partitions: int = 4
    max_genres: int = 3
    max_tags: int = 3
    min_co_users: int = 2

    def __post_init__(self) -> None:
        for name in ("top_k", "block_rows", "partitions", "max_genres", "max_tags", "min_co_users"):
            check_typed_int(name, getattr(self, name), 1)


def similar_pairs(embeddings: DataFrame, config: RelatedConfig) -> DataFrame:
    """Top-K neighbours of every item: ``item_id, rank, related_item_id, score`` (PAIR_SCHEMA).

    Collects ``item_id`` and ``embedding`` to the driver once (one row per item; a repeated id
    keeps one of its vectors) and broadcasts the unit-norm matrix.

    Args:
        embeddings: Rows with ``item_id`` (BIGINT) and ``embedding`` (ARRAY<FLOAT>, equal
            lengths) of one model version and day.
        config: ``top_k``, ``block_rows`` and ``partitions``.

    Raises:
        ValueError: the embeddings do not all have the same length.
    """
    spark = embeddings.sparkSession
    pdf = (
        embeddings.select(Col.ITEM_ID, Col.EMBEDDING)
        .dropDuplicates([Col.ITEM_ID])
        .toPandas()
        .sort_values(Col.ITEM_ID, kind="mergesort")
    )
    if pdf.empty:
        return spark.createDataFrame([], PAIR_SCHEMA)
    lengths = pdf[Col.EMBEDDING].map(len)
    if lengths.nunique() != 1:
        raise ValueError(
            f"embeddings: vectors of different lengths {sorted(lengths.unique())[:5]!r}"
        )
    ids = pdf[Col.ITEM_ID].to_numpy(dtype=np.int64)
    unit = unit_rows(np.stack(list(pdf[Col.EMBEDDING])))
    shared = spark.sparkContext.broadcast((ids, unit))
    k, block_rows = config.top_k, config.block_rows

    def neighbours(batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        all_ids, matrix = shared.value
        for batch in batches:
            queries = batch[Col.ITEM_ID].to_numpy(dtype=np.int64)
            positions = np.searchsorted(all_ids, queries)
            cols, sims = top_k_cosine(matrix, positions, k, block_rows)
            width = cols.shape[1]
            yield pd.DataFrame(
                {
                    Col.ITEM_ID: np.repeat(queries, width),
                    Col.RANK: np.tile(np.arange(1, width + 1, dtype=np.int32), queries.size),
                    Col.RELATED_ITEM_ID: all_ids[cols.ravel()],
                    Col.SCORE: sims.ravel().astype(np.float32),
                }
            )

    queries = spark.createDataFrame(pd.DataFrame({Col.ITEM_ID: ids}))
    return queries.repartition(config.partitions).mapInPandas(neighbours, PAIR_SCHEMA)


def _item_side(items: DataFrame) -> DataFrame:
    """``item_id, title, genres, _tags`` with tags lower-cased, trimmed and de-duplicated."""
    tags = F.array_distinct(
        F.filter(
            F.transform(F.split(F.lower(F.col(Col.TAG_TEXT)), ","), lambda t: F.trim(t)),
            lambda t: t != F.lit(""),
        )
    )
    return items.select(
        Col.ITEM_ID,
        Col.TITLE,
        F.coalesce(F.col(Col.GENRES), F.array().cast("array<string>")).alias(Col.GENRES),
        F.coalesce(tags, F.array().cast("array<string>")).alias(_TAGS),
    ).dropDuplicates([Col.ITEM_ID])


def co_users(pairs: DataFrame, train: DataFrame) -> DataFrame:
    """``item_id, related_item_id, _co_users``: users with both items among ``train`` rows.

    Only the given pairs are counted (work ~ sum over pairs of the item's user count), not the
    full item x item co-occurrence matrix.
    """
    seen = train.select(Col.USER_ID, Col.ITEM_ID).distinct()
    other = seen.select(
        F.col(Col.USER_ID).alias(_OTHER_USER), F.col(Col.ITEM_ID).alias(_OTHER_ITEM)
    )
    return (
        pairs.select(Col.ITEM_ID, Col.RELATED_ITEM_ID)
        .join(seen, Col.ITEM_ID)
        .join(
            other,
            (F.col(Col.RELATED_ITEM_ID) == F.col(_OTHER_ITEM))
            & (F.col(Col.USER_ID) == F.col(_OTHER_USER)),
        )
        .groupBy(Col.ITEM_ID, Col.RELATED_ITEM_ID)
        .agg(F.count(F.lit(1)).alias(_CO_USERS))
    )


def with_reasons(
    pairs: DataFrame, items: DataFrame, train: DataFrame, config: RelatedConfig
) -> DataFrame:
    """``pairs`` with a ``reason`` column (module docstring); columns :data:`RELATED_COLUMNS`.

    Args:
        pairs: Output of :func:`similar_pairs`.
        items: ``bronze.items`` rows (``item_id, title, genres, tag_text``) of one delivery.
        train: Train interactions (``user_id, item_id``) for the co-watching reason.
        config: Reason limits.
    """
    side = _item_side(items)
    a = side.select(
        F.col(Col.ITEM_ID),
        F.col(Col.TITLE).alias(_TITLE_A),
        F.col(Col.GENRES).alias("_genres_a"),
        F.col(_TAGS).alias("_tags_a"),
    )
    b = side.select(
        F.col(Col.ITEM_ID).alias(Col.RELATED_ITEM_ID),
        F.col(Col.TITLE).alias(_TITLE_B),
        F.col(Col.GENRES).alias("_genres_b"),
        F.col(_TAGS).alias("_tags_b"),
    )
    empty = F.array().cast("array<string>")
    shared = (
        pairs.join(a, Col.ITEM_ID, "left")
        .join(b, Col.RELATED_ITEM_ID, "left")
        .withColumns(
            {
                _SHARED_GENRES: F.array_intersect(
                    F.coalesce(F.col("_genres_a"), empty), F.coalesce(F.col("_genres_b"), empty)
                ),
                _SHARED_TAGS: F.array_intersect(
                    F.coalesce(F.col("_tags_a"), empty), F.coalesce(F.col("_tags_b"), empty)
                ),
            }
        )
    )
    need_co = shared.where((F.size(_SHARED_GENRES) == 0) & (F.size(_SHARED_TAGS) == 0)).select(
        Col.ITEM_ID, Col.RELATED_ITEM_ID
    )
    counted = shared.join(co_users(need_co, train), [Col.ITEM_ID, Col.RELATED_ITEM_ID], "left")
    title_a = F.coalesce(F.col(_TITLE_A), F.lit("this item"))
    title_b = F.coalesce(F.col(_TITLE_B), F.lit("this one"))
    reason = (
        F.when(
            F.size(_SHARED_GENRES) > 0,
            F.concat(
                F.lit("Also "), F.array_join(F.slice(_SHARED_GENRES, 1, config.max_genres), ", ")
            ),
        )
        .when(
            F.size(_SHARED_TAGS) > 0,
            F.concat(
                F.lit("Also tagged: "),
                F.array_join(F.slice(_SHARED_TAGS, 1, config.max_tags), ", "),
            ),
        )
        .when(
            F.coalesce(F.col(_CO_USERS), F.lit(0)) >= F.lit(config.min_co_users),
            F.concat(F.lit("People who watched "), title_a, F.lit(" also watched "), title_b),
        )
        .otherwise(F.concat(F.lit("Similar to "), title_a))
    )
    return counted.select(
        Col.ITEM_ID, Col.RANK, Col.RELATED_ITEM_ID, Col.SCORE, reason.alias(Col.REASON)
    )
