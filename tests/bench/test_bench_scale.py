"""The scale benchmark submits the DAG's own tasks and counts rows from Delta logs (no Spark)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from bench.bench_scale import (
    Size,
    dag_tasks,
    parse_args,
    rows_written,
    skipped_on_scoring_day,
    tasks_from,
)


def test_sizes_follow_the_issue_ratios() -> None:
    assert (Size(10_000).items, Size(10_000).draws) == (1_000, 500_000)
    assert Size(1_000_000).items == 100_000
    assert Size(5_000_000).items == 100_000  # capped


@pytest.mark.parametrize("users", ["10k", "50", "10000,x"])
def test_bad_sizes_are_refused(users: str) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--users", users])


def test_a_scoring_day_skips_what_the_short_circuit_skips() -> None:
    assert skipped_on_scoring_day() == {
        "train_two_tower",
        "train_sasrec",
        "train_ranker",
        "evaluate",
        "promote",
    }


def test_tasks_are_the_dags_spark_submits_rendered_for_the_day(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dags.common import job_path
    from dags.recsys_daily import dag

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_LOCAL", '{"conn_type": "spark", "host": "local[2]"}')
    environ = {"RECSYS_WAREHOUSE": str(tmp_path), "RECSYS_SPARK_UI": "false"}
    params = {
        "source": "synthetic",
        "force_retrain": True,
        "content_embeddings": False,
        "covisit_top_n": 100,
    }
    tasks = dag_tasks(date(2027, 1, 3), params, environ)
    spark_ids = {t.task_id for t in dag.tasks if t.task_type == "SparkJobOperator"}
    assert {t.task_id for t in tasks} == spark_ids - {"ingest"}
    by_id = {t.task_id: t for t in tasks}
    features = by_id["features"].command
    assert features[:3] == [features[0], "--master", "local[2]"]
    assert features[0].endswith("spark-submit")
    assert features[-10:] == [
        str(job_path("features")),
        "--ds", "2027-01-03", "--source", "synthetic", "--source-ds", "2027-01-03",
        "--covisit-top-n", "100", "--no-content",
    ]  # fmt: skip
    assert "spark.ui.enabled=false" in features
    assert by_id["features"].env["RECSYS_WAREHOUSE"] == str(tmp_path)
    # Topological order: features before training, scoring before publish.
    order = [t.task_id for t in tasks]
    assert order.index("features") < order.index("train_two_tower") < order.index("scoring")
    assert order.index("scoring") < order.index("publish")
    # Without a training sample, no --train-users flag reaches the trainers.
    assert "--train-users" not in by_id["train_two_tower"].command


def test_train_users_reaches_the_trainers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_LOCAL", '{"conn_type": "spark", "host": "local[2]"}')
    environ = {"RECSYS_WAREHOUSE": str(tmp_path), "RECSYS_SPARK_UI": "false"}
    params = {"source": "synthetic", "force_retrain": True, "train_users": 2_000}
    by_id = {t.task_id: t for t in dag_tasks(date(2027, 1, 3), params, environ)}
    for task_id in ("train_two_tower", "train_sasrec"):
        command = by_id[task_id].command
        assert command[command.index("--train-users") + 1] == "2000", task_id
    # The DAG's operators are not rendered in place: the next day gets its own day and params.
    again = {t.task_id: t for t in dag_tasks(date(2027, 1, 4), {"source": "synthetic"}, environ)}
    assert "--train-users" not in again["train_two_tower"].command
    assert again["features"].command[again["features"].command.index("--ds") + 1] == "2027-01-04"
    assert again["features"].command.count("--jars") == 1
    assert parse_args(["--train-users", "2000"]).train_users == 2_000
    with pytest.raises(SystemExit):
        parse_args(["--train-users", "-1"])


def _commit(log: Path, version: int, rows: int | None) -> None:
    log.mkdir(parents=True, exist_ok=True)
    info: dict[str, object] = {"operation": "WRITE"}
    if rows is not None:
        info["operationMetrics"] = {"numOutputRows": str(rows)}
    lines = [json.dumps({"commitInfo": info}), json.dumps({"add": {"path": "x.parquet"}})]
    (log / f"{version:020d}.json").write_text("\n".join(lines) + "\n")


def test_rows_written_counts_only_the_new_commits(tmp_path: Path) -> None:
    log = tmp_path / "serve" / "ranked" / "_delta_log"
    _commit(log, 0, None)  # CREATE TABLE: no metrics
    _commit(log, 1, 7)
    other = tmp_path / "ab" / "served" / "_delta_log"
    _commit(other, 0, 3)
    before = {"serve.ranked": 1, "ab.served": 0}
    _commit(log, 2, 40)
    _commit(log, 3, 2)
    assert rows_written(tmp_path, before) == {"serve.ranked": 42}
    assert rows_written(tmp_path, {}) == {"serve.ranked": 49, "ab.served": 3}


def test_a_day_resumes_at_a_task(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_LOCAL", '{"conn_type": "spark", "host": "local[2]"}')
    environ = {"RECSYS_WAREHOUSE": str(tmp_path), "RECSYS_SPARK_UI": "false"}
    tasks = dag_tasks(date(2027, 1, 3), {"source": "synthetic"}, environ)
    order = [t.task_id for t in tasks]
    resumed = [t.task_id for t in tasks_from(tasks, "evaluate")]
    assert resumed == order[order.index("evaluate") :]
    assert resumed[-1] == "publish"
    with pytest.raises(ValueError, match="from_task"):
        tasks_from(tasks, "ingest")
    args = parse_args(["--users", "1000", "--day", "training", "--from-task", "evaluate"])
    assert (args.from_task, args.keep) == ("evaluate", True)
    for bad in (["--from-task", "evaluate"], ["--users", "1000,2000", "--day", "scoring",
                                              "--from-task", "scoring"]):  # fmt: skip
        with pytest.raises(SystemExit):
            parse_args(bad)
