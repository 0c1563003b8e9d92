"""The promotion-gate job: champion pointer moves only when the challenger is good enough."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch
from pyspark.sql import functions as F

from jobs import promote as job
from recsys.training.artifacts import save_artifact
from recsys.training.registry import read_champion
from recsys.warehouse.io import replace_partition
from recsys.warehouse.tables import EVAL_OFFLINE_METRICS, OPS_MODEL_DECISIONS, Col

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

DS1 = date(2031, 3, 1)
DS2 = date(2031, 3, 2)


def _artifact(root: Path, name: str, second: int) -> str:
    return save_artifact(
        root,
        name,
        {"w": torch.full((1,), float(second))},
        config={},
        feature_spec={},
        metrics={},
        data_versions={},
        now=datetime(2031, 1, 1, 0, 0, second, tzinfo=UTC),
    ).version


def _eval_rows(spark: SparkSession, ds: date, rows: list[tuple[str, str, float]]) -> None:
    now = datetime(2031, 1, 1)
    data = [
        (name, version, "leave_last_out", "{}", "all", "ndcg", 10, value, 100, "r", now, ds)
        for name, version, value in rows
    ]
    schema = spark.table(EVAL_OFFLINE_METRICS.qualified_name).schema
    replace_partition(spark.createDataFrame(data, schema), EVAL_OFFLINE_METRICS, ds)


def _decisions(spark: SparkSession, ds: date) -> dict[str, str]:
    rows = spark.table(OPS_MODEL_DECISIONS.qualified_name).where(F.col(Col.DS) == F.lit(ds))
    return {r[Col.MODEL_NAME]: r[Col.DECISION] for r in rows.collect()}


def test_gate_promotes_then_keeps_a_worse_challenger(spark: SparkSession, tmp_path: Path) -> None:
    tt1 = _artifact(tmp_path, "two_tower", 1)
    rk1 = _artifact(tmp_path, "ranker", 1)
    _eval_rows(spark, DS1, [("two_tower", tt1, 0.030), ("two_tower+ranker", tt1 + "+" + rk1, 0.02)])
    args = [
        "--ds",
        DS1.isoformat(),
        "--models",
        "two_tower,ranker",
        "--artifacts-dir",
        str(tmp_path),
    ]
    assert job.main(args) == 0
    assert read_champion(tmp_path, "two_tower").version == tt1  # type: ignore[union-attr]
    assert read_champion(tmp_path, "ranker").version == rk1  # type: ignore[union-attr]
    assert _decisions(spark, DS1) == {"two_tower": "promoted", "ranker": "promoted"}

    # Day 2: a new two-tower that is clearly worse, evaluated together with the champion.
    tt2 = _artifact(tmp_path, "two_tower", 2)
    _eval_rows(
        spark,
        DS2,
        [
            ("two_tower", tt1, 0.031),
            ("two_tower", tt2, 0.020),
            ("two_tower+ranker", tt2 + "+" + rk1, 0.02),
        ],
    )
    args2 = ["--ds", DS2.isoformat(), "--models", "two_tower", "--margin", "0.005"]
    assert job.main([*args2, "--artifacts-dir", str(tmp_path)]) == 0
    assert read_champion(tmp_path, "two_tower").version == tt1  # type: ignore[union-attr]
    row = (
        spark.table(OPS_MODEL_DECISIONS.qualified_name)
        .where((F.col(Col.DS) == F.lit(DS2)) & (F.col(Col.MODEL_NAME) == "two_tower"))
        .collect()
    )
    assert len(row) == 1
    assert row[0][Col.DECISION] == "kept_champion"
    assert row[0][Col.CHAMPION_NDCG] == pytest.approx(0.031)  # same-day evaluation of the champion
    assert "champion stays" in row[0][Col.REASON]

    # A rerun replaces the day, never duplicates.
    assert job.main([*args2, "--artifacts-dir", str(tmp_path)]) == 0
    assert (
        spark.table(OPS_MODEL_DECISIONS.qualified_name).where(F.col(Col.DS) == F.lit(DS2)).count()
        == 1
    )

    # With a wide margin the same challenger is promoted.
    assert job.main([*args2[:-1], "0.05", "--artifacts-dir", str(tmp_path)]) == 0
    assert read_champion(tmp_path, "two_tower").version == tt2  # type: ignore[union-attr]


def test_unevaluated_challenger_fails_with_exit_1(spark: SparkSession, tmp_path: Path) -> None:
    _artifact(tmp_path, "sasrec", 5)
    args = ["--ds", "2031-04-01", "--models", "sasrec", "--artifacts-dir", str(tmp_path)]
    assert job.main(args) == 1
    assert read_champion(tmp_path, "sasrec") is None


@pytest.mark.parametrize(
    "args", [["--ds", "2031-01-01", "--margin", "-1"], ["--ds", "2031-01-01", "--models", "als"]]
)
def test_bad_arguments_exit_2(args: list[str]) -> None:
    assert job.main(args) == 2
