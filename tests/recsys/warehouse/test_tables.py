from __future__ import annotations

import pytest

from recsys.warehouse.tables import ALL_TABLES, SQL_ROOT, TableRef


def test_every_table_has_ddl_and_every_ddl_a_table() -> None:
    declared = {t.ddl_path for t in ALL_TABLES}
    # Views (``<name>.view.sql``) are not tables: catalog.create_views declares them.
    on_disk = {p for p in SQL_ROOT.glob("*/*.sql") if not p.name.endswith(".view.sql")}
    assert declared == on_disk
    for table in ALL_TABLES:
        text = table.ddl_path.read_text()
        assert "CREATE TABLE IF NOT EXISTS " + table.qualified_name + " (" in text
        assert "USING DELTA" in text


def test_location_joins_root_schema_table() -> None:
    ref = TableRef("bronze.items")
    assert ref.location("/w/") == "/w/bronze/items"
    assert ref.location("s3a://b/w") == "s3a://b/w/bronze/items"
    assert (ref.schema, ref.table, str(ref)) == ("bronze", "items", "bronze.items")


@pytest.mark.parametrize("name", ["items", "bronze.items.x", "Bronze.items", "bronze.it-ems", ""])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="qualified_name"):
        TableRef(name)
