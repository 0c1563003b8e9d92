from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from recsys.settings import MAX_SHUFFLE_PARTITIONS, WarehouseSettings, load_settings
from recsys.warehouse.session import (
    WarehouseSetupError,
    delta_jars,
    fanned_out_shuffle,
    spark_conf,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def test_conf_is_delta_loopback_and_sized(warehouse_settings: WarehouseSettings) -> None:
    conf = spark_conf(warehouse_settings, "x")
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.catalog.spark_catalog"].endswith("DeltaCatalog")
    assert conf["spark.driver.host"] == conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.sql.shuffle.partitions"] == "2"
    assert conf["spark.sql.execution.arrow.pyspark.enabled"] == "true"
    assert conf["spark.sql.catalogImplementation"] == "in-memory"
    assert "delta-spark_2.13" in conf["spark.jars"].split(",")[0]


def test_missing_jar_cache_says_run_make_setup(tmp_path: Path) -> None:
    settings = load_settings(env={}, jar_cache=tmp_path / "nothing")
    with pytest.raises(WarehouseSetupError, match="make setup"):
        spark_conf(settings, "x")
    with pytest.raises(WarehouseSetupError, match="make setup"):
        delta_jars(tmp_path)


@pytest.mark.spark
def test_running_session_matches_settings(spark: SparkSession) -> None:
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.ui.enabled") == "false"
    assert conf.get("spark.driver.host") == "127.0.0.1"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.sparkContext.uiWebUrl is None


@pytest.mark.spark
def test_a_fanned_out_query_plans_more_shuffle_partitions_then_restores(
    spark: SparkSession,
) -> None:
    key = "spark.sql.shuffle.partitions"
    base = int(spark.conf.get(key) or 0)
    df = spark.range(100).selectExpr("id % 7 AS k").groupBy("k").count()
    with fanned_out_shuffle(spark, 20) as count:
        assert count == base * 20
        plan = df._jdf.queryExecution().executedPlan().toString()
        assert re.findall(r"hashpartitioning\(k#\d+L, (\d+)\)", plan) == [str(base * 20)]
    assert spark.conf.get(key) == str(base)
    seen: list[int] = []

    def fails_inside() -> None:
        with fanned_out_shuffle(spark, 10**6) as count:
            seen.append(count)
            raise RuntimeError("restored on error too")

    with pytest.raises(RuntimeError, match="restored"):
        fails_inside()
    assert seen == [MAX_SHUFFLE_PARTITIONS]
    assert spark.conf.get(key) == str(base)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="factor"), fanned_out_shuffle(spark, bad):  # type: ignore[arg-type]
            pass


def test_shuffle_partitions_grow_with_the_input_between_floor_and_cap(tmp_path: Path) -> None:
    from recsys.settings import MAX_SHUFFLE_PARTITIONS, SHUFFLE_EXPANSION
    from recsys.warehouse.session import largest_input_bytes, shuffle_partitions_for

    s = load_settings({}, warehouse_root=str(tmp_path), shuffle_partitions=4)
    per = s.shuffle_partition_bytes
    assert shuffle_partitions_for(None, s) == 4
    assert shuffle_partitions_for(0, s) == 4
    assert shuffle_partitions_for(10 * per, s) == 10 * SHUFFLE_EXPANSION
    assert shuffle_partitions_for(10 * per + 1, s) == 10 * SHUFFLE_EXPANSION + 1
    assert shuffle_partitions_for(10**15, s) == MAX_SHUFFLE_PARTITIONS
    off = load_settings({}, warehouse_root=str(tmp_path), shuffle_partition_bytes=0)
    assert shuffle_partitions_for(10**15, off) == off.shuffle_partitions
    # The input is the bronze interactions' data files, not the Delta log.
    assert largest_input_bytes(s) is None
    table = tmp_path / "bronze" / "interactions"
    (table / "_delta_log").mkdir(parents=True)
    (table / "_delta_log" / "00.checkpoint.parquet").write_bytes(b"x" * 50)
    (table / "ds=2027-01-03").mkdir()
    (table / "ds=2027-01-03" / "part-0.parquet").write_bytes(b"x" * 100)
    (table / "part-1.parquet").write_bytes(b"x" * 20)
    assert largest_input_bytes(s) == 120
    assert largest_input_bytes(load_settings({}, warehouse_root="s3a://bucket/wh")) is None


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"RECSYS_MAX_RESULT_SIZE": "lots"}, "max_result_size"),
        ({"RECSYS_SHUFFLE_PARTITION_BYTES": "1000"}, "shuffle_partition_bytes"),
        ({"RECSYS_SHUFFLE_PARTITION_BYTES": "big"}, "shuffle_partition_bytes"),
    ],
)
def test_sizing_settings_are_validated(env: dict[str, str], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        load_settings(env)


def test_max_result_size_reaches_the_conf(warehouse_settings: WarehouseSettings) -> None:
    conf = spark_conf(replace(warehouse_settings, max_result_size="8m"), "t")
    assert conf["spark.driver.maxResultSize"] == "8m"
    assert conf["spark.sql.adaptive.enabled"] == "true"
