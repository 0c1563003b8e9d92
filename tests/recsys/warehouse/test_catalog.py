from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from recsys.settings import PROJECT_ROOT, WarehouseSettings
from recsys.warehouse.catalog import (
    add_missing_columns,
    apply_ddl,
    attach_tables,
    create_views,
    ddl_columns,
    ddl_statement,
    declared_schema,
    view_files,
    view_name,
)
from recsys.warehouse.tables import (
    AB_METRIC_STATS,
    ALL_TABLES,
    BRONZE_ITEMS,
    SERVE_RECOMMENDATIONS_LATEST,
    SERVE_RELATED_ITEMS_LATEST,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

_COLUMN = re.compile(r"^\s+(\w+)\s+([A-Z<>,]+)\s+(NOT NULL\s+)?COMMENT '([^']*)'", re.MULTILINE)


def declared_columns(table: TableRef) -> list[tuple[str, str, bool, str]]:
    """(name, type, nullable, comment) as written in the table's DDL file."""
    return [
        (m[1], m[2].lower(), not m[3], m[4]) for m in _COLUMN.finditer(table.ddl_path.read_text())
    ]


@pytest.mark.parametrize("table", ALL_TABLES, ids=str)
def test_table_has_declared_schema_and_partitioning(spark: SparkSession, table: TableRef) -> None:
    schema = spark.table(table.qualified_name).schema
    actual = [
        (f.name, f.dataType.simpleString(), f.nullable, f.metadata.get("comment", ""))
        for f in schema.fields
    ]
    assert actual == declared_columns(table)
    detail = spark.sql("DESCRIBE DETAIL " + table.qualified_name).first()
    assert detail is not None
    assert detail["format"] == "delta"
    declared = re.search(r"PARTITIONED BY \(([^)]*)\)", table.ddl_path.read_text())
    assert declared is not None
    assert list(detail["partitionColumns"]) == [c.strip() for c in declared[1].split(",")]
    assert next(iter(detail["partitionColumns"])) == "ds"


def test_apply_ddl_is_idempotent(
    spark: SparkSession, warehouse_settings: WarehouseSettings
) -> None:
    assert apply_ddl(spark, warehouse_settings.warehouse_root) == []
    assert [t for t in attach_tables(spark, warehouse_settings.warehouse_root)] == list(ALL_TABLES)


def test_schema_drift_is_refused(
    spark: SparkSession, warehouse_settings: WarehouseSettings
) -> None:
    drifted = ddl_statement(BRONZE_ITEMS, warehouse_settings.warehouse_root).replace(
        "year      INT", "year      STRING"
    )
    spark.sql("DROP TABLE " + BRONZE_ITEMS.qualified_name)
    try:
        with pytest.raises(Exception, match=r"(?i)schema|mismatch|differ"):
            spark.sql(drifted)
    finally:
        attach_tables(spark, warehouse_settings.warehouse_root)
    assert spark.catalog.tableExists(BRONZE_ITEMS.qualified_name)


@pytest.mark.parametrize("table", ALL_TABLES, ids=str)
def test_ddl_columns_cut_every_declared_column_list(table: TableRef) -> None:
    columns = ddl_columns(table.ddl_path.read_text())
    assert [m[1] for m in _COLUMN.finditer(columns)] == [c[0] for c in declared_columns(table)]


def test_ddl_columns_skip_quotes_and_line_comments() -> None:
    ddl = "-- a (comment\nCREATE TABLE t (\n  a INT COMMENT 'x) \\' y',\n  b DECIMAL(10, 2)\n)"
    ddl += " USING DELTA"
    assert ddl_columns(ddl) == "\n  a INT COMMENT 'x) \\' y',\n  b DECIMAL(10, 2)\n"
    with pytest.raises(ValueError, match="ddl"):
        ddl_columns("CREATE TABLE t (a INT")


def test_declared_schema_is_spark_parse_of_the_ddl(spark: SparkSession) -> None:
    fields = declared_schema(spark, AB_METRIC_STATS).fields
    assert [
        (f.name, f.dataType.simpleString(), f.nullable, f.metadata.get("comment", ""))
        for f in fields
    ] == declared_columns(AB_METRIC_STATS)


def _older_table(spark: SparkSession, root: str, drop: set[str]) -> str:
    """``ab.metric_stats`` as a warehouse without the ``drop`` columns holds it, with one row."""
    lines = ddl_columns(AB_METRIC_STATS.ddl_path.read_text()).splitlines()
    kept = ",\n".join(
        line.rstrip().rstrip(",") for line in lines if line.strip() and line.split()[0] not in drop
    )
    location = AB_METRIC_STATS.location(root)
    spark.sql(f"CREATE TABLE delta.`{location}` ({kept}) USING DELTA PARTITIONED BY (ds)")
    columns = [c for c in (m[1] for m in _COLUMN.finditer(kept))]
    values = {"experiment_id": "'e'", "variant": "'a'", "metric": "'m'", "slice": "'all'"}
    values |= {"look_date": "DATE'2026-01-01'", "ds": "DATE'2026-01-01'", "n": "1"}
    values |= {"has_covariate": "false", "covariates": "NULL", "moments": "NULL"}
    row = ", ".join(values.get(c, "0D") for c in columns)
    spark.sql(f"INSERT INTO delta.`{location}` VALUES ({row})")
    return location


def test_missing_nullable_columns_are_added_in_place(spark: SparkSession, tmp_path: Path) -> None:
    location = _older_table(spark, str(tmp_path), {"covariates", "moments"})
    assert add_missing_columns(spark, AB_METRIC_STATS, str(tmp_path)) == ["covariates", "moments"]
    table = spark.read.format("delta").load(location)
    assert table.schema == declared_schema(spark, AB_METRIC_STATS)  # order, types, comments
    row = table.first()
    assert row is not None
    assert (row["n"], row["covariates"], row["moments"]) == (1, None, None)
    assert add_missing_columns(spark, AB_METRIC_STATS, str(tmp_path)) == []  # idempotent


def test_a_missing_not_null_column_is_refused(spark: SparkSession, tmp_path: Path) -> None:
    location = _older_table(spark, str(tmp_path), {"sum_dx"})
    with pytest.raises(ValueError, match=r"NOT NULL columns \['sum_dx'\]"):
        add_missing_columns(spark, AB_METRIC_STATS, str(tmp_path))
    assert "sum_dx" not in spark.read.format("delta").load(location).columns  # nothing changed


def test_location_with_quote_is_refused() -> None:
    with pytest.raises(ValueError, match="location"):
        ddl_statement(BRONZE_ITEMS, "/tmp/x'; DROP")


def test_fresh_process_queries_tables_by_name(warehouse_settings: WarehouseSettings) -> None:
    code = (
        "from recsys.warehouse.session import build_spark\n"
        "spark = build_spark()\n"
        "print('ROWS', spark.sql('SELECT COUNT(*) AS n FROM bronze.interactions').first().n)\n"
        "print('TABLES', sorted(t.name for t in spark.catalog.listTables('bronze')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert re.search(r"^ROWS \d+$", out, re.MULTILINE)
    assert "TABLES ['interactions', 'items', 'quarantine', 'users']" in out


def test_views_are_declared_and_created_idempotently(spark: SparkSession) -> None:
    names = [view_name(p) for p in view_files()]
    assert {
        SERVE_RECOMMENDATIONS_LATEST.qualified_name,
        SERVE_RELATED_ITEMS_LATEST.qualified_name,
    } <= set(names)
    assert create_views(spark) == names
    assert create_views(spark) == names  # CREATE OR REPLACE: a rerun is a no-op
    for name in names:
        schema, _, view = name.partition(".")
        assert spark.catalog.tableExists(name)
        assert view in {t.name for t in spark.catalog.listTables(schema) if t.tableType == "VIEW"}
    base = {f.name for f in spark.table("serve.recommendations").schema.fields}
    assert {
        f.name for f in spark.table(SERVE_RECOMMENDATIONS_LATEST.qualified_name).schema.fields
    } == base


def test_latest_view_shows_only_the_newest_ds(spark: SparkSession) -> None:
    from datetime import date

    from pyspark.sql import functions as F

    from recsys.warehouse.io import replace_partition
    from recsys.warehouse.tables import SERVE_RECOMMENDATIONS, Col

    schema = spark.table(SERVE_RECOMMENDATIONS.qualified_name).schema
    # Later than any ds another test of the session writes: the view shows the table's newest day.
    days = (date(2099, 1, 1), date(2099, 1, 2))
    for ds in days:
        row = ("model", 1, 1, 7, 0.5, "x", "two_tower", "v", "r", ds)
        replace_partition(spark.createDataFrame([row], schema), SERVE_RECOMMENDATIONS, ds)
    try:
        got = (
            spark.table(SERVE_RECOMMENDATIONS_LATEST.qualified_name)
            .select(Col.DS)
            .distinct()
            .collect()
        )
        assert [r[0] for r in got] == [days[1]]
    finally:
        for ds in days:
            spark.sql(
                "DELETE FROM "
                + SERVE_RECOMMENDATIONS.qualified_name
                + " WHERE ds = '"
                + ds.isoformat()
                + "'"
            )
        assert (
            spark.table(SERVE_RECOMMENDATIONS.qualified_name)
            .where(F.col(Col.DS).isin(*days))
            .count()
            == 0
        )
