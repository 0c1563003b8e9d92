"""Shared fixtures: one local SparkSession for the whole run, on a throw-away warehouse."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from recsys.settings import PROJECT_ROOT, WarehouseSettings, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

# ``tests.helpers`` is imported as a package of this checkout, also under a bare ``pytest``.
_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:
    sys.path.append(_REPO)

# Loopback only, no UI, and no model-hub access, for every Spark process the tests start.
os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
os.environ["RECSYS_SPARK_UI"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def warehouse_settings(tmp_path_factory: pytest.TempPathFactory) -> WarehouseSettings:
    """Settings of the session-wide test warehouse (2 shuffle partitions, UI off)."""
    root = tmp_path_factory.mktemp("warehouse")
    os.environ["RECSYS_WAREHOUSE"] = str(root)
    return load_settings(
        master="local[2]", shuffle_partitions=2, ui_enabled=False, driver_memory="2g"
    )


@pytest.fixture(scope="session")
def spark(warehouse_settings: WarehouseSettings) -> Iterator[SparkSession]:
    """The one SparkSession of the test run, with every warehouse table created."""
    from recsys.warehouse.catalog import apply_ddl
    from recsys.warehouse.session import build_spark

    session = build_spark(warehouse_settings, app_name="tests", attach=False)
    apply_ddl(session, warehouse_settings.warehouse_root)
    yield session
    session.stop()


def write_small_movielens(directory: Path, n_users: int = 60, n_items: int = 40) -> int:
    """A small, learnable ml-latest-small directory (two taste groups, the last 30 days dense
    enough for trending); returns the number of ratings."""
    directory.mkdir(parents=True, exist_ok=True)
    genres = ["Action|Thriller", "Comedy|Romance", "Drama", "Animation|Children|Comedy"]
    movies = [f"{i},Movie {i} ({1990 + i % 20}),{genres[i % 4]}" for i in range(1, n_items + 1)]
    end = 1_700_000_000  # 2023-11-14 22:13:20 UTC
    ratings = []
    for user in range(1, n_users + 1):
        half = range(1, n_items // 2 + 1) if user % 2 else range(n_items // 2 + 1, n_items + 1)
        for step, item in enumerate(list(half)[(user % 5) : (user % 5) + 15]):
            ts = end - 30 * 86_400 + step * 2 * 86_400 + user * 600
            ratings.append(f"{user},{item},{3.0 + (item + user) % 3},{ts}")
    (directory / "movies.csv").write_text("movieId,title,genres\n" + "\n".join(movies) + "\n")
    (directory / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n" + "\n".join(ratings) + "\n"
    )
    return len(ratings)


@pytest.fixture
def small_movielens(tmp_path: Path) -> tuple[Path, int]:
    """:func:`write_small_movielens` under ``tmp_path / "ml-small"``: (directory, ratings)."""
    directory = tmp_path / "ml-small"
    return directory, write_small_movielens(directory)


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
