"""Item features: train popularity, genres multi-hot, year, encoder text, contiguous index.

Popularity reads the train role only; catalogue attributes (title, genres, year, tags) come from
``bronze.items`` of the same delivery. Tags in ``bronze.items.tag_text`` carry no timestamps, so
tags applied after the train window still reach the text (``include_tags=False`` leaves them
out when that matters, e.g. a strict time-cutoff evaluation of the content path).

The content embedding is added by :func:`recsys.features.content.with_content_embedding`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from pyspark.sql import Column, Window
from pyspark.sql import functions as F

from recsys.features.split import train_rows
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: Genre vocabulary, the order of every genre vector (``genres_multi_hot``, ``genre_affinity``):
#: the 19 MovieLens genres alphabetically, then a slot set when an item has none of them
#: ("(no genres listed)" or only unknown genres). Stored vectors and trained models depend on this
#: order: changing it means rewriting every feature ds and retraining.
GENRES: Final[tuple[str, ...]] = (
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
    "(no genres listed)",
)
N_GENRES: Final = len(GENRES)

_SECONDS_PER_DAY: Final = 86_400.0
_YEAR_MEAN: Final = "_year_mean"
_YEAR_STD: Final = "_year_sd"


@dataclass(frozen=True, slots=True)
class ItemFeatureConfig:
    """Knobs of :func:`item_features`.

    Attributes:
        half_life_days: Half-life of ``decayed_popularity`` in days, > 0.
        include_tags: Put ``bronze.items.tag_text`` into the encoder text.
    """

    half_life_days: float = 180.0
    include_tags: bool = True

    def __post_init__(self) -> None:
        if (
            not isinstance(self.half_life_days, int | float)
            or isinstance(self.half_life_days, bool)
            or not math.isfinite(self.half_life_days)
            or self.half_life_days <= 0
        ):
            raise ValueError(
                f"half_life_days: must be a finite number > 0, got {self.half_life_days!r}"
            )


def genres_multi_hot(genres: Column) -> Column:
    """ARRAY<FLOAT> of :data:`N_GENRES` 0/1 flags in :data:`GENRES` order for an ARRAY<STRING>."""
    known = [F.array_contains(genres, F.lit(g)).cast("float") for g in GENRES[:-1]]
    none_known = F.coalesce(
        ~F.arrays_overlap(genres, F.array(*[F.lit(g) for g in GENRES[:-1]])), F.lit(True)
    )
    return F.array(*known, none_known.cast("float"))


def item_text(title: Column, genres: Column, tags: Column | None) -> Column:
    """The encoder input: ``"<title>. Genres: a, b. Tags: x, y."`` (parts left out when empty)."""
    genre_part = F.when(
        F.size(genres) > 0, F.concat(F.lit(" Genres: "), F.array_join(genres, ", "), F.lit("."))
    )
    parts = [F.concat(F.coalesce(title, F.lit("")), F.lit(".")), genre_part]
    if tags is not None:
        parts.append(
            F.when(F.length(F.trim(tags)) > 0, F.concat(F.lit(" Tags: "), tags, F.lit(".")))
        )
    return F.concat_ws("", *parts)


def item_features(
    items: DataFrame,
    split_df: DataFrame,
    as_of_ts: datetime,
    config: ItemFeatureConfig | None = None,
) -> DataFrame:
    """One row per catalogue item with every feature but the content embedding.

    Args:
        items: One delivery of ``bronze.items`` (item_id, title, year, genres, tag_text).
        split_df: Output of :func:`recsys.features.split.split_interactions`; only its train role
            is read.
        as_of_ts: End of the train window (timezone-aware); decay ages are measured to it.
        config: Popularity half-life and text options.

    Returns:
        item_id, item_index (1..n in item_id order), n_interactions, log_count,
        decayed_popularity, genres_multi_hot, year, year_std, text, is_cold, as_of_ts.
    """
    config = config or ItemFeatureConfig()
    train = train_rows(split_df)
    age_days = (F.lit(as_of_ts).cast("double") - F.col(Col.EVENT_TS).cast("double")) / F.lit(
        _SECONDS_PER_DAY
    )
    # Exponential decay with half-life h: weight 2^(-age/h), so an event h days old counts 1/2.
    weight = F.pow(F.lit(0.5), F.greatest(age_days, F.lit(0.0)) / F.lit(config.half_life_days))
    popularity = train.groupBy(Col.ITEM_ID).agg(
        F.count(F.lit(1)).alias(Col.N_INTERACTIONS),
        F.sum(weight).alias(Col.DECAYED_POPULARITY),
    )
    year_stats = items.agg(
        F.avg(Col.YEAR).alias(_YEAR_MEAN), F.stddev_pop(Col.YEAR).alias(_YEAR_STD)
    )
    # A contiguous index needs one ordered pass over all items: a single partition on purpose
    # (items are few next to interactions), hence Spark's "No Partition Defined" warning.
    index = F.row_number().over(Window.orderBy(Col.ITEM_ID))
    n = F.coalesce(F.col(Col.N_INTERACTIONS), F.lit(0)).cast("bigint")
    year_z = (F.col(Col.YEAR) - F.col(_YEAR_MEAN)) / F.col(_YEAR_STD)
    tags = F.col(Col.TAG_TEXT) if config.include_tags else None
    return (
        items.join(popularity, Col.ITEM_ID, "left")
        .crossJoin(F.broadcast(year_stats))
        .select(
            F.col(Col.ITEM_ID),
            index.cast("int").alias(Col.ITEM_INDEX),
            n.alias(Col.N_INTERACTIONS),
            F.log1p(n).cast("float").alias(Col.LOG_COUNT),
            F.coalesce(F.col(Col.DECAYED_POPULARITY), F.lit(0.0))
            .cast("float")
            .alias(Col.DECAYED_POPULARITY),
            genres_multi_hot(F.col(Col.GENRES)).alias(Col.GENRES_MULTI_HOT),
            F.col(Col.YEAR),
            F.coalesce(F.when(F.col(_YEAR_STD) > 0, year_z), F.lit(0.0))
            .cast("float")
            .alias(Col.YEAR_STD),
            item_text(F.col(Col.TITLE), F.col(Col.GENRES), tags).alias(Col.TEXT),
            (n == 0).alias(Col.IS_COLD),
            F.lit(as_of_ts).alias(Col.AS_OF_TS),
        )
    )
