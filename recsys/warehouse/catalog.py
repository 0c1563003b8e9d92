"""Catalog design: path-based Delta tables, attached by name in every process.

There is no shared metastore. Each table's data and schema live in its Delta log at
``<warehouse_root>/<schema>/<table>``; set-up creates those logs from the DDL in ``sql/``, and
every session registers the existing ones in its own in-memory catalog at start. Any number of
Spark processes can therefore work on the warehouse at once; concurrent writers are arbitrated by
Delta's optimistic concurrency on the log, not by a metastore lock.

Views are declared in ``sql/<schema>/<name>.view.sql`` (one ``CREATE OR REPLACE VIEW`` each) and
created in every session after the tables (:func:`create_views`); a view whose tables are not
there yet is skipped with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from recsys.warehouse.tables import ALL_TABLES, SCHEMAS, SQL_ROOT, TableRef

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def _quoted_location(location: str) -> str:
    # The location is the only non-constant text that reaches SQL; settings already refuse quotes
    # and backslashes in the warehouse root, and this refuses them again at the point of use.
    if "'" in location or "\\" in location:
        raise ValueError(f"location: quotes and backslashes are not allowed, got {location!r}")
    return "'" + location + "'"


def ddl_statement(table: TableRef, warehouse_root: str) -> str:
    """The table's DDL from ``sql/`` with its storage location appended."""
    text = table.ddl_path.read_text(encoding="utf-8").strip().rstrip(";")
    return text + "\nLOCATION " + _quoted_location(table.location(warehouse_root))


def is_delta_table(spark: SparkSession, location: str) -> bool:
    """True when ``location`` (a path or URI) holds a Delta table."""
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, location))


def _create_schemas(spark: SparkSession) -> None:
    for schema in SCHEMAS:
        spark.sql("CREATE SCHEMA IF NOT EXISTS " + schema)


def apply_ddl(spark: SparkSession, warehouse_root: str) -> list[TableRef]:
    """Create every table declared in ``sql/`` that does not exist yet; idempotent.

    For a table that already exists, Delta checks that the declared schema matches the one in its
    log and fails loudly on drift.

    Returns:
        The tables this call created.
    """
    _create_schemas(spark)
    created = []
    for table in ALL_TABLES:
        existed = is_delta_table(spark, table.location(warehouse_root))
        if spark.catalog.tableExists(table.qualified_name):
            # Attached earlier in this session: IF NOT EXISTS would skip Delta's schema check.
            # Every table is EXTERNAL (it has a LOCATION), so this unregisters it, data untouched.
            spark.sql("DROP TABLE " + table.qualified_name)
        spark.sql(ddl_statement(table, warehouse_root))
        if not existed:
            created.append(table)
            log.info("created %s at %s", table, table.location(warehouse_root))
    create_views(spark)
    return created


def attach_tables(spark: SparkSession, warehouse_root: str) -> list[TableRef]:
    """Register every existing warehouse table in this session's catalog by name.

    Tables whose Delta log does not exist yet (set-up has not run) are skipped with a warning.

    Returns:
        The tables now attached.
    """
    _create_schemas(spark)
    attached = []
    for table in ALL_TABLES:
        location = table.location(warehouse_root)
        if spark.catalog.tableExists(table.qualified_name):
            attached.append(table)
            continue
        if not is_delta_table(spark, location):
            log.warning("%s not found at %s: run `make setup`", table, location)
            continue
        spark.catalog.createTable(table.qualified_name, path=location, source="delta")
        attached.append(table)
    create_views(spark)
    return attached


VIEW_SUFFIX = ".view.sql"


def view_files() -> list[Path]:
    """Every view declaration, ``sql/<schema>/<name>.view.sql``, in name order."""
    return sorted(SQL_ROOT.glob("*/*" + VIEW_SUFFIX))


def view_name(path: Path) -> str:
    """``schema.name`` of a view file (its folder and file name)."""
    return path.parent.name + "." + path.name.removesuffix(VIEW_SUFFIX)


def create_views(spark: SparkSession) -> list[str]:
    """Create or replace every declared view whose tables exist; idempotent.

    Returns:
        The views created, as ``schema.name``.
    """
    from pyspark.errors import AnalysisException

    created = []
    for path in view_files():
        text = path.read_text(encoding="utf-8").strip().rstrip(";")
        try:
            spark.sql(text)
        except AnalysisException as err:
            log.warning("view %s not created (its tables are missing?): %s", view_name(path), err)
            continue
        created.append(view_name(path))
    return created
