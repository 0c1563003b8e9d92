"""Fixtures of the reader tests: published rows as literals, written with delta-rs or with Spark
into a throw-away warehouse (the shared test warehouse's newest ds belongs to other tests)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from recsys.warehouse.tables import (
    AB_SERVED,
    SERVE_RECOMMENDATIONS,
    SERVE_RELATED_ITEMS,
    SERVE_TRENDING,
    TRENDING_ALL_GENRES,
    Col,
    RecSet,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Row = dict[str, Any]


def rec_rows(ds: date, users: Sequence[int], n: int = 5, tag: str = "") -> list[Row]:
    """Two sets per user: model items 100*u + r, popularity items 1000 + r (r = rank)."""
    rows = []
    for u in users:
        for rank in range(1, n + 1):
            for rec_set, item in ((RecSet.MODEL, 100 * u + rank), (RecSet.POPULARITY, 1000 + rank)):
                rows.append(
                    {
                        Col.REC_SET: rec_set,
                        Col.USER_ID: u,
                        Col.RANK: rank,
                        Col.ITEM_ID: item,
                        Col.SCORE: 1.0 / rank,
                        Col.EXPLANATION: f"{tag}because {rec_set} {rank}",
                        Col.SOURCE: "two_tower",
                        Col.MODEL_VERSION: f"mv-{rec_set}",
                        Col.RUN_ID: "run",
                        Col.DS: ds,
                    }
                )
    return rows


def related_rows(ds: date, items: Sequence[int], k: int = 3) -> list[Row]:
    return [
        {
            Col.ITEM_ID: i,
            Col.RANK: r,
            Col.RELATED_ITEM_ID: i + r,
            Col.SCORE: 1.0 - r / 10,
            Col.REASON: f"Also Comedy {r}",
            Col.MODEL_VERSION: "mv-tt",
            Col.RUN_ID: "run",
            Col.DS: ds,
        }
        for i in items
        for r in range(1, k + 1)
    ]


def trending_rows(ds: date, lists: dict[str, list[int]]) -> list[Row]:
    return [
        {
            Col.GENRE: genre,
            Col.RANK: r,
            Col.ITEM_ID: item,
            Col.SCORE: 10.0 - r,
            Col.RECENT_COUNT: 5.0,
            Col.BASELINE_COUNT: 1.0,
            Col.RUN_ID: "run",
            Col.DS: ds,
        }
        for genre, items in lists.items()
        for r, item in enumerate(items, start=1)
    ]


DEFAULT_TRENDING = {TRENDING_ALL_GENRES: [7, 8, 9], "Comedy": [8, 5]}


def _arrow(rows: list[Row], table: TableRef) -> pa.Table:
    types = {
        Col.REC_SET: pa.string(),
        Col.USER_ID: pa.int64(),
        Col.RANK: pa.int32(),
        Col.ITEM_ID: pa.int64(),
        Col.RELATED_ITEM_ID: pa.int64(),
        Col.SCORE: pa.float64() if table == SERVE_TRENDING else pa.float32(),
        Col.EXPLANATION: pa.string(),
        Col.REASON: pa.string(),
        Col.SOURCE: pa.string(),
        Col.MODEL_VERSION: pa.string(),
        Col.RUN_ID: pa.string(),
        Col.GENRE: pa.string(),
        Col.RECENT_COUNT: pa.float64(),
        Col.BASELINE_COUNT: pa.float64(),
        Col.DS: pa.date32(),
    }
    names = list(rows[0])
    return pa.table({n: pa.array([r[n] for r in rows], type=types[n]) for n in names})


@dataclass
class DeltaRsWarehouse:
    """A warehouse written with delta-rs alone (no Spark): fast reader tests."""

    root: str

    def publish(self, table: TableRef, rows: list[Row], ds: date) -> None:
        """Replace day ``ds`` of ``table`` with ``rows`` in one commit."""
        from deltalake import write_deltalake

        write_deltalake(
            table.location(self.root),
            _arrow(rows, table),
            mode="overwrite",
            partition_by=[Col.DS],
            predicate=f"{Col.DS} = '{ds.isoformat()}'",
        )


@pytest.fixture
def rs_warehouse(tmp_path: Path) -> DeltaRsWarehouse:
    """An empty warehouse root; tables appear on their first publish."""
    return DeltaRsWarehouse(str(tmp_path / "wh"))


_SCHEMAS = itertools.count()


@dataclass
class SparkWarehouse:
    """Tables created from their DDL at a throw-away root and attached under a private schema."""

    root: str
    spark: SparkSession
    names: dict[TableRef, str]

    def publish(self, table: TableRef, rows: list[Row], ds: date) -> None:
        """Replace day ``ds`` with ``rows`` in one commit, as the publishing jobs do."""
        from pyspark.sql import functions as F

        name = self.names[table]
        schema = self.spark.table(name).schema
        df = self.spark.createDataFrame(
            [tuple(r.get(f.name) for f in schema.fields) for r in rows], schema
        )
        df.writeTo(name).overwrite(F.col(Col.DS) == F.lit(ds))

    def table(self, table: TableRef) -> Any:
        return self.spark.table(self.names[table])


@pytest.fixture
def spark_warehouse(spark: SparkSession, tmp_path: Path) -> SparkWarehouse:
    from recsys.warehouse.catalog import ddl_statement

    root = str(tmp_path / "wh")
    schema = f"reader_test_{next(_SCHEMAS)}"
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    names = {}
    for table in (SERVE_RECOMMENDATIONS, SERVE_RELATED_ITEMS, SERVE_TRENDING, AB_SERVED):
        name = f"{schema}.{table.table}"
        head = "CREATE TABLE IF NOT EXISTS "
        ddl = ddl_statement(table, root)
        if head + table.qualified_name not in ddl:
            raise AssertionError(f"unexpected DDL of {table}")
        spark.sql(ddl.replace(head + table.qualified_name, head + name, 1))
        names[table] = name
    return SparkWarehouse(root, spark, names)


@pytest.fixture
def rows() -> dict[str, Callable[..., list[Row]]]:
    """Row builders: ``recommendations``, ``related``, ``trending``."""
    return {"recommendations": rec_rows, "related": related_rows, "trending": trending_rows}


@pytest.fixture
def default_trending() -> dict[str, list[int]]:
    return {k: list(v) for k, v in DEFAULT_TRENDING.items()}
