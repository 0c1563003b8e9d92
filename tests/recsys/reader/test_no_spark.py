"""The app-side reader must not pull in Spark or a JVM bridge."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.fresh_imports import packages_loaded_by

REPO = Path(__file__).resolve().parents[3]
FORBIDDEN = ("pyspark", "py4j", "delta")  # delta = delta-spark's Python package, not deltalake


def test_import_and_use_do_not_load_spark(tmp_path: Path) -> None:
    code = (
        "from recsys.reader import InMemorySink, Reader\n"
        f"r = Reader({str(tmp_path)!r}, sink=InMemorySink())\n"
        "r.recommendations_for(1); r.related_to(1); r.trending('Drama')\n"
    )
    assert packages_loaded_by(code, FORBIDDEN) == []


def test_no_spark_in_source() -> None:
    for path in (REPO / "recsys" / "reader").rglob("*.py"):
        text = path.read_text()
        for name in ("pyspark", "py4j", "delta.tables", "recsys.warehouse.session"):
            assert f"import {name}" not in text, (path, name)
            assert f"from {name}" not in text, (path, name)
