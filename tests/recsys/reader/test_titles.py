"""Item titles for the reader CLI: only asked ids, newest delivery wins, no table -> no titles."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from recsys.reader.titles import item_titles
from recsys.warehouse.tables import BRONZE_ITEMS, SERVE_RECOMMENDATIONS, Col


def _deliver(root: str, ds: date, source: str, items: dict[int, str]) -> None:
    from deltalake import write_deltalake

    n = len(items)
    table = pa.table(
        {
            Col.ITEM_ID: pa.array(list(items), pa.int64()),
            Col.TITLE: pa.array(list(items.values()), pa.string()),
            Col.SOURCE: pa.array([source] * n, pa.string()),
            Col.DS: pa.array([ds] * n, pa.date32()),
        }
    )
    write_deltalake(BRONZE_ITEMS.location(root), table, mode="append", partition_by=[Col.DS])


def test_titles_of_the_asked_ids_from_the_newest_delivery(tmp_path: Path) -> None:
    root = str(tmp_path / "wh")
    _deliver(root, date(2030, 1, 1), "a", {1: "Old One", 2: "Two", 3: "Three"})
    _deliver(root, date(2030, 1, 2), "a", {1: "New One"})
    assert item_titles(root, [1, 2, 99]) == {1: "New One", 2: "Two"}
    assert item_titles(root, []) == {}
    # more ids than one scan's chunk
    assert item_titles(root, range(1200)) == {1: "New One", 2: "Two", 3: "Three"}


def test_no_items_table_means_no_titles(tmp_path: Path) -> None:
    assert item_titles(str(tmp_path / "empty"), [1]) == {}


@pytest.mark.parametrize("bad", ["1", 1.0, True, "1) OR (1=1"])
def test_ids_must_be_ints(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(TypeError, match="item_ids"):
        item_titles(str(tmp_path), [bad])


def test_cli_prints_titles_next_to_ids(
    rs_warehouse: Any, rows: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from recsys.reader.__main__ import main

    day = date(2031, 3, 2)
    # user 1's model list is items 101, 102 (conftest.rec_rows); 102 has no title
    rs_warehouse.publish(SERVE_RECOMMENDATIONS, rows["recommendations"](day, [1]), day)
    _deliver(rs_warehouse.root, day, "demo", {101: "Toy Story"})
    assert main(["--warehouse", rs_warehouse.root, "--user", "1", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert "item 101      Toy Story" in out
    assert "item 102      (title unknown)" in out
