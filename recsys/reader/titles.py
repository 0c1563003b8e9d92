"""Item titles for display next to ids, read from ``bronze.items`` without Spark (delta-rs).

Only the requested ids are read (a predicate on ``item_id`` pushed into the scan), so the cost is
bounded by the ids asked for, not by the catalogue. An item delivered on several days or by
several sources takes the title of its newest delivery (ties: the greatest source name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from recsys.reader.snapshots import to_pyarrow
from recsys.warehouse.tables import BRONZE_ITEMS, Col

#: Ids per scan predicate: keeps the SQL text of one scan short.
_CHUNK = 500


def item_titles(
    warehouse_root: str,
    item_ids: Iterable[int],
    storage_options: Mapping[str, str] | None = None,
) -> dict[int, str]:
    """Titles of ``item_ids`` that ``bronze.items`` knows; unknown ids are left out.

    Args:
        warehouse_root: Warehouse root path or URI.
        item_ids: Item ids (ints; anything else raises).
        storage_options: delta-rs storage options for object stores.

    Returns:
        ``{item_id: title}``; empty when the table does not exist yet.

    Raises:
        TypeError: an id is not an int.
    """
    ids = sorted(set(item_ids))
    for i in ids:
        # bool is an int subclass but never an item id; the ids go into SQL text below
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"item_ids: expected ints, got {i!r}")
    if not ids:
        return {}
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(
            BRONZE_ITEMS.location(warehouse_root),
            storage_options=dict(storage_options) if storage_options else None,
        )
    except TableNotFoundError:
        return {}
    best: dict[int, tuple[Any, str, str]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        predicate = f"{Col.ITEM_ID} IN ({', '.join(str(i) for i in chunk)})"
        rows = to_pyarrow(
            table.scan(columns=[Col.ITEM_ID, Col.TITLE, Col.DS, Col.SOURCE], predicate=predicate)
        ).to_pylist()
        for row in rows:
            key = (row[Col.DS], row[Col.SOURCE], row[Col.TITLE])
            item = int(row[Col.ITEM_ID])
            if item not in best or key > best[item]:
                best[item] = key
    return {item: key[2] for item, key in best.items()}
