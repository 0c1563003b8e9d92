"""Create every warehouse table declared in ``sql/`` (idempotent; part of ``make setup``).

Usage: ``python -m jobs.setup_warehouse`` (warehouse root from ``RECSYS_WAREHOUSE``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from jobs.common import configure_logging
from recsys.settings import load_settings
from recsys.warehouse.catalog import apply_ddl
from recsys.warehouse.session import build_spark
from recsys.warehouse.tables import ALL_TABLES

log = logging.getLogger("jobs.setup_warehouse")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobs.setup_warehouse", description=__doc__)
    parser.parse_args(argv)
    configure_logging()
    settings = load_settings()
    spark = build_spark(settings, app_name="setup_warehouse", attach=False)
    created = apply_ddl(spark, settings.warehouse_root)
    log.info(
        "warehouse %s: %d tables declared, %d created (%s)",
        settings.warehouse_root,
        len(ALL_TABLES),
        len(created),
        ", ".join(map(str, created)) or "none",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
