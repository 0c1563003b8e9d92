"""jobs.train and jobs.evaluate end to end on a tiny synthetic feature set."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest
from pyspark.sql import functions as F

from jobs.evaluate import MODELS, EvalJobConfig
from jobs.evaluate import parse_args as parse_eval
from jobs.evaluate import run as run_eval
from jobs.train import parse_args as parse_train
from jobs.train import run as run_train
from recsys.training.artifacts import latest_artifact
from recsys.warehouse.tables import EVAL_OFFLINE_METRICS, Col
from tests.helpers.tiny_features import write_tiny_features

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from recsys.settings import WarehouseSettings

pytestmark = [pytest.mark.spark, pytest.mark.slow]

DS = date(2026, 2, 1)


def test_parse_args_refuse_bad_values() -> None:
    with pytest.raises(ValueError, match="models"):
        parse_eval(["--ds", "2026-02-01", "--models", "popularity,nope"])
    with pytest.raises(ValueError, match="epochs"):
        parse_train(["--model", "sasrec", "--ds", "2026-02-01", "--epochs", "-1"])
    with pytest.raises(ValueError, match=r"^eval_users: must be an int >= 1, got 0"):
        parse_eval(["--ds", "2026-02-01", "--eval-users", "0"])
    with pytest.raises(ValueError, match=r"^validation_users: must be an int >= 1, got -5"):
        parse_train(["--model", "sasrec", "--ds", "2026-02-01", "--validation-users", "-5"])
    assert parse_eval(["--ds", "2026-02-01", "--eval-users", "7"]).eval_users == 7
    assert parse_eval(["--ds", "2026-02-01"]).eval_users == 100_000
    args = ["--model", "ranker", "--ds", "2026-02-01", "--validation-users", "9"]
    assert parse_train(args).validation_users == 9
    with pytest.raises(ValueError, match=r"^train_users: must be None or an int >= 1, got 0"):
        parse_train(["--model", "two_tower", "--ds", "2026-02-01", "--train-users", "0"])
    assert parse_train(["--model", "sasrec", "--ds", "2026-02-01"]).train.train_users is None
    args = ["--model", "two_tower", "--ds", "2026-02-01", "--train-users", "500"]
    assert parse_train(args).train.train_users == 500


def test_train_then_evaluate_writes_and_replaces_rows(
    spark: SparkSession, warehouse_settings: WarehouseSettings, tmp_path: Path
) -> None:
    write_tiny_features(spark, DS)
    root = warehouse_settings.warehouse_root
    arts = tmp_path / "models"
    for model in ("two_tower", "sasrec", "ranker"):
        args = ["--model", model, "--ds", DS.isoformat(), "--epochs", "2", "--batch-size", "16"]
        run_train(parse_train([*args, "--artifacts-dir", str(arts)]), root)
        art = latest_artifact(arts, model)
        assert art is not None
        assert "ndcg@10" in art.metrics
        assert "features.item_features" in art.data_versions
    config = EvalJobConfig(DS, "leave_last_out", MODELS, arts, als_max_iter=2, als_grid="one")
    table = run_eval(config, root)
    assert list(table.index) == list(MODELS)
    assert table["NDCG@10"].notna().all()
    # Per-user NDCG@10 behind the ratios averages to the metrics table's NDCG@10.
    def cell(row: str, column: str) -> float:
        return float(cast(float, table.at[row, column]))

    assert cell("popularity", "NDCG@10") > 0
    for model in MODELS[1:]:
        want = cell(model, "NDCG@10") / cell("popularity", "NDCG@10")
        assert cell(model, "x popularity") == pytest.approx(want, rel=1e-9)
        assert cell(model, "x popularity lo") <= want <= cell(model, "x popularity hi")
    assert (table["NDCG@10 se"] >= 0).all()
    rows = spark.table(EVAL_OFFLINE_METRICS.qualified_name).where(F.col(Col.DS) == F.lit(DS))
    first = rows.count()
    assert first > 0
    slices = {r[Col.SLICE] for r in rows.select(Col.SLICE).distinct().collect()}
    # Every tiny user has the same train count: all are "light" (at most the median).
    assert {"all", "light_users"} <= slices
    run_eval(config, root)
    again = spark.table(EVAL_OFFLINE_METRICS.qualified_name).where(F.col(Col.DS) == F.lit(DS))
    assert again.count() == first
    assert again.select(Col.RUN_ID).distinct().count() == 1
    # Evaluating one model replaces only its rows.
    one = EvalJobConfig(DS, "leave_last_out", ("popularity",), arts, als_max_iter=2)
    run_eval(one, root)
    after = spark.table(EVAL_OFFLINE_METRICS.qualified_name).where(F.col(Col.DS) == F.lit(DS))
    assert after.count() == first
    runs = after.groupBy(Col.MODEL_NAME).agg(F.countDistinct(Col.RUN_ID).alias("n")).collect()
    assert {r[Col.MODEL_NAME] for r in runs} == set(MODELS)
    assert after.select(Col.RUN_ID).distinct().count() == 2
    # A seeded sample of 10 of the 40 tiny users: every metric averages over those 10.
    sampled = EvalJobConfig(DS, "leave_last_out", ("popularity",), arts, eval_users=10)
    run_eval(sampled, root)
    pop = spark.table(EVAL_OFFLINE_METRICS.qualified_name).where(
        (F.col(Col.DS) == F.lit(DS))
        & (F.col(Col.MODEL_NAME) == "popularity")
        & (F.col(Col.SLICE) == "all")
        & (F.col(Col.METRIC) == "ndcg")
    )
    assert {r[Col.N_USERS] for r in pop.collect()} == {10}
