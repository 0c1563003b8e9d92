"""The same session factory and job on a real Spark standalone cluster (master + worker)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyspark
import pytest
from pyspark.sql import functions as F

from recsys.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.cluster]
SPARK_CLASS = Path(sys.executable).parent / "spark-class"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not seen in {log}:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    """A standalone master and one worker on 127.0.0.1; yields the master URL."""
    env = dict(
        os.environ,
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_WORKER_DIR=str(tmp_path / "work"),
        SPARK_HOME=str(Path(pyspark.__file__).parent),
        PYSPARK_PYTHON=sys.executable,
    )
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    master_log, worker_log = tmp_path / "master.log", tmp_path / "worker.log"
    master = subprocess.Popen(
        [
            str(SPARK_CLASS),
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(free_port()),
        ],
        env=env,
        stdout=master_log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    worker = None
    try:
        wait_for(master_log, "I have been elected leader", master)
        worker = subprocess.Popen(
            [
                str(SPARK_CLASS),
                "org.apache.spark.deploy.worker.Worker",
                url,
                "--host",
                "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "2g",
                "--webui-port",
                str(free_port()),
            ],
            env=env,
            stdout=worker_log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for(worker_log, "Successfully registered with master", worker)
        yield url
    finally:
        for proc in (worker, master):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def test_ingest_runs_unchanged_on_a_standalone_cluster(
    spark: SparkSession, cluster: str, tmp_path: Path
) -> None:
    src = tmp_path / "delivery"
    src.mkdir()
    (src / "movies.csv").write_text("movieId,title,genres\n1,A (2001),Drama\n2,B (2002),Comedy\n")
    (src / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,1000000\n1,2,2.0,1000001\n2,2,5.0,1000002\n"
    )
    env = dict(os.environ, RECSYS_SPARK_MASTER=cluster, RECSYS_DRIVER_MEMORY="1g")
    code = (
        "import sys\nfrom jobs import ingest\nfrom pyspark.sql import SparkSession\n"
        "rc = ingest.main(sys.argv[1:])\n"
        "sc = SparkSession.getActiveSession().sparkContext\n"
        "print('MASTER', sc.master)\n"
        "print('EXECUTORS', sc._jsc.sc().getExecutorMemoryStatus().size())\n"
        "sys.exit(rc)\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "--input",
            str(src),
            "--ds",
            "2026-09-01",
            "--source",
            "cluster",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "MASTER " + cluster in out.stdout
    assert "EXECUTORS 2" in out.stdout  # the driver plus the worker's executor
    rows = spark.table("bronze.interactions").where(F.col("source") == "cluster")
    assert sorted((r.user_id, r.item_id, r.is_positive) for r in rows.collect()) == [
        (1, 1, True),
        (1, 2, False),
        (2, 2, True),
    ]
