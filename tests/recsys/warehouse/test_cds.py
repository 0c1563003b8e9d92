"""The driver JVM's class-data-sharing archive: settings, Spark conf and the DAG's submit conf."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from recsys.settings import DEFAULT_CDS_ARCHIVE, load_settings
from recsys.warehouse.cds import (
    DRIVER_JAVA_OPTIONS,
    driver_java_options,
    merge_java_options,
    with_driver_java_options,
)
from recsys.warehouse.session import spark_conf

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "spark.jsa"
    path.write_bytes(b"not read by these tests")
    return path


def test_settings_default_env_and_off(archive: Path) -> None:
    assert load_settings(env={}).cds_archive == DEFAULT_CDS_ARCHIVE
    assert load_settings(env={"RECSYS_CDS_ARCHIVE": str(archive)}).cds_archive == archive
    assert load_settings(env={"RECSYS_CDS_ARCHIVE": "none"}).cds_archive is None
    assert load_settings(env={}, cds_archive="off").cds_archive is None
    with pytest.raises(ValueError, match="cds_archive: the path contains whitespace"):
        load_settings(env={"RECSYS_CDS_ARCHIVE": "/tmp/a b/spark.jsa"})


def test_options_only_for_an_existing_archive(archive: Path, tmp_path: Path) -> None:
    options = driver_java_options(archive)
    assert options.split() == [
        "-XX:SharedArchiveFile=" + str(archive),
        "-Xshare:auto",  # an archive the JVM cannot use is skipped, never an error
        "-Xlog:cds=off",
        "-Xlog:cds+dynamic=off",
    ]
    assert driver_java_options(tmp_path / "absent.jsa") == ""
    assert driver_java_options(None) == ""
    assert merge_java_options(None, "-Xb") == "-Xb"
    assert merge_java_options(" -Xa ", "") == "-Xa"
    assert merge_java_options("-Xa", "-Xb") == "-Xa -Xb"


def test_with_driver_java_options_copies_and_appends() -> None:
    conf = {DRIVER_JAVA_OPTIONS: "-Xa", "spark.x": "1"}
    assert with_driver_java_options(conf, "-Xb") == {DRIVER_JAVA_OPTIONS: "-Xa -Xb", "spark.x": "1"}
    assert conf == {DRIVER_JAVA_OPTIONS: "-Xa", "spark.x": "1"}  # the caller's dict is untouched
    assert with_driver_java_options({"spark.x": "1"}, "-Xb") == {
        "spark.x": "1",
        DRIVER_JAVA_OPTIONS: "-Xb",
    }
    assert with_driver_java_options({"spark.x": "1"}, "  ") == {"spark.x": "1"}


def test_spark_conf_maps_the_archive_after_explicit_options(archive: Path) -> None:
    settings = load_settings(env={}, cds_archive=str(archive))
    assert spark_conf(settings, "x")[DRIVER_JAVA_OPTIONS] == driver_java_options(archive)
    mine = load_settings(
        env={}, cds_archive=str(archive), extra_conf={DRIVER_JAVA_OPTIONS: "-Dmine=1"}
    )
    assert spark_conf(mine, "x")[DRIVER_JAVA_OPTIONS] == "-Dmine=1 " + driver_java_options(archive)
    off = load_settings(env={}, cds_archive="none")
    assert DRIVER_JAVA_OPTIONS not in spark_conf(off, "x")


def test_spark_submit_of_the_dags_maps_the_archive(archive: Path) -> None:
    from dags import common

    op = common.spark_job("ingest_x", "ingest", conf={DRIVER_JAVA_OPTIONS: "-Dmine=1"})
    op.prepare_runtime({"RECSYS_WAREHOUSE": "/wh", "RECSYS_CDS_ARCHIVE": str(archive)})
    assert op.conf is not None
    assert op.conf[DRIVER_JAVA_OPTIONS] == "-Dmine=1 " + driver_java_options(archive)
    bare = common.spark_job("ingest_y", "ingest")
    bare.prepare_runtime({"RECSYS_WAREHOUSE": "/wh", "RECSYS_CDS_ARCHIVE": "none"})
    assert DRIVER_JAVA_OPTIONS not in (bare.conf or {})


@pytest.mark.spark
def test_test_session_maps_the_setup_archive_when_there_is_one(spark: SparkSession) -> None:
    """`make test` runs `make setup` first, which writes the archive; the session then maps it."""
    options = spark.sparkContext.getConf().get(DRIVER_JAVA_OPTIONS) or ""
    if not DEFAULT_CDS_ARCHIVE.is_file():
        pytest.skip(f"no archive at {DEFAULT_CDS_ARCHIVE} (make setup could not write one)")
    assert "-XX:SharedArchiveFile=" + str(DEFAULT_CDS_ARCHIVE) in options
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    # The JVM's own view: the flag it started with (the archive is used unless it mismatched).
    bean = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
        jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean")
    )
    assert bean.getVMOption("SharedArchiveFile").getValue() == str(DEFAULT_CDS_ARCHIVE)
