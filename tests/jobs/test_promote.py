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
from recsys.training.bundle import ModelBundle, RankerInputs, read_bundle_champion
from recsys.training.promotion import GateDecision, GateInput
from recsys.training.registry import read_champion, set_champion
from recsys.warehouse.io import replace_partition
from recsys.warehouse.tables import EVAL_OFFLINE_METRICS, OPS_MODEL_DECISIONS, Col
from tests.helpers.artifacts import fake_artifact

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

DS1 = date(2031, 3, 1)
DS2 = date(2031, 3, 2)


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
    tt1 = fake_artifact(tmp_path, "two_tower", 1)
    rk1 = fake_artifact(tmp_path, "ranker", 1, RankerInputs(tt1))
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
    assert _decisions(spark, DS1) == {
        "two_tower": "promoted",
        "ranker": "promoted",
        "bundle": "promoted",
    }
    assert ModelBundle.load(tmp_path).bundle_id == tt1 + "+" + rk1

    # Day 2: a new two-tower (and the ranker trained on it) whose two-tower is clearly worse,
    # evaluated together with the champion's.
    tt2 = fake_artifact(tmp_path, "two_tower", 2)
    rk2 = fake_artifact(tmp_path, "ranker", 2, RankerInputs(tt2))
    _eval_rows(
        spark,
        DS2,
        [
            ("two_tower", tt1, 0.031),
            ("two_tower", tt2, 0.020),
            ("two_tower+ranker", tt2 + "+" + rk2, 0.02),
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

    assert read_champion(tmp_path, "ranker").version == rk1  # type: ignore[union-attr]
    assert ModelBundle.load(tmp_path).bundle_id == tt1 + "+" + rk1
    assert _decisions(spark, DS2) == {"two_tower": "kept_champion", "bundle": "kept_champion"}

    # A rerun replaces the day, never duplicates (one row per gate and one for the bundle).
    assert job.main([*args2, "--artifacts-dir", str(tmp_path)]) == 0
    assert (
        spark.table(OPS_MODEL_DECISIONS.qualified_name).where(F.col(Col.DS) == F.lit(DS2)).count()
        == 2
    )

    # With a wide margin the same challenger is promoted, with the ranker trained on it.
    assert job.main([*args2[:-1], "0.05", "--artifacts-dir", str(tmp_path)]) == 0
    assert read_champion(tmp_path, "two_tower").version == tt2  # type: ignore[union-attr]
    assert read_champion(tmp_path, "ranker").version == rk2  # type: ignore[union-attr]
    assert ModelBundle.load(tmp_path).bundle_id == tt2 + "+" + rk2


def test_unevaluated_challenger_fails_with_exit_1(spark: SparkSession, tmp_path: Path) -> None:
    fake_artifact(tmp_path, "sasrec", 5)
    args = ["--ds", "2031-04-01", "--models", "sasrec", "--artifacts-dir", str(tmp_path)]
    assert job.main(args) == 1
    assert read_champion(tmp_path, "sasrec") is None


DS3 = date(2031, 5, 1)
DS4 = date(2031, 5, 2)
DS5 = date(2031, 5, 3)


def test_a_model_trained_after_evaluate_is_not_promoted(
    spark: SparkSession, tmp_path: Path
) -> None:
    # A per-model ranker champion that records no two-tower (no bundle can be made of it): the
    # gate warns and judges the challenger as the first bundle instead of failing forever.
    unpaired = save_artifact(
        tmp_path, "ranker", {"w": torch.zeros(1)}, config={}, feature_spec={}, metrics={},
        data_versions={}, now=datetime(2030, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    set_champion(tmp_path, unpaired, 0.5, "legacy")
    # Evaluate judged the bundle (tt1, rk1) on DS3 ...
    tt1 = fake_artifact(tmp_path, "two_tower", 1)
    rk1 = fake_artifact(tmp_path, "ranker", 2, RankerInputs(tt1))
    _eval_rows(spark, DS3, [("two_tower", tt1, 0.03), ("two_tower+ranker", f"{tt1}+{rk1}", 0.04)])
    # ... then a new training finished before the gate ran: newer artifacts, never evaluated.
    tt2 = fake_artifact(tmp_path, "two_tower", 3)
    fake_artifact(tmp_path, "ranker", 4, RankerInputs(tt2))
    args = ["--ds", DS3.isoformat(), "--models", "two_tower,ranker"]
    args += ["--artifacts-dir", str(tmp_path)]
    assert job.main(args) == 0
    # The judged bundle is promoted, as a unit; the unevaluated one is not.
    assert ModelBundle.load(tmp_path).bundle_id == f"{tt1}+{rk1}"
    assert read_champion(tmp_path, "two_tower").version == tt1  # type: ignore[union-attr]
    assert read_champion(tmp_path, "ranker").version == rk1  # type: ignore[union-attr]
    rows = (
        spark.table(OPS_MODEL_DECISIONS.qualified_name)
        .where((F.col(Col.DS) == F.lit(DS3)) & (F.col(Col.MODEL_NAME) == "bundle"))
        .collect()
    )
    assert [(r[Col.CHALLENGER_VERSION], r[Col.DECISION]) for r in rows] == [
        (f"{tt1}+{rk1}", "promoted")
    ]
    assert rows[0][Col.CHALLENGER_NDCG] == pytest.approx(0.04)


def test_a_model_trained_during_promote_is_not_promoted(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tt1 = fake_artifact(tmp_path, "two_tower", 1)
    rk1 = fake_artifact(tmp_path, "ranker", 2, RankerInputs(tt1))
    _eval_rows(spark, DS4, [("two_tower", tt1, 0.03), ("two_tower+ranker", f"{tt1}+{rk1}", 0.04)])
    real_decide = job.decide  # type: ignore[attr-defined]
    trained: list[str] = []

    def decide_while_training(g: GateInput) -> GateDecision:
        # A training that finishes while the gate decides its last model (after every version
        # and score was read): its artifacts are the newest now.
        if g.model_name == "ranker" and not trained:
            trained.append(fake_artifact(tmp_path, "two_tower", 5))
            trained.append(fake_artifact(tmp_path, "ranker", 6, RankerInputs(trained[0])))
        return real_decide(g)

    monkeypatch.setattr(job, "decide", decide_while_training)
    args = ["--ds", DS4.isoformat(), "--models", "two_tower,ranker"]
    args += ["--artifacts-dir", str(tmp_path)]
    assert job.main(args) == 0
    assert trained
    # Promoted: the versions that were evaluated, with their own score; never the newcomers.
    champion_tt = read_champion(tmp_path, "two_tower")
    champion_rk = read_champion(tmp_path, "ranker")
    assert champion_tt is not None
    assert champion_rk is not None
    assert (champion_tt.version, champion_rk.version) == (tt1, rk1)
    assert champion_tt.ndcg_at_10 == pytest.approx(0.03)
    pointer = read_bundle_champion(tmp_path)
    assert pointer is not None
    assert pointer.bundle_id == f"{tt1}+{rk1}"
    assert pointer.ndcg_at_10 == pytest.approx(0.04)


def test_an_evaluated_mismatched_pair_is_refused(spark: SparkSession, tmp_path: Path) -> None:
    # What the old evaluation judged: the latest two-tower with a ranker trained on another one.
    tt1 = fake_artifact(tmp_path, "two_tower", 1)
    rk1 = fake_artifact(tmp_path, "ranker", 2, RankerInputs(tt1))
    tt2 = fake_artifact(tmp_path, "two_tower", 3)
    _eval_rows(spark, DS5, [("two_tower", tt2, 0.03), ("two_tower+ranker", f"{tt2}+{rk1}", 0.04)])
    args = ["--ds", DS5.isoformat(), "--artifacts-dir", str(tmp_path)]
    assert job.main(args) == 2
    assert read_champion(tmp_path, "two_tower") is None
    assert read_bundle_champion(tmp_path) is None
    # Naming a bundle that was not judged that day is a missing evaluation.
    assert job.main([*args, "--bundle", f"{tt1}+{rk1}"]) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--ds", "2031-01-01", "--margin", "-1"],
        ["--ds", "2031-01-01", "--models", "als"],
        ["--ds", "2031-01-01", "--bundle", "../x+y"],
    ],
)
def test_bad_arguments_exit_2(args: list[str]) -> None:
    assert job.main(args) == 2
