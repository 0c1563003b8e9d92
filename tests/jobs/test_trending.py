"""jobs.trending end to end on a literal bronze delivery: lists, one commit per run, exit codes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from pyspark.sql import functions as F

from jobs import trending
from recsys.warehouse.completion import table_version
from recsys.warehouse.io import replace_delivery
from recsys.warehouse.tables import (
    BRONZE_INTERACTIONS,
    BRONZE_ITEMS,
    SERVE_TRENDING,
    TRENDING_ALL_GENRES,
    Col,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SOURCE = "trending-tiny"
DELIVERY = date(2031, 1, 10)
DS = "2031-01-15"
LAST = datetime(2018, 9, 24, 12, tzinfo=UTC)


def write_bronze(spark: SparkSession, table: TableRef, rows: list[dict[str, Any]]) -> None:
    schema = spark.table(table.qualified_name).schema
    stamp = {Col.SOURCE: SOURCE, Col.RUN_ID: "test", Col.DS: DELIVERY}
    data = [tuple({**r, **stamp}.get(f.name) for f in schema.fields) for r in rows]
    replace_delivery(spark.createDataFrame(data, schema), table, DELIVERY, SOURCE)


@pytest.fixture(scope="module")
def delivery(spark: SparkSession) -> None:
    rows: list[dict[str, Any]] = []

    def event(user: int, item: int, days_ago: float) -> None:
        rows.append(
            {
                Col.USER_ID: user,
                Col.ITEM_ID: item,
                Col.RATING: 4.0,
                Col.IS_POSITIVE: True,
                Col.EVENT_TS: LAST - timedelta(days=days_ago),
            }
        )

    for u in range(1, 21):  # item 1 grows: four old events, twenty recent ones
        event(u, 1, 0.2 * u)
    for u in range(21, 25):
        event(u, 1, 10 + u % 20)
    for u in range(1, 36):  # item 2 is popular and steady: one event a day from 35 users
        event(100 + u, 2, u - 0.5)
    for u in range(1, 3):  # item 3: two users binge it, below the support of 3
        event(200 + u, 3, 0.1 * u)
    event(300, 4, 200.0)  # item 4: outside both windows
    write_bronze(spark, BRONZE_INTERACTIONS, rows)
    items = [
        (1, "Rising", ["Drama", "Thriller"]),
        (2, "Evergreen", ["Drama"]),
        (3, "Binge", ["Drama"]),
        (4, "Old", ["Comedy"]),
    ]
    write_bronze(
        spark,
        BRONZE_ITEMS,
        [{Col.ITEM_ID: i, Col.TITLE: t, Col.GENRES: g} for i, t, g in items],
    )


def published(spark: SparkSession) -> list[Any]:
    return (
        spark.table(SERVE_TRENDING.qualified_name)
        .where(F.col(Col.DS) == F.lit(date.fromisoformat(DS)))
        .orderBy(Col.GENRE, Col.RANK)
        .collect()
    )


@pytest.mark.usefixtures("delivery")
def test_job_publishes_lists_once_per_run(spark: SparkSession) -> None:
    argv = ["--ds", DS, "--source", SOURCE, "--min-support", "3", "--min-items", "0"]
    argv += ["--run-id", "run-1"]
    before = table_version(spark, SERVE_TRENDING)
    assert trending.main(argv) == 0
    first = published(spark)
    assert table_version(spark, SERVE_TRENDING) == before + 1
    lists: dict[str, list[int]] = {}
    for r in first:
        lists.setdefault(r[Col.GENRE], []).append(r[Col.ITEM_ID])
    assert lists == {TRENDING_ALL_GENRES: [1, 2], "Drama": [1, 2], "Thriller": [1]}
    assert {r[Col.RUN_ID] for r in first} == {"run-1"}
    top = next(r for r in first if r[Col.GENRE] == TRENDING_ALL_GENRES and r[Col.RANK] == 1)
    assert top[Col.ITEM_ID] == 1
    assert top[Col.RECENT_COUNT] > top[Col.BASELINE_COUNT] > 0
    steady = next(r for r in first if r[Col.ITEM_ID] == 2)
    assert abs(steady[Col.SCORE]) < 1.0 < top[Col.SCORE]

    # A rerun replaces the day in one commit; nothing is duplicated.
    assert trending.main([*argv[:-1], "run-2"]) == 0
    second = published(spark)
    assert table_version(spark, SERVE_TRENDING) == before + 2
    assert len(second) == len(first)
    assert {r[Col.RUN_ID] for r in second} == {"run-2"}


@pytest.mark.usefixtures("delivery")
def test_explicit_as_of_moves_the_windows(spark: SparkSession) -> None:
    # 30 days earlier only item 2's older events are in the windows.
    as_of = (LAST - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S")
    argv = ["--ds", DS, "--source", SOURCE, "--min-support", "3", "--as-of", as_of]
    argv += ["--min-items", "0"]
    assert trending.main(argv) == 0
    assert {r[Col.ITEM_ID] for r in published(spark)} == {2}


@pytest.mark.parametrize(
    "argv",
    [
        ["--ds", DS, "--top-k", "0"],
        ["--ds", DS, "--recent-days", "-1"],
        ["--ds", DS, "--min-support", "1.5"],
        ["--ds", "yesterday"],
        ["--ds", DS, "--min-items", "-1"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    try:
        code = trending.main(argv)
    except SystemExit as err:  # argparse's own errors
        code = int(str(err.code))
    assert code == 2


@pytest.mark.usefixtures("delivery")
def test_missing_input_exits_2() -> None:
    assert trending.main(["--ds", DS, "--source", "no-such-source"]) == 2
    assert trending.main(["--ds", DS, "--source", SOURCE, "--source-ds", "2031-01-11"]) == 2
    # The delivery exists, but none of its events happened before the end of --ds.
    argv = ["--ds", "1990-01-01", "--source", SOURCE, "--source-ds", DELIVERY.isoformat()]
    assert trending.main(argv) == 2
