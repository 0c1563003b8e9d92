"""Related items in Spark: neighbours (self excluded, ordered) and every kind of reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from recsys.surfaces.related import RELATED_COLUMNS, RelatedConfig, similar_pairs, with_reasons
from recsys.surfaces.similarity import top_k_cosine, unit_rows
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark

EMB_DDL = f"{Col.ITEM_ID} BIGINT, {Col.EMBEDDING} ARRAY<FLOAT>"
ITEMS_DDL = (
    f"{Col.ITEM_ID} BIGINT, {Col.TITLE} STRING, {Col.GENRES} ARRAY<STRING>, {Col.TAG_TEXT} STRING"
)
TRAIN_DDL = f"{Col.USER_ID} BIGINT, {Col.ITEM_ID} BIGINT"


def embeddings(spark: SparkSession, vectors: dict[int, list[float]]) -> DataFrame:
    return spark.createDataFrame([(i, v) for i, v in vectors.items()], EMB_DDL)


def test_similar_pairs_match_numpy(spark: SparkSession) -> None:
    rng = np.random.default_rng(0)
    ids = rng.permutation(np.arange(100, 400, 3))[:80]
    vecs = rng.normal(size=(80, 8)).astype(np.float32)
    df = embeddings(spark, {int(i): [float(x) for x in v] for i, v in zip(ids, vecs, strict=True)})
    config = RelatedConfig(top_k=5, block_rows=16, partitions=3)
    got = similar_pairs(df, config).toPandas().sort_values([Col.ITEM_ID, Col.RANK])
    order = np.argsort(ids)
    sorted_ids, unit = ids[order], unit_rows(vecs[order])
    cols, scores = top_k_cosine(unit, np.arange(80), 5)
    assert len(got) == 80 * 5
    for pos, item in enumerate(sorted_ids):
        rows = got[got[Col.ITEM_ID] == item]
        assert rows[Col.RANK].tolist() == [1, 2, 3, 4, 5]
        assert rows[Col.RELATED_ITEM_ID].tolist() == sorted_ids[cols[pos]].tolist()
        assert item not in rows[Col.RELATED_ITEM_ID].tolist()
        assert np.allclose(rows[Col.SCORE], scores[pos], atol=1e-6)


def test_reasons_genres_then_tags_then_cowatching_then_similar(spark: SparkSession) -> None:
    # Item 1's neighbours by cosine: 2 (shares a genre), 3 (shares a tag), 4 (co-watched by two
    # users), 5 (co-watched by one user only: not enough), in that order.
    vectors = {
        1: [1.0, 0.0],
        2: [0.99, 0.14],
        3: [0.95, 0.31],
        4: [0.8, 0.6],
        5: [0.6, 0.8],
    }
    items = spark.createDataFrame(
        [
            (1, "Heat", ["Crime", "Drama", "Action"], "heist, Al Pacino"),
            (2, "Ronin", ["Action", "Crime"], None),
            (3, "Thief", ["Noir"], "HEIST , night"),
            (4, "Casino", ["Epic"], "vegas"),
            (5, "Collateral", [], None),
        ],
        ITEMS_DDL,
    )
    train = spark.createDataFrame(
        [(10, 1), (10, 4), (11, 1), (11, 4), (12, 1), (12, 5), (12, 5)], TRAIN_DDL
    )
    config = RelatedConfig(top_k=4, min_co_users=2)
    pairs = similar_pairs(embeddings(spark, vectors), config)
    related = with_reasons(pairs, items, train, config)
    assert tuple(related.columns) == RELATED_COLUMNS
    rows = related.where(f"{Col.ITEM_ID} = 1").orderBy(Col.RANK).collect()
    assert [r[Col.RELATED_ITEM_ID] for r in rows] == [2, 3, 4, 5]
    assert [r[Col.REASON] for r in rows] == [
        "Also Crime, Action",
        "Also tagged: heist",
        "People who watched Heat also watched Casino",
        "Similar to Heat",
    ]
    # Every item has min(k, n - 1) neighbours, never itself.
    all_rows = related.collect()
    assert len(all_rows) == 5 * 4
    assert all(r[Col.ITEM_ID] != r[Col.RELATED_ITEM_ID] for r in all_rows)


def test_missing_item_metadata_still_gets_a_reason(spark: SparkSession) -> None:
    pairs = similar_pairs(embeddings(spark, {7: [1.0, 0.0], 8: [0.0, 1.0]}), RelatedConfig())
    empty_items = spark.createDataFrame([], ITEMS_DDL)
    empty_train = spark.createDataFrame([], TRAIN_DDL)
    rows = with_reasons(pairs, empty_items, empty_train, RelatedConfig()).collect()
    assert sorted(r[Col.REASON] for r in rows) == ["Similar to this item"] * 2


def test_empty_and_ragged_embeddings(spark: SparkSession) -> None:
    assert similar_pairs(spark.createDataFrame([], EMB_DDL), RelatedConfig()).count() == 0
    with pytest.raises(ValueError, match="embeddings"):
        similar_pairs(embeddings(spark, {1: [1.0], 2: [1.0, 0.0]}), RelatedConfig())
