"""Airflow for the DAG tests: it reads its configuration when first imported, so a throw-away
``AIRFLOW_HOME`` (SQLite, no examples, this repository's ``dags/``) is set here, before pytest
imports any test module of this folder, unless Airflow was already imported by this process.
``dags`` is not an installed package, so the repository goes on ``sys.path``.

Importing Airflow configures the root logger (an INFO handler on the stdout of the moment): the
hook and the fixture below put it back after each module of this folder is imported and after
its tests, so the rest of the test session logs as before."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

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

_ROOT = logging.getLogger()
_RootState = tuple[list[logging.Handler], int]


def _root_state() -> _RootState:
    return list(_ROOT.handlers), _ROOT.level


def _restore(state: _RootState) -> None:
    _ROOT.handlers, _ROOT.level = list(state[0]), state[1]


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Collecting a module imports it (and Airflow with it): restore the root logger after."""
    state = _root_state()
    try:
        return (yield)
    finally:
        if isinstance(collector, pytest.Module):
            _restore(state)


@pytest.fixture(autouse=True, scope="module")
def _restore_root_logging() -> Iterator[None]:
    """The root logger as it was before the module's tests (a DagBag may configure it again)."""
    state = _root_state()
    yield
    _restore(state)
