"""What importing DAG modules costs, measured in a fresh interpreter with Airflow preloaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Packages a DAG file must not import while it is parsed (Spark or the project's code).
HEAVY = ("pyspark", "py4j", "recsys", "jobs", "ab_testing")


def dag_import_cost(modules: Sequence[str]) -> tuple[dict[str, float], list[str]]:
    """Import ``modules`` (``dags.<file>``) one after the other in a new Python process that has
    already loaded Airflow and the Spark provider; returns each module's import time in seconds
    and the :data:`HEAVY` packages loaded by then (sorted; empty when the DAGs stay light)."""
    code = (
        "import json, sys, time\n"
        f"sys.path.append({str(REPO)!r})\n"
        "import airflow.sdk, airflow.providers.apache.spark.operators.spark_submit\n"
        "out = {}\n"
        f"for name in {tuple(modules)!r}:\n"
        "    t = time.perf_counter(); __import__(name); out[name] = time.perf_counter() - t\n"
        f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(json.dumps({'seconds': out, 'loaded': loaded}))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tempfile.gettempdir(),
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return out["seconds"], out["loaded"]
