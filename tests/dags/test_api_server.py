"""The demo's runs are visible through Airflow's REST API of the same home (issue 19).

``make demo`` records its runs with ``airflow dags test`` in ``.airflow/``, and ``make airflow-ui``
serves that home. This test does the same in a throw-away home: one ``airflow dags test`` of
``recsys_daily`` (every task marked successful instead of run, so no Spark), then
``airflow api-server`` on 127.0.0.1 and a free port, and the run and its task instances read back
through ``/api/v2``. The server is stopped (process group) whatever happens.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DAY = "2027-01-03"


def _env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        # token without credentials (simple auth manager), for this throw-away home only
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        PYTHONPATH=str(REPO),
        SPARK_LOCAL_IP="127.0.0.1",
    )
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _airflow(env: dict[str, str], *args: str, timeout: int) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=env,
        cwd=env["AIRFLOW_HOME"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]


def _get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    home = tmp_path_factory.mktemp("airflow_api_home")
    port = _free_port()
    env = _env(home, port)
    _airflow(env, "db", "migrate", timeout=180)
    # as `make demo` records its run, without running the Spark tasks
    _airflow(
        env, "dags", "test", "recsys_daily", DAY, "--mark-success-pattern", ".*", timeout=300
    )
    log = (home / "api-server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                _get(base + "/api/v2/monitor/health")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    tail = (home / "api-server.log").read_text()[-4000:]
                    raise AssertionError(f"api-server did not come up:\n{tail}") from None
                time.sleep(1)
        token = _get(base + "/auth/token")["access_token"]
        yield base, token
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        log.close()


def test_the_recorded_run_is_listed_through_the_rest_api(api: tuple[str, str]) -> None:
    base, token = api
    runs = _get(base + "/api/v2/dags/recsys_daily/dagRuns", token)
    assert runs["total_entries"] == 1
    run = runs["dag_runs"][0]
    assert run["state"] == "success"
    assert run["logical_date"].startswith(DAY)
    tis = _get(
        base + f"/api/v2/dags/recsys_daily/dagRuns/{run['dag_run_id']}/taskInstances", token
    )
    states = {t["task_id"]: t["state"] for t in tis["task_instances"]}
    assert {"setup_warehouse", "features", "publish", "data_quality"} <= set(states)
    assert set(states.values()) <= {"success", "skipped"}


def test_the_api_listens_on_loopback_only(api: tuple[str, str]) -> None:
    base, _ = api
    port = int(base.rsplit(":", 1)[1])
    import psutil  # in the lock (Airflow's dependency)

    found = {a.address for nic in psutil.net_if_addrs().values() for a in nic}
    addresses = {a for a in found if "." in a and not a.startswith("127.")}
    if not addresses:
        pytest.skip("this machine has no IPv4 address but loopback: nothing to connect to")
    for address in addresses:
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex((address, port)) != 0, f"api-server answers on {address}"

