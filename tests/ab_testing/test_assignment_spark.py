"""Native Spark assignment: parity with the pure-Python reference, no UDFs, exposures, writes."""

from __future__ import annotations

import importlib.util
import math
import sys
from datetime import date, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ab_testing.assignment import assign
from ab_testing.assignment_spark import (
    ASSIGNMENT_COLUMNS,
    EXPOSURE_COLUMNS,
    assign_df,
    bucket_col,
    exposures_from_served,
    record_exposures,
    write_assignments,
)
from ab_testing.bucketing import bucket
from ab_testing.config import parse_config
from recsys.warehouse.tables import AB_ASSIGNMENTS, AB_EXPOSURES, Col
from tests.helpers.experiments import experiment, layer

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from ab_testing.config import ExperimentsConfig

pytestmark = pytest.mark.spark


def _sibling(name: str) -> ModuleType:
    # Test modules are not a package under --import-mode=importlib: load the sibling by path.
    path = Path(__file__).with_name(name + ".py")
    spec = importlib.util.spec_from_file_location("_ab_" + name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_pure = _sibling("test_assignment")
VECTORS: list[tuple[str, str, int]] = _pure.VECTORS
DAY: date = _pure.DAY


def config(**overrides: Any) -> ExperimentsConfig:
    cfg: ExperimentsConfig = _pure.config(**overrides)
    return cfg


USERS_SCHEMA = T.StructType(
    [
        T.StructField("uid", T.StringType()),
        T.StructField("age", T.IntegerType()),
        T.StructField("country", T.StringType()),
        T.StructField("score", T.DoubleType()),
    ]
)


def units(spark: SparkSession, n: int) -> tuple[DataFrame, list[tuple[Any, ...]]]:
    """n units with varied attributes, NULLs and NaNs included, and the same rows in Python."""
    countries = ["us", "ca", "fr", None]
    rows: list[tuple[Any, ...]] = [
        (
            f"u{i}",
            None if i % 11 == 0 else 10 + i % 40,
            countries[i % 4],
            math.nan if i % 13 == 0 else float(i % 7),
        )
        for i in range(n)
    ]
    rows.append((None, 30, "us", 1.0))  # a NULL unit is in nothing
    return spark.createDataFrame(rows, USERS_SCHEMA), rows


def python_assignments(
    cfg: ExperimentsConfig, rows: list[tuple[Any, ...]], on: date
) -> set[tuple[Any, ...]]:
    out = set()
    for uid, age, country, _score in rows:
        if uid is None:
            continue
        for a in assign(cfg, uid, {"age": age, "country": country}, on=on):
            out.add(
                (
                    uid,
                    a.experiment_id,
                    a.layer_id,
                    a.variant,
                    a.is_control,
                    a.bucket,
                    a.variant_bucket,
                )
            )
    return out


def test_fixed_vectors(spark: SparkSession) -> None:
    df = spark.createDataFrame([(s, u) for s, u, _ in VECTORS], "salt string, unit string")
    rows = df.select(
        *[bucket_col(s, F.col("unit")).alias(f"b{i}") for i, (s, _, _) in enumerate(VECTORS)]
    ).collect()
    got = [rows[i][f"b{i}"] for i in range(len(VECTORS))]
    assert got == [b for _, _, b in VECTORS]


def test_null_unit_has_no_bucket(spark: SparkSession) -> None:
    df = spark.createDataFrame([(None,)], "u string")
    assert df.select(bucket_col("s", "u").alias("b")).first() == (None,)


@pytest.mark.slow
def test_parity_over_a_million_ids(spark: SparkSession) -> None:
    n, salt = 1_000_000, "layer-parity"
    expected = [bucket(salt, str(i)) for i in range(n)]
    got = (
        spark.range(n, numPartitions=2)
        .select("id", bucket_col(salt, F.col("id").cast("string")).alias("b"))
        .toPandas()
        .sort_values("id")
    )
    assert got["id"].tolist() == list(range(n))
    mismatches = int((got["b"].to_numpy() != expected).sum())
    assert mismatches == 0


@given(ids=st.lists(st.text(max_size=100), min_size=1, max_size=200))
@settings(max_examples=10, deadline=None)
def test_parity_on_arbitrary_unicode_ids(spark: SparkSession, ids: list[str]) -> None:
    df = spark.createDataFrame([(u,) for u in ids], "u string")
    got = [r.b for r in df.select(bucket_col("exp-unicode", "u").alias("b")).collect()]
    assert got == [bucket("exp-unicode", u) for u in ids]


def test_assign_df_matches_python_assign(spark: SparkSession) -> None:
    cfg = config()
    df, rows = units(spark, 4000)
    for day in (date(2026, 1, 1), date(2026, 1, 5), DAY):
        got = {tuple(r) for r in assign_df(df, cfg, "uid", day).collect()}
        assert got == python_assignments(cfg, rows, day), day
    out = assign_df(df, cfg, "uid", DAY)
    assert tuple(out.columns) == ASSIGNMENT_COLUMNS


def test_assign_df_uses_no_python_udf(spark: SparkSession) -> None:
    df, _ = units(spark, 10)
    plan = assign_df(df, config(), "uid", DAY)._jdf.queryExecution().executedPlan().toString()
    assert "Python" not in plan
    assert "xxhash64" in plan


def test_ramp_never_moves_a_unit_in_spark(spark: SparkSession) -> None:
    df, _ = units(spark, 3000)
    cfg = config()
    before: dict[str, str] = {}
    for day in (date(2026, 1, 1), date(2026, 1, 5), date(2026, 1, 9)):
        rows = assign_df(df, cfg, "uid", day).where(F.col(Col.EXPERIMENT_ID) == "exp_a").collect()
        now = {r[Col.UNIT_ID]: r[Col.VARIANT] for r in rows}
        assert before.items() <= now.items()
        assert len(now) > len(before)
        before = now


def test_no_live_experiment_gives_an_empty_frame(spark: SparkSession) -> None:
    df, _ = units(spark, 10)
    out = assign_df(df, config(), "uid", date(2030, 1, 1))
    assert out.count() == 0
    assert tuple(out.columns) == ASSIGNMENT_COLUMNS


def test_assign_df_refuses_bad_input(spark: SparkSession) -> None:
    df, _ = units(spark, 10)
    with pytest.raises(ValueError, match="unit_col"):
        assign_df(df, config(), "user", DAY)
    with pytest.raises(TypeError, match="unit_col"):
        assign_df(df, config(), "age", DAY)
    with pytest.raises(ValueError, match="country"):
        assign_df(df.drop("country"), config(), "uid", DAY)
    with pytest.raises(TypeError, match="age"):
        assign_df(df.withColumn("age", F.col("age").cast("string")), config(), "uid", DAY)
    with pytest.raises(TypeError, match="on"):
        assign_df(df, config(), "uid", "2026-01-10")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="salt"):
        bucket_col("x'); DROP TABLE t; --", "uid")


def test_numeric_filters_treat_nan_and_null_as_missing(spark: SparkSession) -> None:
    raw_layer = layer(
        "l",
        experiment(
            "scored",
            "2026-01-01",
            "2026-02-01",
            [0, 10000],
            {"control": 1, "t": 1},
            targeting=[{"attribute": "score", "op": "gt", "value": 2}],
        ),
    )
    cfg = parse_config({"version": 1, "layers": [raw_layer]})
    df = spark.createDataFrame(
        [("a", math.nan), ("b", None), ("c", 3.0), ("d", 2.0)], "uid string, score double"
    )
    got = {r[Col.UNIT_ID] for r in assign_df(df, cfg, "uid", DAY).collect()}
    assert got == {"c"}


def test_exposures_are_first_serves_on_assigned_days(spark: SparkSession) -> None:
    day1, day2 = date(2026, 1, 10), date(2026, 1, 11)
    schema = "unit_id string, experiment_id string, layer_id string, variant string, ds date"
    assignments = spark.createDataFrame(
        [
            ("u1", "exp_a", "ranking", "treat", day1),
            ("u1", "exp_a", "ranking", "treat", day2),
            ("u1", "exp_c", "ui", "c1", day2),
            ("u2", "exp_a", "ranking", "control", day2),
        ],
        schema,
    )

    def ts(d: date, hour: int) -> datetime:
        # Naive and mid-day: Python-side rows use the local zone, to_date the session's (UTC).
        return datetime(d.year, d.month, d.day, hour)

    served = spark.createDataFrame(
        [
            ("u1", ts(day1, 12), "home"),
            ("u1", ts(day1, 11), "search"),  # earliest for exp_a
            ("u1", ts(day2, 10), "home"),  # earliest for exp_c: u1 was in it on day2 only
            ("u2", ts(day1, 13), "home"),  # u2 not assigned on day1: no exposure
            ("u2", ts(day2, 14), None),
            ("u3", ts(day2, 14), "home"),  # never assigned
        ],
        "unit_id string, served_ts timestamp, surface string",
    )
    got = {tuple(r) for r in exposures_from_served(served, assignments).collect()}
    assert got == {
        ("exp_a", "ranking", "treat", "u1", ts(day1, 11), "search", day1),
        ("exp_c", "ui", "c1", "u1", ts(day2, 10), "home", day2),
        ("exp_a", "ranking", "control", "u2", ts(day2, 14), None, day2),
    }
    with pytest.raises(TypeError, match="unit_col"):
        exposures_from_served(served.withColumn("unit_id", F.lit(1)), assignments)
    with pytest.raises(ValueError, match="served_ts"):
        exposures_from_served(served.drop("served_ts"), assignments)


def test_record_exposures_keeps_the_earliest_and_is_idempotent(spark: SparkSession) -> None:
    def exposures(rows: list[tuple[Any, ...]]) -> DataFrame:
        return spark.createDataFrame(rows, spark.table(AB_EXPOSURES.qualified_name).schema)

    t1, t2 = datetime(2026, 1, 12, 9), datetime(2026, 1, 11, 9)
    first = [("exp_rec", "l", "control", "u1", t1, "home", t1.date())]
    record_exposures(exposures(first))
    late = [
        ("exp_rec", "l", "control", "u1", t2, "search", t2.date()),  # an earlier, late event
        ("exp_rec", "l", "t", "u2", t1, "home", t1.date()),
    ]
    record_exposures(exposures(late))
    record_exposures(exposures(first))  # a rerun adds no row; a later time replaces nothing
    rows = (
        spark.table(AB_EXPOSURES.qualified_name)
        .where(F.col(Col.EXPERIMENT_ID) == "exp_rec")
        .select(*EXPOSURE_COLUMNS)
        .collect()
    )
    assert sorted(tuple(r) for r in rows) == sorted(late)


def test_write_assignments_replaces_the_day_in_one_commit(spark: SparkSession) -> None:
    cfg = config()
    df, _ = units(spark, 500)
    ds = date(2031, 1, 10)  # a day no other test writes
    day = F.col(Col.DS) == F.lit(ds)

    def version() -> int:
        row = spark.sql("DESCRIBE HISTORY " + AB_ASSIGNMENTS.qualified_name).first()
        assert row is not None
        return int(row["version"])

    out = assign_df(df, cfg, "uid", DAY)
    write_assignments(out, ds, cfg.version, "run-1")
    before = version()
    n = spark.table(AB_ASSIGNMENTS.qualified_name).where(day).count()
    assert n == out.count() > 0
    write_assignments(out, ds, cfg.version, "run-2")
    assert version() == before + 1
    table = spark.table(AB_ASSIGNMENTS.qualified_name).where(day)
    assert table.count() == n
    assert {r[Col.RUN_ID] for r in table.select(Col.RUN_ID).distinct().collect()} == {"run-2"}


def _layers_config(n: int) -> ExperimentsConfig:
    """``n`` layers of one 50/50 experiment each (all buckets, own salts)."""
    layers = [
        layer(
            f"l{i}",
            experiment(
                f"e{i}",
                DAY,
                date(DAY.year + 1, 1, 1),
                [0, 10000],
                {"control": 1, "treat": 1},
                salt=f"exp-salt-{i}",
            ),
            salt=f"layer-salt-{i}",
        )
        for i in range(n)
    ]
    return parse_config({"version": 1, "layers": layers})


def test_assign_df_plan_grows_linearly_with_experiments(spark: SparkSession) -> None:
    # is_control once nested the whole variant CASE in each of its branches: a plan quadratic
    # in the live experiments, which took minutes to plan and compile with a couple of hundred.
    units = spark.createDataFrame([("u1",)], "unit_id string")

    def plan_size(n: int) -> int:
        df = assign_df(units, _layers_config(n), Col.UNIT_ID, DAY)
        return len(df._jdf.queryExecution().optimizedPlan().toString())

    small, large = plan_size(10), plan_size(40)
    assert large / small < 8  # linear: about 4; quadratic: about 16
