"""Literal interactions and items for the feature tests, as a fixture (test modules cannot import
this file under ``--import-mode=importlib``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

INTERACTIONS_DDL = (
    f"{Col.USER_ID} BIGINT, {Col.ITEM_ID} BIGINT, {Col.RATING} DOUBLE, "
    f"{Col.IS_POSITIVE} BOOLEAN, {Col.EVENT_TS} TIMESTAMP"
)
ITEMS_DDL = (
    f"{Col.ITEM_ID} BIGINT, {Col.TITLE} STRING, {Col.YEAR} INT, {Col.GENRES} ARRAY<STRING>, "
    f"{Col.TAG_TEXT} STRING"
)


class LiteralData:
    """Builds tiny DataFrames; times are days after :attr:`T0` (UTC)."""

    T0 = datetime(2020, 1, 1, tzinfo=UTC)

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def day(self, n: float) -> datetime:
        return self.T0 + timedelta(days=n)

    def interactions(self, rows: Sequence[tuple[int, int, float | None, float]]) -> DataFrame:
        """(user, item, rating, day) rows; positive when rating >= 4."""
        data = [(u, i, r, r is not None and r >= 4.0, self.day(d)) for u, i, r, d in rows]
        return self.spark.createDataFrame(data, INTERACTIONS_DDL)

    def items(
        self, rows: Sequence[tuple[int, str, int | None, list[str], str | None]]
    ) -> DataFrame:
        """(item_id, title, year, genres, tag_text) rows."""
        return self.spark.createDataFrame(list(rows), ITEMS_DDL)

    @staticmethod
    def rows(df: DataFrame, *keys: str) -> list[dict[str, object]]:
        """Rows as dicts (arrays as tuples) sorted by ``keys``, sorted here rather than by Spark."""

        def plain(v: object) -> object:
            return tuple(plain(x) for x in v) if isinstance(v, list) else v

        out = [{k: plain(v) for k, v in r.asDict().items()} for r in df.collect()]
        return sorted(out, key=lambda r: tuple(r[k] for k in keys))  # type: ignore[no-any-return]


@pytest.fixture
def lit(spark: SparkSession) -> LiteralData:
    return LiteralData(spark)
