"""Shared fixtures: one local SparkSession for the whole run, on a throw-away warehouse."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from recsys.settings import PROJECT_ROOT, WarehouseSettings, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

#: Spark SQL without generated code, for the test session and the end-to-end DAG run. On the
#: tests' tiny tables compiling every query's Java costs more than it saves (measured: six
#: job-test modules 251-269 s -> 183-216 s in one process, the whole-DAG run 444 -> 377 s).
#: Results do not depend on it (Spark takes this interpreted path itself whenever code generation
#: fails); `make demo`, the jobs' defaults and the tests that start their own ingest processes
#: (cluster, concurrency, catalog) keep code generation.
INTERPRETED_SQL = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}

# Loopback only, no UI, and no model-hub access, for every Spark process the tests start.
os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
os.environ["RECSYS_SPARK_UI"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def warehouse_settings(tmp_path_factory: pytest.TempPathFactory) -> WarehouseSettings:
    """Settings of the session-wide test warehouse (2 shuffle partitions, UI off, no codegen)."""
    root = tmp_path_factory.mktemp("warehouse")
    os.environ["RECSYS_WAREHOUSE"] = str(root)
    return load_settings(
        master="local[2]",
        shuffle_partitions=2,
        ui_enabled=False,
        driver_memory="2g",
        extra_conf=INTERPRETED_SQL,
    )


@pytest.fixture(scope="session")
def interpreted_sql_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``RECSYS_CONFIG`` TOML of :data:`INTERPRETED_SQL`, for jobs started as processes."""
    path = tmp_path_factory.mktemp("recsys_config") / "interpreted_sql.toml"
    pairs = ", ".join(f'"{key}" = "{value}"' for key, value in INTERPRETED_SQL.items())
    path.write_text(f"[warehouse]\nextra_conf = {{ {pairs} }}\n", encoding="utf-8")
    assert load_settings(env={"RECSYS_CONFIG": str(path)}).extra_conf == INTERPRETED_SQL
    return path


@pytest.fixture(scope="session")
def spark(warehouse_settings: WarehouseSettings) -> Iterator[SparkSession]:
    """The one SparkSession of the test run, with every warehouse table created."""
    from recsys.warehouse.catalog import apply_ddl
    from recsys.warehouse.session import build_spark

    session = build_spark(warehouse_settings, app_name="tests", attach=False)
    apply_ddl(session, warehouse_settings.warehouse_root)
    yield session
    session.stop()


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (real data sets are only on the project's machines)")
    return SHARED_DATA


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run modules that hold ``slow`` tests first, each module kept together (stable otherwise).

    With ``pytest -n 2`` (``make test``) the longest tests start at once and the short ones fill
    the gaps, so both workers finish together instead of one running the whole-DAG test alone
    at the end. Whole modules move, so their module-scoped fixtures are still built once.
    """
    slow_modules = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_modules)
