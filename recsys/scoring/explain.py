"""Explanation strings of recommendations, and the item titles and genres they quote.

Every row gets one: ``Because you watched <title>`` for a model candidate (``two_tower`` or
``sasrec`` source) whose user has a history item (the most similar one, chosen by
:func:`recsys.kernels.explain_items`); otherwise ``Popular in <genre>`` with the item's
first genre in :data:`recsys.features.item_features.GENRES` order, or ``Popular right now`` when
the item has none.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Final

from pyspark.sql import Window
from pyspark.sql import functions as F

from recsys.features.item_features import GENRES
from recsys.scoring.ranking import BECAUSE
from recsys.training.data import table_slice
from recsys.warehouse.tables import BRONZE_ITEMS, FEATURES_ITEM_FEATURES, Col

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

BECAUSE_PREFIX: Final = "Because you watched "
POPULAR_PREFIX: Final = "Popular in "
POPULAR_NOW: Final = "Popular right now"
#: Sources whose rows are explained by a history item.
MODEL_SOURCES: Final = ("two_tower", "sasrec")
#: The title part of ``features.item_features.text`` ("<title>. Genres: ... Tags: ...").
_TITLE_FROM_TEXT: Final = r"^(.*?)\.(?: Genres: | Tags: |$)"
_BECAUSE_TITLE: Final = "_because_title"


def first_genre(multi_hot: Column) -> Column:
    """The first set genre of a GENRES-ordered multi-hot; NULL when none (or only the
    no-genre slot)."""
    pos = F.array_position(multi_hot, F.lit(1.0).cast("float"))
    names = F.array(*[F.lit(g) for g in GENRES[:-1]])
    return F.when((pos > 0) & (pos < len(GENRES)), F.element_at(names, pos.cast("int")))


def item_labels(spark: SparkSession, ds: date, split_id: str) -> DataFrame:
    """``item_id, title, genre`` of every item of ``features.item_features`` (ds, split_id).

    The title is the newest ``bronze.items`` one (deliveries up to ``ds``), else the title part
    of the feature's text; ``genre`` is NULL for items without a known genre.
    """
    items = table_slice(spark, FEATURES_ITEM_FEATURES, ds, split_id).select(
        Col.ITEM_ID,
        F.regexp_extract(F.col(Col.TEXT), _TITLE_FROM_TEXT, 1).alias("_text_title"),
        first_genre(F.col(Col.GENRES_MULTI_HOT)).alias(Col.GENRE),
    )
    newest = Window.partitionBy(Col.ITEM_ID).orderBy(F.col(Col.DS).desc(), F.col(Col.SOURCE))
    bronze = (
        spark.table(BRONZE_ITEMS.qualified_name)
        .where(F.col(Col.DS) <= F.lit(ds))
        .withColumn("_n", F.row_number().over(newest))
        .where(F.col("_n") == 1)
        .select(Col.ITEM_ID, F.col(Col.TITLE).alias("_bronze_title"))
    )
    title = F.coalesce(
        F.col("_bronze_title"),
        F.when(F.length("_text_title") > 0, F.col("_text_title")),
        F.concat(F.lit("item "), F.col(Col.ITEM_ID).cast("string")),
    )
    return items.join(bronze, Col.ITEM_ID, "left").select(
        Col.ITEM_ID, title.alias(Col.TITLE), Col.GENRE
    )


def with_explanations(ranked: DataFrame, labels: DataFrame) -> DataFrame:
    """``ranked`` (with ``item_id, source, because_item_id``) plus ``explanation``, minus
    ``because_item_id``."""
    because = labels.select(
        F.col(Col.ITEM_ID).alias(BECAUSE), F.col(Col.TITLE).alias(_BECAUSE_TITLE)
    )
    genre = labels.select(Col.ITEM_ID, Col.GENRE)
    text = (
        F.when(
            F.col(Col.SOURCE).isin(*MODEL_SOURCES) & F.col(_BECAUSE_TITLE).isNotNull(),
            F.concat(F.lit(BECAUSE_PREFIX), F.col(_BECAUSE_TITLE)),
        )
        .when(F.col(Col.GENRE).isNotNull(), F.concat(F.lit(POPULAR_PREFIX), F.col(Col.GENRE)))
        .otherwise(F.lit(POPULAR_NOW))
    )
    joined = ranked.join(F.broadcast(because), BECAUSE, "left").join(
        F.broadcast(genre), Col.ITEM_ID, "left"
    )
    return joined.withColumn(Col.EXPLANATION, text).drop(BECAUSE, _BECAUSE_TITLE, Col.GENRE)
