"""The stats engine must stay pure Python: importing it must not pull in Spark."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.fresh_imports import packages_loaded_by

REPO = Path(__file__).resolve().parents[2]


def test_import_does_not_load_spark() -> None:
    # statsmodels itself imports pandas, so only Spark (incl. pandas-on-Spark) is checked.
    assert packages_loaded_by("import ab_testing.stats, ab_testing.settings", ["pyspark"]) == []


def test_no_spark_in_source() -> None:
    for path in (REPO / "ab_testing" / "stats").rglob("*.py"):
        text = path.read_text()
        assert "import pyspark" not in text, path
        assert "from pyspark" not in text, path
