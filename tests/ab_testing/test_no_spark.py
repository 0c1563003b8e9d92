"""The stats engine must stay pure Python: importing it must not pull in Spark."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_does_not_load_spark() -> None:
    # statsmodels itself imports pandas, so only Spark (incl. pandas-on-Spark) is checked.
    code = (
        "import sys, ab_testing.stats, ab_testing.settings;"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'pyspark'];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_no_spark_in_source() -> None:
    for path in (REPO / "ab_testing" / "stats").rglob("*.py"):
        text = path.read_text()
        assert "import pyspark" not in text, path
        assert "from pyspark" not in text, path
