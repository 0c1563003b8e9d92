"""jobs.offline_eval: one command from a MovieLens directory to the metrics table."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import functions as F

from jobs.evaluate import MODELS
from jobs.offline_eval import DEFAULT_ROOT, main, parse_args, plan
from recsys.warehouse.tables import EVAL_OFFLINE_METRICS, Col

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from recsys.settings import WarehouseSettings

DS = date(2026, 3, 9)


def test_bad_arguments_name_the_argument(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--input: not a directory"):
        parse_args(["--input", str(tmp_path / "absent")])
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("not MovieLens")
    with pytest.raises(ValueError, match="holds no known MovieLens layout"):
        parse_args(["--input", str(tmp_path / "junk")])
    with pytest.raises(ValueError, match="--epochs: must be >= 1, got 0"):
        parse_args(["--input", str(tmp_path), "--source", "x", "--epochs", "0"])
    assert main(["--input", str(tmp_path / "absent")]) == 2


def test_plan_is_the_daily_chain_into_its_own_warehouse(small_movielens: tuple[Path, int]) -> None:
    directory, _ = small_movielens
    config = parse_args(["--input", str(directory), "--ds", "2026-03-09", "--epochs", "2"])
    assert config.warehouse == (DEFAULT_ROOT / "ml-small").resolve()
    assert config.source == "ml-latest-small"  # the detected layout
    steps = plan(config)
    assert [s.name for s in steps] == [
        "setup_warehouse", "ingest", "features",
        "train_two_tower", "train_sasrec", "train_ranker", "evaluate",
    ]  # fmt: skip
    argv = {s.name: s.argv for s in steps}
    assert argv["ingest"] == (
        "--input", str(directory), "--ds", "2026-03-09", "--source", "ml-latest-small"
    )  # fmt: skip
    assert argv["features"][-2:] == ("--seed", "0")  # content embeddings on by default
    assert argv["train_ranker"] == (
        "--model", "ranker", "--ds", "2026-03-09", "--epochs", "2", "--seed", "0"
    )  # fmt: skip
    assert argv["evaluate"] == ("--ds", "2026-03-09", "--als-grid", "full")


@pytest.mark.spark
@pytest.mark.slow
def test_one_command_prints_every_model_and_writes_the_table(
    spark: SparkSession,
    warehouse_settings: WarehouseSettings,
    small_movielens: tuple[Path, int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory, _ = small_movielens
    root = warehouse_settings.warehouse_root
    monkeypatch.setenv("RECSYS_WAREHOUSE", root)  # main sets it; restored afterwards
    args = ["--input", str(directory), "--ds", DS.isoformat(), "--warehouse", root]
    args += ["--artifacts-dir", str(tmp_path / "models"), "--epochs", "1", "--no-content"]
    assert main([*args, "--als-grid", "one"]) == 0
    printed = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(printed) if "NDCG@10" in line)
    assert [line.split()[0] for line in printed[header + 2 :]] == list(MODELS)
    rows = spark.table(EVAL_OFFLINE_METRICS.qualified_name).where(F.col(Col.DS) == F.lit(DS))
    assert {r[Col.MODEL_NAME] for r in rows.select(Col.MODEL_NAME).distinct().collect()} == set(
        MODELS
    )
    # one folder per trained model plus the bundle that pins the three together
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        "bundles",
        "ranker",
        "sasrec",
        "two_tower",
    ]
