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
    from pyspark.sql.types import StructType

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

    For a table that already exists, nullable columns the DDL declares and the table lacks are
    added first (:func:`add_missing_columns`: the one migration done automatically); then Delta
    checks that the declared schema matches the one in its log and fails loudly on any other
    drift (a changed type, a removed or renamed column, a new NOT NULL column).

    Returns:
        The tables this call created.
    """
    _create_schemas(spark)
    created = []
    for table in ALL_TABLES:
        existed = is_delta_table(spark, table.location(warehouse_root))
        if existed:
            add_missing_columns(spark, table, warehouse_root)
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


def ddl_columns(ddl: str) -> str:
    """The column list of a ``CREATE TABLE`` statement: the text inside its first parentheses.

    Quotes (comments may hold parentheses) and ``--`` line comments are skipped when matching.

    Raises:
        ValueError: ``ddl`` has no complete parenthesised column list.
    """
    depth, start, quote, i = 0, -1, False, 0
    while i < len(ddl):
        char = ddl[i]
        if quote:
            if char == "\\":
                i += 1  # an escaped character, e.g. \' inside a comment
            elif char == "'":
                quote = False
        elif char == "'":
            quote = True
        elif ddl.startswith("--", i):
            newline = ddl.find("\n", i)
            i = len(ddl) if newline < 0 else newline
        elif char == "(":
            depth += 1
            if depth == 1:
                start = i + 1
        elif char == ")" and depth > 0:
            depth -= 1
            if depth == 0:
                return ddl[start:i]
        i += 1
    raise ValueError(f"ddl: no complete column list in {ddl[:80]!r}")


def declared_schema(spark: SparkSession, table: TableRef) -> StructType:
    """The schema the table's DDL file in ``sql/`` declares: names, types, NOT NULL, comments."""
    text = table.ddl_path.read_text(encoding="utf-8")
    # Spark's own parser of column lists (the one CREATE TABLE uses), through the public API.
    return spark.createDataFrame([], ddl_columns(text)).schema


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def add_missing_columns(spark: SparkSession, table: TableRef, warehouse_root: str) -> list[str]:
    """Add the nullable columns declared for ``table`` that its existing Delta table lacks.

    A column added to a DDL file in ``sql/`` is nullable by convention (older rows hold NULL, no
    backfill), so an existing warehouse catches up at the next set-up instead of failing Delta's
    schema check. Each column is added at its declared position (``FIRST`` / ``AFTER`` its
    declared predecessor) with its comment, one ``ALTER TABLE ... ADD COLUMNS`` commit each.
    Nothing else is changed: any other difference is left to Delta's check in :func:`apply_ddl`.

    Returns:
        The names of the columns added, in declared order (empty when none was missing).

    Raises:
        ValueError: a missing column is declared ``NOT NULL`` (its existing rows would need a
            value: add it by hand with a backfill, or set up a fresh warehouse).
    """
    _quoted_location(table.location(warehouse_root))  # refuses quotes before any SQL
    existing = set(spark.read.format("delta").load(table.location(warehouse_root)).columns)
    declared = declared_schema(spark, table).fields
    missing = [(i, f) for i, f in enumerate(declared) if f.name not in existing]
    not_null = [f.name for _, f in missing if not f.nullable]
    if not_null:
        raise ValueError(
            f"{table}: declared NOT NULL columns {not_null} are missing from the table at "
            f"{table.location(warehouse_root)}; add them by hand with a backfill, or set up a "
            "fresh warehouse"
        )
    target = "delta.`" + table.location(warehouse_root).replace("`", "``") + "`"
    for i, field in missing:
        position = "FIRST" if i == 0 else "AFTER `" + declared[i - 1].name + "`"
        comment = field.metadata.get("comment")
        spark.sql(
            f"ALTER TABLE {target} ADD COLUMNS (`{field.name}` {field.dataType.simpleString()}"
            + (f" COMMENT {_sql_string(comment)}" if comment else "")
            + f" {position})"
        )
        log.warning(
            "%s: added nullable column %s (declared in %s)", table, field.name, table.ddl_path.name
        )
    return [f.name for _, f in missing]


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
