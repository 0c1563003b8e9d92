"""A tiny, seeded, learnable feature set written straight into the ``features.*`` tables (tests).

For tests of the training and evaluation jobs without running ingest and the feature
job: two user groups, each preferring one half of the catalogue and walking through it in item
order (so the next item is predictable), one genre per half, a small content vector, and two
cold items. Every user has ``n_positives`` positives: all but the last two are train, then one
validation and one test positive.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from pyspark.sql import functions as F

from recsys.training.trainers import SplitData, load_split
from recsys.warehouse.io import with_conflict_retry
from recsys.warehouse.tables import (
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_ITEM_FEATURES,
    FEATURES_RANKER_EXAMPLES,
    FEATURES_USER_FEATURES,
    Col,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

N_GENRES = 20
DENSE_DIM = 25
CONTENT_DIM = 8


def _write(
    spark: SparkSession, table: TableRef, rows: list[dict[str, Any]], ds: date, split_id: str
) -> None:
    schema = spark.table(table.qualified_name).schema
    names = [f.name for f in schema.fields]
    df = spark.createDataFrame([tuple(r.get(n) for n in names) for r in rows], schema)
    condition = (F.col(Col.DS) == F.lit(ds)) & (F.col(Col.SPLIT_ID) == F.lit(split_id))
    with_conflict_retry(lambda: df.writeTo(table.qualified_name).overwrite(condition), str(table))


def write_tiny_features(
    spark: SparkSession,
    ds: date,
    split_id: str = "leave_last_out",
    *,
    n_users: int = 40,
    n_items: int = 30,
    n_positives: int = 8,
    seed: int = 0,
) -> None:
    """Replace ``(ds, split_id)`` of the four feature tables with a tiny learnable data set."""
    rng = np.random.default_rng(seed)
    half = n_items // 2
    start = datetime(2020, 1, 1, tzinfo=UTC)
    cold = {half - 1, n_items - 1}  # last item of each half: never in train
    inter: list[dict[str, Any]] = []
    history: dict[int, list[int]] = {}
    for u in range(1, n_users + 1):
        group = u % 2
        first = int(rng.integers(0, half - n_positives - 1))
        seq = [group * half + first + j for j in range(n_positives)]
        for j, item in enumerate(seq):
            role = (
                "train"
                if j < n_positives - 2
                else ("validation" if j == n_positives - 2 else "test")
            )
            if role == "train" and item in cold:
                continue
            inter.append(
                {
                    Col.USER_ID: u,
                    Col.ITEM_ID: item + 1,
                    Col.RATING: 5.0,
                    Col.IS_POSITIVE: True,
                    Col.EVENT_TS: start + timedelta(days=u, hours=j),
                    Col.ROLE: role,
                }
            )
            if role == "train":
                history.setdefault(u, []).append(item + 1)
    counts: dict[int, int] = {}
    for r in inter:
        if r[Col.ROLE] == "train":
            counts[r[Col.ITEM_ID]] = counts.get(r[Col.ITEM_ID], 0) + 1
    items = []
    for i in range(n_items):
        genres = [0.0] * N_GENRES
        genres[i // half] = 1.0
        content = rng.normal(size=CONTENT_DIM) * 0.1
        content[i // half] += 1.0
        n = counts.get(i + 1, 0)
        items.append(
            {
                Col.ITEM_ID: i + 1,
                Col.ITEM_INDEX: i + 1,
                Col.N_INTERACTIONS: n,
                Col.LOG_COUNT: float(np.log1p(n)),
                Col.DECAYED_POPULARITY: float(n),
                Col.GENRES_MULTI_HOT: genres,
                Col.YEAR: 2000,
                Col.YEAR_STD: 0.0,
                Col.TEXT: f"item {i + 1}",
                Col.CONTENT_EMBEDDING: [float(x) for x in content],
                Col.IS_COLD: n == 0,
                Col.AS_OF_TS: start,
            }
        )
    users = []
    for u, hist in history.items():
        affinity = [0.0] * N_GENRES
        affinity[u % 2] = 1.0
        dense = [float(x) for x in rng.normal(size=DENSE_DIM - N_GENRES)] + affinity
        users.append(
            {
                Col.USER_ID: u,
                Col.N_INTERACTIONS: len(hist),
                Col.N_POSITIVE: len(hist),
                Col.DAYS_SINCE_LAST: 1.0,
                Col.MEAN_RATING: 5.0,
                Col.STD_RATING: 0.0,
                Col.GENRE_AFFINITY: affinity,
                Col.HISTORY: hist,
                Col.HISTORY_INDEX: hist,
                Col.DENSE: dense,
                Col.AS_OF_TS: start,
            }
        )
    examples = []
    for r in inter:
        u = r[Col.USER_ID]
        base = {Col.USER_ID: u, Col.ROLE: r[Col.ROLE]}
        examples.append({**base, Col.ITEM_ID: r[Col.ITEM_ID], Col.LABEL: 1.0, Col.KIND: "positive"})
        other = (1 - u % 2) * half  # an item of the other half: a negative
        neg = other + int(rng.integers(0, half)) + 1
        examples.append({**base, Col.ITEM_ID: neg, Col.LABEL: 0.0, Col.KIND: "popular_negative"})
    stamp = {Col.SPLIT_ID: split_id, Col.DS: ds}
    for table, rows in (
        (FEATURES_INTERACTIONS_SPLIT, inter),
        (FEATURES_ITEM_FEATURES, items),
        (FEATURES_USER_FEATURES, users),
        (FEATURES_RANKER_EXAMPLES, examples),
    ):
        _write(spark, table, [{**r, **stamp} for r in rows], ds, split_id)


def tiny_split(spark: SparkSession, ds: date, history_len: int = 10) -> SplitData:
    """Write the default tiny feature set for ``ds`` and load its ``leave_last_out`` split, as
    the trainers read it (``history_len`` items of history per user)."""
    write_tiny_features(spark, ds)
    return load_split(spark, ds, "leave_last_out", history_len=history_len)
