from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from recsys.settings import IngestConfig, Layout, WarehouseSettings, load_settings


def test_defaults_are_local_loopback_and_absolute() -> None:
    s = load_settings(env={})
    assert s.master == "local[*]"
    assert not s.master_explicit
    assert s.driver_host == "127.0.0.1"
    assert Path(s.warehouse_root).is_absolute()
    assert s.warehouse_root.endswith("/warehouse")
    assert s.shuffle_partitions >= 2


def test_env_overrides_toml_and_overrides_win(tmp_path: Path) -> None:
    toml = tmp_path / "recsys.toml"
    toml.write_text(
        '[warehouse]\nmaster = "local[1]"\nshuffle_partitions = 3\nwarehouse_root = "/tmp/a"\n'
        'extra_conf = { "spark.sql.ansi.enabled" = "true" }\n'
    )
    env = {"RECSYS_CONFIG": str(toml), "RECSYS_SHUFFLE_PARTITIONS": "5", "RECSYS_SPARK_UI": "off"}
    s = load_settings(env=env)
    assert (s.master, s.shuffle_partitions, s.ui_enabled) == ("local[1]", 5, False)
    assert s.master_explicit
    assert s.warehouse_root == "/tmp/a"
    assert s.extra_conf == {"spark.sql.ansi.enabled": "true"}
    assert load_settings(env=env, shuffle_partitions=7).shuffle_partitions == 7


def test_object_store_root_is_kept_verbatim() -> None:
    s = load_settings(env={"RECSYS_WAREHOUSE": "s3a://bucket/warehouse/"})
    assert s.warehouse_root == "s3a://bucket/warehouse"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RECSYS_SPARK_MASTER": "mesos://x"}, "master"),
        ({"RECSYS_SHUFFLE_PARTITIONS": "zero"}, "shuffle_partitions"),
        ({"RECSYS_SHUFFLE_PARTITIONS": "0"}, "shuffle_partitions"),
        ({"RECSYS_DRIVER_MEMORY": "lots"}, "driver_memory"),
        ({"RECSYS_SPARK_UI": "maybe"}, "ui_enabled"),
        ({"RECSYS_WAREHOUSE": "/tmp/it's"}, "warehouse_root"),
        ({"RECSYS_SPARK_LOG_LEVEL": "LOUD"}, "log_level"),
        ({"RECSYS_CONFIG": "/nonexistent.toml"}, "RECSYS_CONFIG"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_settings(env=env)


def test_unknown_override_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="nonsense"):
        load_settings(env={}, nonsense=1)


def test_extra_conf_must_be_spark_keys() -> None:
    with pytest.raises(ValueError, match="extra_conf"):
        WarehouseSettings(extra_conf={"hadoop.x": "1"})


def test_ingest_config_validation() -> None:
    ok = IngestConfig(Path("."), date(2026, 1, 1), "ml-latest-small", Layout.ML_100K)
    assert ok.max_bad_fraction == 0.01
    with pytest.raises(ValueError, match="source"):
        IngestConfig(Path("."), date(2026, 1, 1), "Robert'); DROP TABLE")
    with pytest.raises(ValueError, match="max_bad_fraction"):
        IngestConfig(Path("."), date(2026, 1, 1), "x", max_bad_fraction=1.5)
    with pytest.raises(TypeError, match="ds"):
        IngestConfig(Path("."), "2026-01-01", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="run_id"):
        IngestConfig(Path("."), date(2026, 1, 1), "x", run_id="a b")
