"""jobs.retention on small tables at a private warehouse root: old days dropped, recent and served
days kept, ab.served compacted, idempotent reruns, the app-side reader undisturbed, and time
travel within the VACUUM horizon."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from jobs import retention
from jobs.retention import RetentionConfig, parse_args
from recsys.warehouse.tables import (
    AB_SERVED,
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_USER_FEATURES,
    OPS_COMPLETED_RUNS,
    SERVE_CANDIDATES,
    SERVE_RECOMMENDATIONS,
    SERVE_TRENDING,
    Col,
    RecSet,
    TableRef,
)
from tests.helpers.background import reader_in_background, reason_heads

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import DataType

RUN = date(2031, 6, 30)
_SCHEMAS = itertools.count()


def day(d: int, month: int = 6) -> date:
    return date(2031, month, d)


# --------------------------------------------------------------------------------------------
# Configuration (no Spark).


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"features_days": 0}, "features_days"),
        ({"serve_days": -1}, "serve_days"),
        ({"served_days": 4000}, "served_days"),
        ({"served_days": True}, "served_days"),
        ({"compact_days": -1}, "compact_days"),
        ({"vacuum_hours": -1}, "vacuum_hours"),
        ({"log_retention_days": 0}, "log_retention_days"),
        ({"vacuum_hours": 24 * 31, "log_retention_days": 30}, "log_retention_days"),
        ({"keep_days": {"bronze.interactions": 3}}, "keep_days"),
        ({"keep_days": {"serve.candidates": 0}}, "keep_days"),
    ],
)
def test_config_checks_name_the_argument(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        RetentionConfig(ds=RUN, **kwargs)


def test_config_horizons_and_command_line() -> None:
    with pytest.raises(TypeError, match="ds"):
        RetentionConfig(ds="2031-06-30")  # type: ignore[arg-type]
    config = parse_args(
        ["--ds", "2031-06-30", "--serve-days", "7", "--keep-days", "serve.trending=2"]
    )
    assert config.horizon_days(SERVE_RECOMMENDATIONS) == 7
    assert config.horizon_days(SERVE_CANDIDATES) == 3  # the default override stays
    assert config.cutoff(SERVE_TRENDING) == day(29)  # 2 days kept: 06-29 and 06-30
    assert config.horizon_days(AB_SERVED) == retention.DEFAULT_SERVED_DAYS
    assert config.horizon_days(FEATURES_USER_FEATURES) == retention.DEFAULT_FEATURES_DAYS
    assert (config.vacuum, config.dry_run) == (True, False)
    assert parse_args(["--no-vacuum", "--dry-run"]).vacuum is False
    with pytest.raises(ValueError, match="keep-days"):
        parse_args(["--keep-days", "serve.trending"])
    with pytest.raises(ValueError, match="keep-days"):
        parse_args(["--keep-days", "serve.trending=x"])
    assert retention.main(["--serve-days", "0"]) == 2
    assert retention.main(["--keep-days", "ops.dq_checks=3"]) == 2
    managed = {t.qualified_name for t in retention.MANAGED_TABLES}
    assert AB_SERVED.qualified_name in managed
    assert all(t.split(".")[0] in ("features", "serve", "ab") for t in managed)
    assert "ab.assignments" not in managed


# --------------------------------------------------------------------------------------------
# A private warehouse: tables from their DDL at tmp_path, rows filled by type.


def _value(name: str, kind: DataType, ds: date, overrides: dict[str, Any]) -> Any:
    from pyspark.sql import types as T

    if name in overrides:
        return overrides[name]
    if name == Col.DS:
        return ds
    if isinstance(kind, T.StringType):
        return "x"
    if isinstance(kind, (T.LongType, T.IntegerType, T.ShortType)):
        return 1
    if isinstance(kind, (T.DoubleType, T.FloatType)):
        return 1.0
    if isinstance(kind, T.BooleanType):
        return True
    if isinstance(kind, T.TimestampType):
        return datetime(ds.year, ds.month, ds.day, 12, tzinfo=UTC)
    if isinstance(kind, T.DateType):
        return ds
    if isinstance(kind, T.ArrayType):
        return []
    if isinstance(kind, T.MapType):
        return {}
    raise AssertionError(f"no test value for {name} {kind}")


class Warehouse:
    def __init__(self, spark: SparkSession, root: str) -> None:
        from recsys.warehouse.catalog import ddl_statement

        self.spark, self.root = spark, root
        self.schema = f"retention_test_{next(_SCHEMAS)}"
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
        self.names: dict[TableRef, str] = {}
        for table in (
            SERVE_RECOMMENDATIONS,
            SERVE_TRENDING,
            SERVE_CANDIDATES,
            FEATURES_USER_FEATURES,
            AB_SERVED,
            OPS_COMPLETED_RUNS,
        ):
            name = f"{self.schema}.{table.table}"
            head = "CREATE TABLE IF NOT EXISTS "
            ddl = ddl_statement(table, root).replace(head + table.qualified_name, head + name, 1)
            spark.sql(ddl)
            self.names[table] = name

    def write(self, table: TableRef, ds: date, rows: list[dict[str, Any]] | None = None) -> None:
        """Append rows of day ``ds`` (one row by default) in one commit."""
        schema = self.spark.table(self.names[table]).schema
        data = [
            tuple(_value(f.name, f.dataType, ds, r) for f in schema.fields) for r in rows or [{}]
        ]
        self.spark.createDataFrame(data, schema).writeTo(self.names[table]).append()

    def days(self, table: TableRef) -> list[date]:
        rows = self.spark.read.format("delta").load(table.location(self.root))
        return sorted({r[Col.DS] for r in rows.select(Col.DS).collect()})

    def history(self, table: TableRef) -> list[str]:
        from delta.tables import DeltaTable

        rows = DeltaTable.forPath(self.spark, table.location(self.root)).history().collect()
        return [r["operation"] for r in sorted(rows, key=lambda r: r["version"])]

    def files(self, table: TableRef, ds: date) -> int:
        from pyspark.sql import functions as F

        df = self.spark.read.format("delta").load(table.location(self.root))
        return df.where(df[Col.DS] == ds).select(F.input_file_name()).distinct().count()


@pytest.fixture
def warehouse(spark: SparkSession, tmp_path: Path) -> Iterator[Warehouse]:
    wh = Warehouse(spark, str(tmp_path / "wh"))
    yield wh
    spark.sql(f"DROP SCHEMA IF EXISTS {wh.schema} CASCADE")  # external tables: files kept


def rec_rows(ds: date, users: range, tag: str) -> list[dict[str, Any]]:
    return [
        {
            Col.REC_SET: RecSet.MODEL,
            Col.USER_ID: u,
            Col.RANK: r,
            Col.ITEM_ID: 100 * u + r,
            Col.SCORE: 1.0 / r,
            Col.EXPLANATION: f"{tag} {r}",
            Col.MODEL_VERSION: "mv",
        }
        for u in users
        for r in (1, 2, 3)
    ]


@pytest.mark.spark
@pytest.mark.slow
def test_old_days_dropped_recent_and_served_days_kept(warehouse: Warehouse) -> None:
    wh = warehouse
    for d in (day(1), day(10), day(12)):  # all past a 7-day horizon
        wh.write(SERVE_RECOMMENDATIONS, d, rec_rows(d, range(1, 3), str(d)))
    completed = {Col.PIPELINE: "recsys_daily", Col.TABLE_VERSIONS: {}}
    for d in (day(1), day(10)):  # 06-12 was published by a run that never finished
        wh.write(OPS_COMPLETED_RUNS, d, [completed])
    for d in (day(20), day(28), day(30)):
        wh.write(SERVE_TRENDING, d)
    for d in (day(27), day(28), day(30)):
        wh.write(SERVE_CANDIDATES, d)
    for d in (day(5), day(20), day(29)):
        wh.write(FEATURES_USER_FEATURES, d)
    wh.write(AB_SERVED, day(1, month=3))
    for d in (day(29), day(30)):
        for _ in range(3):  # small app batches: three files per day
            wh.write(AB_SERVED, d, [{Col.SOURCE: "app"}])
    assert wh.files(AB_SERVED, day(30)) == 3

    # VACUUM is covered by the tests below; without it a rerun must commit nothing at all.
    config = RetentionConfig(ds=RUN, serve_days=7, vacuum_hours=0, vacuum=False)
    tables = [*wh.names, FEATURES_INTERACTIONS_SPLIT]  # the last one was never created
    tables.remove(OPS_COMPLETED_RUNS)  # not managed
    outcomes = {o.table: o for o in retention.run(wh.spark, config, wh.root, tables)}

    # 06-12 is the newest day, 06-10 the day the reader serves (newest completed): both kept.
    assert wh.days(SERVE_RECOMMENDATIONS) == [day(10), day(12)]
    assert outcomes[SERVE_RECOMMENDATIONS].dropped_days == (day(1),)
    assert outcomes[SERVE_RECOMMENDATIONS].protected_days == (day(10), day(12))
    assert wh.days(SERVE_TRENDING) == [day(28), day(30)]  # cutoff 06-24
    assert wh.days(SERVE_CANDIDATES) == [day(28), day(30)]  # its own 3-day horizon
    assert wh.days(FEATURES_USER_FEATURES) == [day(20), day(29)]  # 14 days: cutoff 06-17
    assert wh.days(AB_SERVED) == [day(29), day(30)]  # 90 days: March is gone
    assert wh.files(AB_SERVED, day(30)) == wh.files(AB_SERVED, day(29)) == 1
    assert outcomes[AB_SERVED].compacted == (6, 2)
    assert outcomes[SERVE_RECOMMENDATIONS].properties_set
    assert not any(o.vacuumed for o in outcomes.values())
    absent = {t for t, o in outcomes.items() if o.status == "absent"}
    assert absent == {FEATURES_INTERACTIONS_SPLIT}
    from delta.tables import DeltaTable

    props = DeltaTable.forPath(wh.spark, SERVE_TRENDING.location(wh.root)).detail().first()
    assert props is not None
    assert props["properties"]["delta.logRetentionDuration"] == "interval 30 days"
    assert props["properties"]["delta.deletedFileRetentionDuration"] == "interval 0 hours"

    # A second run commits nothing: no delete, no compaction, no property change.
    before = {t: wh.history(t) for t in outcomes if outcomes[t].status == "done"}
    again = {o.table: o for o in retention.run(wh.spark, config, wh.root, tables)}
    for table, ops in before.items():
        assert wh.history(table) == ops, table
        assert again[table].dropped_days == ()
        assert not again[table].properties_set
    assert again[AB_SERVED].compacted == (0, 0)
    assert wh.days(SERVE_RECOMMENDATIONS) == [day(10), day(12)]


@pytest.mark.spark
@pytest.mark.slow
def test_dry_run_commits_nothing(warehouse: Warehouse) -> None:
    wh = warehouse
    for d in (day(1), day(30)):
        wh.write(SERVE_TRENDING, d)
    before = wh.history(SERVE_TRENDING)
    config = RetentionConfig(ds=RUN, dry_run=True)
    (outcome,) = retention.run(wh.spark, config, wh.root, tables=[SERVE_TRENDING])
    assert (outcome.status, outcome.dropped_days) == ("dry_run", (day(1),))
    assert wh.history(SERVE_TRENDING) == before
    with pytest.raises(ValueError, match="tables"):
        retention.run(wh.spark, config, wh.root, tables=[OPS_COMPLETED_RUNS])


@pytest.mark.spark
@pytest.mark.slow
def test_reader_keeps_serving_during_a_retention_run(warehouse: Warehouse) -> None:
    from recsys.reader import InMemorySink, Reader

    wh = warehouse
    users = range(1, 21)
    days = [RUN - timedelta(days=k) for k in (40, 30, 20, 10, 0)]
    for d in days:
        wh.write(SERVE_RECOMMENDATIONS, d, rec_rows(d, users, f"day {d}"))
    newest = days[-1]
    reader = Reader(wh.root, sink=InMemorySink(), refresh_interval_s=0)
    assert reader.recommendations_for(1).ds == newest
    with reader_in_background(reader, users) as observed:
        # An aggressive horizon: VACUUM deletes every file no current version needs.
        config = RetentionConfig(ds=RUN, serve_days=7, vacuum_hours=0)
        retention.run(wh.spark, config, wh.root, tables=[SERVE_RECOMMENDATIONS])
        retention.run(wh.spark, config, wh.root, tables=[SERVE_RECOMMENDATIONS])
    assert wh.days(SERVE_RECOMMENDATIONS) == [newest]
    assert observed
    for user, res in observed:
        assert res.ds == newest  # the published day, whole, before and after every commit
        assert reason_heads(res) == {f"day {newest}"}  # rows of one day only
        assert res.item_ids == [100 * user + r for r in (1, 2, 3)]
    versions = {res.table_version for _, res in observed}
    assert len(versions) > 1  # the reader reloaded across the retention commits


@pytest.mark.spark
@pytest.mark.slow
def test_vacuum_keeps_time_travel_within_the_horizon(warehouse: Warehouse) -> None:
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    wh = warehouse
    location = SERVE_TRENDING.location(wh.root)
    wh.write(SERVE_TRENDING, RUN, [{Col.ITEM_ID: 1}])
    table = DeltaTable.forPath(wh.spark, location)
    first = len(wh.history(SERVE_TRENDING)) - 1  # the version holding item 1
    table.update(set={Col.ITEM_ID: F.lit(2)})  # the next version rewrites its file

    def at_version_0() -> list[int]:
        df = wh.spark.read.format("delta").option("versionAsOf", first).load(location)
        return [r[Col.ITEM_ID] for r in df.select(Col.ITEM_ID).collect()]

    one_day = RetentionConfig(ds=RUN, vacuum_hours=24)
    retention.run(wh.spark, one_day, wh.root, tables=[SERVE_TRENDING])
    assert at_version_0() == [1]  # replaced a moment ago: inside the horizon
    retention.run(wh.spark, RetentionConfig(ds=RUN, vacuum_hours=0), wh.root, [SERVE_TRENDING])
    with pytest.raises(Exception, match=r"(?i)not exist|not found"):
        at_version_0()  # outside a zero horizon: the file is gone
    current = wh.spark.read.format("delta").load(location).select(Col.ITEM_ID).collect()
    assert [r[Col.ITEM_ID] for r in current] == [2]


@pytest.mark.spark
@pytest.mark.slow
def test_main_runs_on_the_configured_warehouse(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = warehouse
    for d in (day(1), day(30)):
        wh.write(SERVE_TRENDING, d)
    monkeypatch.setenv("RECSYS_WAREHOUSE", wh.root)
    assert retention.main(["--ds", "2031-06-30", "--no-vacuum"]) == 0
    assert wh.days(SERVE_TRENDING) == [day(30)]
    assert "VACUUM START" not in wh.history(SERVE_TRENDING)
