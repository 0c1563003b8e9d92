from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from recsys.settings import WarehouseSettings, load_settings
from recsys.warehouse.session import WarehouseSetupError, delta_jars, spark_conf

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
