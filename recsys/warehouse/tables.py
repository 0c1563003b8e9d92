"""The one place that names tables and columns.

Every table is a path-based Delta table at ``<warehouse_root>/<schema>/<table>`` whose DDL lives
in ``sql/<schema>/<table>.sql``. Code refers to tables and columns only through these constants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from recsys.settings import PROJECT_ROOT

SQL_ROOT: Final[Path] = PROJECT_ROOT / "sql"
_IDENT: Final = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class TableRef:
    """A table known to the warehouse, named ``schema.table`` (lower-case identifiers)."""

    qualified_name: str

    def __post_init__(self) -> None:
        schema, dot, table = self.qualified_name.partition(".")
        if not dot or not _IDENT.match(schema) or not _IDENT.match(table):
            raise ValueError(f"qualified_name: expected 'schema.table', got {self.qualified_name!r}")

    @property
    def schema(self) -> str:
        return self.qualified_name.partition(".")[0]

    @property
    def table(self) -> str:
        return self.qualified_name.partition(".")[2]

    @property
    def ddl_path(self) -> Path:
        """The DDL file that declares this table."""
        return SQL_ROOT / self.schema / (self.table + ".sql")

    def location(self, warehouse_root: str) -> str:
        """Storage location of the Delta table under ``warehouse_root`` (a path or URI)."""
        return warehouse_root.rstrip("/") + "/" + self.schema + "/" + self.table

    def __str__(self) -> str:
        return self.qualified_name


BRONZE_INTERACTIONS: Final = TableRef("bronze.interactions")
BRONZE_ITEMS: Final = TableRef("bronze.items")
BRONZE_USERS: Final = TableRef("bronze.users")
BRONZE_QUARANTINE: Final = TableRef("bronze.quarantine")
OPS_INGEST_RUNS: Final = TableRef("ops.ingest_runs")

#: Every table, in the order set-up creates them.
ALL_TABLES: Final[tuple[TableRef, ...]] = (
    BRONZE_INTERACTIONS,
    BRONZE_ITEMS,
    BRONZE_USERS,
    BRONZE_QUARANTINE,
    OPS_INGEST_RUNS,
)
SCHEMAS: Final[tuple[str, ...]] = tuple(dict.fromkeys(t.schema for t in ALL_TABLES))


class Col:
    """Column names shared across tables."""

    DS: Final = "ds"
    SOURCE: Final = "source"
    RUN_ID: Final = "run_id"
    USER_ID: Final = "user_id"
    ITEM_ID: Final = "item_id"
    RATING: Final = "rating"
    IS_POSITIVE: Final = "is_positive"
    EVENT_TS: Final = "event_ts"
    TITLE: Final = "title"
    YEAR: Final = "year"
    GENRES: Final = "genres"
    TAG_TEXT: Final = "tag_text"
    FIRST_SEEN_TS: Final = "first_seen_ts"
    LAST_SEEN_TS: Final = "last_seen_ts"
    N_INTERACTIONS: Final = "n_interactions"
    GENDER: Final = "gender"
    AGE: Final = "age"
    OCCUPATION: Final = "occupation"
    ZIP_CODE: Final = "zip_code"
    TARGET_TABLE: Final = "target_table"
    SOURCE_FILE: Final = "source_file"
    RAW_LINE: Final = "raw_line"
    REASON: Final = "reason"
    DETAIL: Final = "detail"
    FILE_KIND: Final = "file_kind"
    N_READ: Final = "n_read"
    N_GOOD: Final = "n_good"
    N_QUARANTINED: Final = "n_quarantined"
    BAD_FRACTION: Final = "bad_fraction"
    STATUS: Final = "status"
    STARTED_AT: Final = "started_at"
    FINISHED_AT: Final = "finished_at"
    MESSAGE: Final = "message"
