"""What importing a module pulls in, seen from a fresh Python interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
#: Packages a DAG file must not import while it is parsed (Spark or the project's code).
HEAVY = ("pyspark", "py4j", "recsys", "jobs", "ab_testing")


def run_fresh(code: str, cwd: Path = REPO, timeout_s: float = 120.0) -> Any:
    """Run ``code`` in a new interpreter (``python -c``, this environment, working directory
    ``cwd``) that prints one JSON value on its last line; returns that value. The process must
    exit 0 (its output's tail says why not) within ``timeout_s`` seconds."""
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _loaded(packages: Sequence[str]) -> str:
    """Code for the sorted names among ``packages`` of the top-level modules loaded so far."""
    return f"sorted({{m.split('.')[0] for m in sys.modules}} & set({tuple(packages)!r}))"


def packages_loaded_by(code: str, packages: Sequence[str]) -> list[str]:
    """The ``packages`` (top-level names, sorted) a new interpreter has loaded after running
    ``code`` from the checkout; empty when none."""
    loaded: list[str] = run_fresh(
        f"{code}\nimport json, sys\nprint(json.dumps({_loaded(packages)}))\n"
    )
    return loaded


def dag_import_cost(modules: Sequence[str]) -> tuple[dict[str, float], list[str]]:
    """Import ``modules`` (``dags.<file>``) one after the other in a new interpreter that has
    already loaded Airflow and the Spark provider (outside the checkout, which goes on
    ``sys.path``); returns each module's import time in seconds and the :data:`HEAVY` packages
    loaded by then (sorted; empty when the DAGs stay light)."""
    code = (
        "import json, sys, time\n"
        f"sys.path.append({str(REPO)!r})\n"
        "import airflow.sdk, airflow.providers.apache.spark.operators.spark_submit\n"
        "out = {}\n"
        f"for name in {tuple(modules)!r}:\n"
        "    t = time.perf_counter(); __import__(name); out[name] = time.perf_counter() - t\n"
        f"print(json.dumps({{'seconds': out, 'loaded': {_loaded(HEAVY)}}}))\n"
    )
    out = run_fresh(code, cwd=Path(tempfile.gettempdir()))
    return out["seconds"], out["loaded"]
