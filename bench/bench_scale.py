"""Scale benchmark: the daily DAG's Spark tasks, as Airflow submits them, at 10k/100k/1M users.

Usage::

    python -m bench.bench_scale --users 10000                # one size
    python -m bench.bench_scale --users 10000,100000 --als   # two sizes, plus the ALS reference
    python -m bench.bench_scale --users 100000 --day scoring # a scoring-only day after training
    python -m bench.bench_scale --users 100000 --train-users 20000  # train on a user sample
    python -m bench.bench_scale --users 1000000 --day training --from-task evaluate  # resume

For each size the synthetic generator (:mod:`jobs.generate_synthetic`) writes one bronze delivery
of ``users`` users, ``min(users / 10, 100000)`` items and ``50 · users`` draws (repeated
(user, item) draws collapse, leaving ≈ 45 interactions per user) into a warehouse of its own
under ``--work-dir``. Then every ``SparkJobOperator`` task of ``recsys_daily`` runs in the DAG's
topological order through the exact ``spark-submit`` command line that Airflow's Spark provider
builds for it (:meth:`SparkSubmitHook._build_spark_submit_command`, with the operator's run-time
jars, conf and environment and its templates rendered for the day): nothing here restates a
task's arguments, so the benchmark cannot drift from the DAG.

* ``ingest`` does not run: the generator writes bronze directly (ingest reads MovieLens files).
* A ``training`` day runs every task (``force_retrain``); a ``scoring`` day first writes the
  next day's delivery, then skips the tasks between ``should_train`` and ``embeddings`` (as the
  short-circuit does) and scores with the champions the training day promoted.
* A task that fails stops the day; its figures and the tail of its log are reported.
  ``--from-task`` resumes that day at a task on the kept warehouse (no new delivery).

Per task: wall seconds, CPU seconds of the whole process tree (spark-submit's JVM, the job's
Python driver, the Python workers), peak RSS of the JVM, of the job's Python driver and of the
workers (sampled every 0.5 s from ``/proc``; see :mod:`bench._measure`), and the rows each Delta
table gained in the commits the task made (``numOutputRows`` of the commits in ``_delta_log``).
With ``--als``, Spark MLlib's ALS (implicit, rank 64, 5 iterations) is fit on the same
interactions and ``recommendForAllUsers(100)`` written to Parquet, the reference a warehouse team
already has; the line then carries the ``scoring`` task (retrieval and ranking, fused) / ALS.

Prints ONE JSON line per size and day; ``--out FILE`` appends the same lines to a file.
Figures and their history: ``docs/scale.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

from bench._measure import load_average, process_tree
from recsys.settings import PROJECT_ROOT

#: Items per user in the generated catalogue, and its cap.
ITEMS_PER_USER: Final = 0.1
MAX_ITEMS: Final = 100_000
#: Draws per user (≈ 45 distinct interactions after repeated pairs collapse).
DRAWS_PER_USER: Final = 50
#: The tasks the benchmark does not run (bronze comes from the generator).
NOT_RUN: Final = frozenset({"ingest"})
#: Tasks whose sum is compared with ALS.
SCORING_TASKS: Final = ("scoring",)
_MIB: Final = 2**20


@dataclass(frozen=True, slots=True)
class Size:
    """One generated data set."""

    users: int

    @property
    def items(self) -> int:
        return max(10, min(MAX_ITEMS, int(self.users * ITEMS_PER_USER)))

    @property
    def draws(self) -> int:
        return self.users * DRAWS_PER_USER


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.bench_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="10000", help="comma list of user counts")
    parser.add_argument("--day", choices=("training", "scoring", "both"), default="both")
    parser.add_argument("--ds", type=date.fromisoformat, default=date(2027, 1, 3))
    parser.add_argument("--epochs", type=int, default=1, help="train_epochs param (0 = defaults)")
    parser.add_argument("--work-dir", type=Path, default=PROJECT_ROOT / ".cache" / "bench-scale")
    parser.add_argument("--master", default="local[*]", help="the Spark connection's master")
    parser.add_argument("--driver-memory", default=None, help="RECSYS_DRIVER_MEMORY for tasks")
    parser.add_argument(
        "--train-users", type=int, default=0, help="train_users param (0 = every user)"
    )
    parser.add_argument(
        "--covisit-top-n", type=int, default=None, help="covisit_top_n param (None: the DAG's)"
    )
    parser.add_argument("--als", action="store_true", help="also time ALS recommendForAllUsers")
    parser.add_argument("--keep", action="store_true", help="reuse an existing warehouse")
    parser.add_argument(
        "--from-task",
        default=None,
        help="resume a day at this task of the DAG (implies --keep: no new delivery is written)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also append the JSON lines here")
    args = parser.parse_args(argv)
    try:
        args.sizes = [Size(int(u)) for u in str(args.users).split(",")]
    except ValueError:
        parser.error(f"--users: expected a comma list of integers, got {args.users!r}")
    if any(s.users < 100 for s in args.sizes):
        parser.error(f"--users: every size must be >= 100, got {args.users!r}")
    if args.epochs < 0:
        parser.error(f"--epochs: must be >= 0, got {args.epochs!r}")
    if args.train_users < 0:
        parser.error(f"--train-users: must be >= 0, got {args.train_users!r}")
    if args.covisit_top_n is not None and args.covisit_top_n < 1:
        parser.error(f"--covisit-top-n: must be >= 1, got {args.covisit_top_n!r}")
    if args.from_task is not None:
        if args.day == "both" or len(args.sizes) != 1:
            parser.error("--from-task: resumes one day of one size (--day training|scoring)")
        args.keep = True
    return args


# --------------------------------------------------------------------------------------------
# Measuring one subprocess tree.


class TreeMeter:
    """Peak RSS per process group and CPU seconds of a subprocess tree, sampled from ``/proc``."""

    def __init__(self, root: int, interval: float = 0.5) -> None:
        self.root = root
        self.interval = interval
        self.peaks: dict[str, int] = {"jvm": 0, "py_driver": 0, "py_workers": 0}
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        tree = process_tree(self.root)
        now = {"jvm": 0, "py_driver": 0, "py_workers": 0}
        for p in tree:
            self.cpu[p.pid] = max(self.cpu.get(p.pid, 0.0), p.cpu_s)
            if p.comm == "java":
                now["jvm"] += p.rss_bytes
            elif p.comm.startswith(("python", "pyspark")):
                group = "py_driver" if _is_job_driver(p.pid) else "py_workers"
                now[group] += p.rss_bytes
        for key, value in now.items():
            self.peaks[key] = max(self.peaks[key], value)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._sample()
            except OSError:
                continue

    def close(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=5)
        return {
            "cpu_s": round(sum(self.cpu.values()), 1),
            **{f"peak_rss_mib_{k}": round(v / _MIB) for k, v in self.peaks.items()},
        }


def _is_job_driver(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(part.endswith(b".py") and b"/jobs/" in part for part in cmd)


# --------------------------------------------------------------------------------------------
# Rows written: the commits a task added to each Delta log.


def delta_versions(warehouse: Path) -> dict[str, int]:
    """``schema.table`` -> newest committed version under ``warehouse``."""
    out: dict[str, int] = {}
    for log_dir in warehouse.glob("*/*/_delta_log"):
        versions = [int(p.stem) for p in log_dir.glob("*.json") if p.stem.isdigit()]
        if versions:
            out[log_dir.parent.parent.name + "." + log_dir.parent.name] = max(versions)
    return out


def rows_written(warehouse: Path, before: Mapping[str, int]) -> dict[str, int]:
    """Output rows (``numOutputRows``) of every commit made since ``before``, per table."""
    out: dict[str, int] = {}
    for name, newest in delta_versions(warehouse).items():
        schema, table = name.split(".")
        for version in range(before.get(name, -1) + 1, newest + 1):
            path = warehouse / schema / table / "_delta_log" / f"{version:020d}.json"
            for line in path.read_text().splitlines():
                info = json.loads(line).get("commitInfo")
                if info:
                    rows = int(info.get("operationMetrics", {}).get("numOutputRows", 0))
                    out[name] = out.get(name, 0) + rows
    return out


# --------------------------------------------------------------------------------------------
# The DAG's tasks as spark-submit command lines.


@dataclass(frozen=True, slots=True)
class Task:
    """One Spark task of the DAG, rendered for a day."""

    task_id: str
    command: list[str]
    env: dict[str, str]


def dag_tasks(ds: date, params: Mapping[str, Any], environ: Mapping[str, str]) -> list[Task]:
    """The ``recsys_daily`` Spark tasks in topological order, as Airflow would submit them."""
    from dags import common
    from dags.recsys_daily import dag

    tasks = []
    context: dict[str, Any] = {
        "ds": ds.isoformat(),
        "run_id": f"bench_scale__{ds.isoformat()}",
        "params": {**{k: v.value for k, v in dag.params.items()}, **params},  # type: ignore[no-untyped-call]
    }
    for task in dag.topological_sort():  # type: ignore[no-untyped-call]
        if not isinstance(task, common.SparkJobOperator) or task.task_id in NOT_RUN:
            continue
        # Rendering and prepare_runtime set attributes on the operator: work on a copy, or a
        # second call (the next day, the next size) would get this call's day, paths and jars.
        op = copy.deepcopy(task)
        args = [op.render_template(a, context) for a in op.application_args or []]  # type: ignore[arg-type]
        op.application_args = common.drop_empty_args(args)
        op.prepare_runtime(environ)
        hook = op._get_hook()
        command = hook._build_spark_submit_command(op.application)
        tasks.append(Task(op.task_id, [str(c) for c in command], dict(op.env_vars or {})))
    return tasks


def tasks_from(tasks: Sequence[Task], task_id: str) -> list[Task]:
    """``tasks`` from ``task_id`` on (a day resumed after a failed or stopped task)."""
    ids = [t.task_id for t in tasks]
    if task_id not in ids:
        raise ValueError(f"from_task: expected one of {ids}, got {task_id!r}")
    return list(tasks[ids.index(task_id) :])


def skipped_on_scoring_day() -> frozenset[str]:
    """Tasks between ``should_train`` and ``embeddings``: what a non-training day skips."""
    from dags.recsys_daily import dag

    after_gate = dag.get_task("should_train").get_flat_relative_ids(upstream=False)
    before_scoring = dag.get_task("embeddings").get_flat_relative_ids(upstream=True)
    return frozenset(after_gate & before_scoring)


@contextmanager
def _timed(root_pid: int) -> Iterator[dict[str, Any]]:
    figures: dict[str, Any] = {}
    meter = TreeMeter(root_pid)
    t0 = time.perf_counter()
    try:
        yield figures
    finally:
        figures["seconds"] = round(time.perf_counter() - t0, 1)
        figures.update(meter.close())


def run_measured(
    name: str, command: Sequence[str], env: Mapping[str, str], warehouse: Path, log_dir: Path
) -> dict[str, Any]:
    """Run one command to its end; its figures, rows written, and the log tail on failure."""
    before = delta_versions(warehouse)
    log_path = log_dir / f"{name}.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            list(command), env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT
        )
        with _timed(proc.pid) as figures:
            rc = proc.wait()
    figures.update({"task": name, "rc": rc, "rows_written": rows_written(warehouse, before)})
    if rc != 0:
        figures["log_tail"] = log_path.read_text()[-2000:]
    return figures


# --------------------------------------------------------------------------------------------
# One size.


def environment(args: argparse.Namespace, warehouse: Path) -> dict[str, str]:
    env = {
        "RECSYS_WAREHOUSE": str(warehouse),
        "RECSYS_SPARK_UI": "false",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "HF_HUB_OFFLINE": "1",
        "AIRFLOW_CONN_SPARK_LOCAL": json.dumps({"conn_type": "spark", "host": args.master}),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }
    if args.driver_memory:
        env["RECSYS_DRIVER_MEMORY"] = args.driver_memory
    return env


def generate(
    size: Size, ds: date, env: Mapping[str, str], warehouse: Path, logs: Path
) -> dict[str, Any]:
    """One synthetic bronze delivery for ``ds`` (same seed every day: the same population)."""
    command = [
        sys.executable, "-m", "jobs.generate_synthetic", "--users", str(size.users),
        "--items", str(size.items), "--interactions", str(size.draws), "--ds", ds.isoformat(),
    ]  # fmt: skip
    return run_measured(f"generate_{ds.isoformat()}", command, env, warehouse, logs)


def run_day(
    args: argparse.Namespace, size: Size, ds: date, training: bool, work: Path
) -> dict[str, Any]:
    warehouse, logs = work / "warehouse", work / "logs" / ds.isoformat()
    logs.mkdir(parents=True, exist_ok=True)
    env = environment(args, warehouse)
    os.environ.update(env)  # the operator's prepare_runtime and the hook read the environment
    line: dict[str, Any] = {
        "bench": "scale", "users": size.users, "items": size.items, "draws": size.draws,
        "day": "training" if training else "scoring", "ds": ds.isoformat(),
        "master": args.master, "load_before": load_average(), "tasks": [],
    }  # fmt: skip
    if training and not args.keep and warehouse.exists():
        shutil.rmtree(warehouse)
    resuming = args.from_task is not None
    if not resuming and not (training and args.keep and (warehouse / "bronze").exists()):
        setup = [sys.executable, "-m", "jobs.setup_warehouse"]
        line["tasks"].append(run_measured("setup_tables", setup, env, warehouse, logs))
        line["tasks"].append(generate(size, ds, env, warehouse, logs))
    params = {
        "source": "synthetic",
        "force_retrain": training,
        "train_every_days": 365,
        "train_epochs": args.epochs,
        "train_users": args.train_users,
        "content_embeddings": False,
    }
    if args.covisit_top_n is not None:
        params["covisit_top_n"] = args.covisit_top_n
    line["params"] = params
    skip = set() if training else skipped_on_scoring_day()
    tasks = [t for t in dag_tasks(ds, params, {**os.environ, **env}) if t.task_id not in skip]
    if resuming:
        tasks = tasks_from(tasks, args.from_task)
        line["from_task"] = args.from_task
    for task in tasks:
        figures = run_measured(task.task_id, task.command, task.env, warehouse, logs)
        line["tasks"].append(figures)
        print(json.dumps({"progress": task.task_id, **figures}), file=sys.stderr, flush=True)
        if figures["rc"] != 0:
            line["failed"] = task.task_id
            break
    dag_ran = [t for t in line["tasks"] if t["task"] not in ("setup_tables",)]
    done = [t for t in dag_ran if t["rc"] == 0 and not t["task"].startswith("generate")]
    line["dag_seconds"] = round(sum(t["seconds"] for t in done), 1)
    line["scoring_seconds"] = round(
        sum(t["seconds"] for t in done if t["task"] in SCORING_TASKS), 1
    )
    line["load_after"] = load_average()
    return line


def run_als(size: Size, work: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Spark ALS (implicit) fit + ``recommendForAllUsers(100)`` to Parquet, in a subprocess."""
    code = f"""
import json, time
from pyspark.ml.recommendation import ALS
from recsys.warehouse.session import build_spark
spark = build_spark(app_name="bench-scale-als")
df = spark.table("bronze.interactions").where("source = 'synthetic'").selectExpr(
    "CAST(user_id AS INT) AS user", "CAST(item_id AS INT) AS item", "1.0 AS rating").distinct()
t0 = time.perf_counter()
model = ALS(rank=64, maxIter=5, implicitPrefs=True, seed=0, coldStartStrategy="drop").fit(df)
t1 = time.perf_counter()
model.recommendForAllUsers(100).write.mode("overwrite").parquet({str(work / "als_out")!r})
t2 = time.perf_counter()
print("ALS " + json.dumps({{"fit_s": round(t1 - t0, 1), "recommend_s": round(t2 - t1, 1)}}))
"""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    figures = run_measured("als", [sys.executable, "-c", code], env, work / "warehouse", logs)
    for line in (logs / "als.log").read_text().splitlines():
        if line.startswith("ALS "):
            figures.update(json.loads(line[4:]))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rc = 0
    for size in args.sizes:
        work = args.work_dir / str(size.users)
        days = []
        if args.day in ("training", "both"):
            days.append((args.ds, True))
        if args.day in ("scoring", "both"):
            days.append((args.ds + timedelta(days=1), False))
        for ds, training in days:
            line = run_day(args, size, ds, training, work)
            if training and args.als:
                als = run_als(size, work, environment(args, work / "warehouse"))
                line["als"] = als
                if als["rc"] == 0 and line["scoring_seconds"]:
                    line["als_over_scoring"] = round(als["seconds"] / line["scoring_seconds"], 2)
            rc = rc or (1 if "failed" in line else 0)
            text = json.dumps(line)
            print(text, flush=True)
            if args.out:
                with args.out.open("a") as out:
                    out.write(text + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
