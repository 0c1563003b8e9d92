from __future__ import annotations

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
