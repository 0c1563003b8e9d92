"""jobs.related_items end to end on literal embeddings: rows, reasons, one commit, exit codes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pytest
from pyspark.sql import functions as F

from jobs import related_items
from recsys.warehouse.completion import table_version
from recsys.warehouse.io import replace_delivery, with_conflict_retry
from recsys.warehouse.tables import (
    BRONZE_INTERACTIONS,
    BRONZE_ITEMS,
    FEATURES_INTERACTIONS_SPLIT,
    SERVE_ITEM_EMBEDDINGS,
    SERVE_RELATED_ITEMS,
    Col,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SOURCE = "related-tiny"
DELIVERY = date(2031, 2, 1)
DS = date(2031, 2, 3)
TWO_VERSIONS_DS = date(2031, 2, 4)
VECTORS = {
    1: [1.0, 0.0, 0.0],
    2: [0.9, 0.1, 0.0],
    3: [0.0, 1.0, 0.0],
    4: [0.1, 0.9, 0.1],
    5: [0.0, 0.0, 1.0],
    6: [0.0, 0.1, 0.9],
}


def write(spark: SparkSession, table: Any, rows: list[dict[str, Any]], where: Any) -> None:
    schema = spark.table(table.qualified_name).schema
    df = spark.createDataFrame([tuple(r.get(f.name) for f in schema.fields) for r in rows], schema)
    with_conflict_retry(lambda: df.writeTo(table.qualified_name).overwrite(where), str(table))


def embedding_rows(ds: date, version: str) -> list[dict[str, Any]]:
    return [
        {
            Col.MODEL_VERSION: version,
            Col.ITEM_ID: i,
            Col.EMBEDDING: v,
            Col.IS_COLD: i == 6,
            Col.RUN_ID: "score-run",
            Col.DS: ds,
        }
        for i, v in VECTORS.items()
    ]


@pytest.fixture(scope="module")
def inputs(spark: SparkSession) -> None:
    write(spark, SERVE_ITEM_EMBEDDINGS, embedding_rows(DS, "mv1"), F.col(Col.DS) == F.lit(DS))
    write(
        spark,
        SERVE_ITEM_EMBEDDINGS,
        embedding_rows(TWO_VERSIONS_DS, "mv1") + embedding_rows(TWO_VERSIONS_DS, "mv2"),
        F.col(Col.DS) == F.lit(TWO_VERSIONS_DS),
    )
    items = [
        (1, "Alpha", ["Comedy"], None),
        (2, "Beta", ["Comedy", "Drama"], None),
        (3, "Gamma", ["Horror"], "gore, cult"),
        (4, "Delta", ["Sci-Fi"], "Cult"),
        (5, "Epsilon", ["War"], None),
        (6, "Zeta", ["Western"], None),
    ]
    schema = spark.table(BRONZE_ITEMS.qualified_name).schema
    row = {Col.SOURCE: SOURCE, Col.RUN_ID: "ingest", Col.DS: DELIVERY}
    data = [
        tuple(
            {**row, Col.ITEM_ID: i, Col.TITLE: t, Col.GENRES: g, Col.TAG_TEXT: tags}.get(f.name)
            for f in schema.fields
        )
        for i, t, g, tags in items
    ]
    replace_delivery(spark.createDataFrame(data, schema), BRONZE_ITEMS, DELIVERY, SOURCE)
    # resolve_delivery looks for interactions of the delivery: one is enough.
    schema = spark.table(BRONZE_INTERACTIONS.qualified_name).schema
    event = {
        **row,
        Col.USER_ID: 1,
        Col.ITEM_ID: 1,
        Col.RATING: 4.0,
        Col.IS_POSITIVE: True,
        Col.EVENT_TS: datetime(2018, 1, 1, tzinfo=UTC),
    }
    df = spark.createDataFrame([tuple(event.get(f.name) for f in schema.fields)], schema)
    replace_delivery(df, BRONZE_INTERACTIONS, DELIVERY, SOURCE)
    train = [
        {
            Col.USER_ID: u,
            Col.ITEM_ID: i,
            Col.RATING: 4.0,
            Col.IS_POSITIVE: True,
            Col.EVENT_TS: datetime(2018, 1, 1, tzinfo=UTC),
            Col.ROLE: "train",
            Col.SPLIT_ID: "leave_last_out",
            Col.DS: DS,
        }
        for u in (1, 2)
        for i in (5, 6)
    ]
    write(
        spark,
        FEATURES_INTERACTIONS_SPLIT,
        train,
        (F.col(Col.DS) == F.lit(DS)) & (F.col(Col.SPLIT_ID) == F.lit("leave_last_out")),
    )


def published(spark: SparkSession, ds: date) -> list[Any]:
    return (
        spark.table(SERVE_RELATED_ITEMS.qualified_name)
        .where(F.col(Col.DS) == F.lit(ds))
        .orderBy(Col.ITEM_ID, Col.RANK)
        .collect()
    )


@pytest.mark.usefixtures("inputs")
def test_job_publishes_related_items_once_per_run(spark: SparkSession) -> None:
    argv = ["--ds", DS.isoformat(), "--source", SOURCE, "--top-k", "2", "--run-id", "r1"]
    before = table_version(spark, SERVE_RELATED_ITEMS)
    assert related_items.main(argv) == 0
    rows = published(spark, DS)
    assert table_version(spark, SERVE_RELATED_ITEMS) == before + 1
    assert len(rows) == 6 * 2
    lists = {i: [r[Col.RELATED_ITEM_ID] for r in rows if r[Col.ITEM_ID] == i] for i in VECTORS}
    assert lists[1][0] == 2
    assert lists[3][0] == 4
    assert lists[5][0] == 6
    assert all(r[Col.ITEM_ID] != r[Col.RELATED_ITEM_ID] for r in rows)
    assert {r[Col.MODEL_VERSION] for r in rows} == {"mv1"}
    reasons = {(r[Col.ITEM_ID], r[Col.RELATED_ITEM_ID]): r[Col.REASON] for r in rows}
    assert reasons[(1, 2)] == "Also Comedy"
    assert reasons[(3, 4)] == "Also tagged: cult"
    assert reasons[(5, 6)] == "People who watched Epsilon also watched Zeta"
    for r in rows:
        assert -1.0 <= r[Col.SCORE] <= 1.0
        assert r[Col.RANK] in (1, 2)

    assert related_items.main([*argv[:-1], "r2"]) == 0
    again = published(spark, DS)
    assert table_version(spark, SERVE_RELATED_ITEMS) == before + 2
    assert len(again) == len(rows)
    assert {r[Col.RUN_ID] for r in again} == {"r2"}


@pytest.mark.usefixtures("inputs")
def test_several_versions_need_a_choice(spark: SparkSession) -> None:
    argv = ["--ds", TWO_VERSIONS_DS.isoformat(), "--source", SOURCE, "--top-k", "1"]
    assert related_items.main(argv) == 2
    assert related_items.main([*argv, "--model-version", "mv3"]) == 2
    assert related_items.main([*argv, "--model-version", "mv2"]) == 0
    rows = published(spark, TWO_VERSIONS_DS)
    assert len(rows) == 6
    assert {r[Col.MODEL_VERSION] for r in rows} == {"mv2"}


@pytest.mark.usefixtures("inputs")
def test_missing_embeddings_and_bad_arguments_exit_2() -> None:
    assert related_items.main(["--ds", "2031-02-09", "--source", SOURCE]) == 2
    assert related_items.main(["--ds", DS.isoformat(), "--top-k", "0"]) == 2
    assert related_items.main(["--ds", DS.isoformat(), "--source", "nothing"]) == 2
