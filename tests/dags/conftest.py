"""Airflow for the DAG tests: it reads its configuration when first imported, so a throw-away
``AIRFLOW_HOME`` (SQLite, no examples, this repository's ``dags/``) is set here, before pytest
imports any test module of this folder, unless Airflow was already imported by this process.
``dags`` is not an installed package, so the repository goes on ``sys.path``."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

if "airflow" not in sys.modules:
    _home = tempfile.mkdtemp(prefix="af-tests-")
    atexit.register(shutil.rmtree, _home, True)
    os.environ.update(
        AIRFLOW_HOME=_home,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__PARALLELISM="2",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{_home}/airflow.db",
    )
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))
