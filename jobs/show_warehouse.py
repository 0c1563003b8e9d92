"""Print what the warehouse holds: every table, its location, Delta version and rows per delivery.

Usage: ``python -m jobs.show_warehouse`` (the last step of ``make demo``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pyspark.sql import functions as F

from jobs.common import configure_logging
from recsys.settings import load_settings
from recsys.warehouse.session import build_spark
from recsys.warehouse.tables import ALL_TABLES, Col

QUERY_HINT = """
Query the tables by name from any new process, e.g.:
  .venv/bin/python -c "from recsys.warehouse.session import build_spark; \\
build_spark().sql('SELECT COUNT(*) FROM bronze.interactions').show()"
"""


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(prog="jobs.show_warehouse", description=__doc__).parse_args(argv)
    configure_logging()
    settings = load_settings()
    spark = build_spark(settings, app_name="show_warehouse")
    print("\nwarehouse: " + settings.warehouse_root)
    for table in ALL_TABLES:
        location = table.location(settings.warehouse_root)
        if not spark.catalog.tableExists(table.qualified_name):
            print(f"  {table}: missing (run `make setup`)")
            continue
        history = spark.sql("DESCRIBE HISTORY " + table.qualified_name + " LIMIT 1").first()
        version = history["version"] if history else -1
        df = spark.table(table.qualified_name)
        keys = [c for c in (Col.SOURCE, Col.DS) if c in df.columns]
        counts = df.groupBy(*keys).agg(F.count(F.lit(1)).alias("rows")).orderBy(*keys).collect()
        print(f"  {table}  (Delta version {version})  {location}")
        for row in counts:
            where = ", ".join(f"{k}={row[k]}" for k in keys)
            print(f"      {where}: {row['rows']:,} rows")
        if not counts:
            print("      (empty)")
    print(QUERY_HINT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
