"""The reader against tables Spark wrote from their DDL: parity, consistent snapshots during a
publish, variant parity with the Spark assignment, and served events the exposure job reads."""

from __future__ import annotations

import random
import threading
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pytest
from pyspark.sql import functions as F

from ab_testing.assignment_spark import assign_df, exposures_from_served
from ab_testing.config import parse_config
from recsys.reader import REC_SETS, DeltaServedSink, InMemorySink, Reader
from recsys.warehouse.tables import (
    AB_SERVED,
    SERVE_RECOMMENDATIONS,
    SERVE_RELATED_ITEMS,
    SERVE_TRENDING,
    Col,
    RecSet,
)
from tests.helpers.experiments import experiment, layer

if TYPE_CHECKING:
    from ab_testing.config import ExperimentsConfig

pytestmark = pytest.mark.spark

D1 = date(2031, 4, 1)
D2 = date(2031, 4, 2)
DAY = date(2031, 4, 2)
NOW = datetime(2031, 4, 2, 8, 0, tzinfo=UTC)
USERS = list(range(1, 31))


def experiments() -> ExperimentsConfig:
    return parse_config(
        {
            "version": 2,
            "holdout": {"salt": "holdout-parity", "buckets": 1000},
            "layers": [
                layer(
                    "ranking",
                    experiment(
                        "pop_test",
                        "2031-01-01",
                        "2031-12-01",
                        [0, 5000],
                        {"model": 1, "popularity": 1},
                    ),
                    experiment(
                        "tt_v2",
                        "2031-01-01",
                        "2031-12-01",
                        [5000, 10000],
                        {"control": 1, "two_tower": 1},
                        targeting=[{"attribute": "age", "op": "ge", "value": 18}],
                    ),
                ),
                layer(
                    "home_ui",
                    experiment(
                        "pop_row",
                        "2031-01-01",
                        "2031-12-01",
                        [0, 10000],
                        {"control": 1, "popularity": 3},
                    ),
                ),
            ],
        }
    )


def test_reader_returns_what_spark_wrote(spark_warehouse: Any, rows: Any) -> None:
    rng = random.Random(5)
    day1 = rows["recommendations"](D1, USERS, n=8, tag="old ")
    day2 = rows["recommendations"](D2, USERS, n=8)
    for r in day2:
        r[Col.SCORE] = rng.random()  # FLOAT in the table: compared after the round trip
    spark_warehouse.publish(SERVE_RECOMMENDATIONS, day1, D1)
    spark_warehouse.publish(SERVE_RECOMMENDATIONS, day2, D2)
    spark_warehouse.publish(SERVE_RELATED_ITEMS, rows["related"](D2, [5, 6], k=4), D2)
    spark_warehouse.publish(SERVE_TRENDING, rows["trending"](D2, {"all": [3, 1], "War": [1]}), D2)
    config = experiments()
    reader = Reader(spark_warehouse.root, experiments=config, sink=InMemorySink(), now=lambda: NOW)

    written = spark_warehouse.table(SERVE_RECOMMENDATIONS).where(F.col(Col.DS) == F.lit(D2))
    want: dict[tuple[str, int], list[tuple[int, float, str]]] = {}
    for r in written.orderBy(Col.REC_SET, Col.USER_ID, Col.RANK).collect():
        key = (r[Col.REC_SET], r[Col.USER_ID])
        want.setdefault(key, []).append((r[Col.ITEM_ID], r[Col.SCORE], r[Col.EXPLANATION]))
    served_sets = set()
    for user in USERS:
        result = reader.recommendations_for(user, n=50)
        served_sets.add(result.rec_set)
        got = [(i.item_id, i.score, i.reason) for i in result.items]
        assert got == want[(result.rec_set, user)], user  # type: ignore[index]
        assert result.ds == D2
    assert served_sets == {RecSet.MODEL, RecSet.POPULARITY}

    related = spark_warehouse.table(SERVE_RELATED_ITEMS).where(F.col(Col.ITEM_ID) == 6)
    expected = [r[Col.RELATED_ITEM_ID] for r in related.orderBy(Col.RANK).collect()]
    assert reader.related_to(6).item_ids == expected
    assert reader.trending().item_ids == [3, 1]
    assert reader.trending("War").item_ids == [1]


@pytest.mark.slow
def test_old_snapshot_is_served_whole_while_a_new_day_is_published(
    spark_warehouse: Any, rows: Any
) -> None:
    old = rows["recommendations"](D1, USERS, n=5, tag="old ")
    spark_warehouse.publish(SERVE_RECOMMENDATIONS, old, D1)
    expected = {
        tag: {u: [100 * u + r for r in range(1, 6)] for u in USERS} for tag in ("old ", "new ")
    }
    clock = [0.0]
    patient = Reader(
        spark_warehouse.root, sink=InMemorySink(), refresh_interval_s=3600, clock=lambda: clock[0]
    )
    eager = Reader(spark_warehouse.root, sink=InMemorySink(), refresh_interval_s=0)
    assert patient.recommendations_for(1).ds == D1
    observed: list[tuple[date | None, int | None, set[str], int, list[int]]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for u in (1, 17, 30):
                res = eager.recommendations_for(u, n=5)
                tags = {i.reason.split("because")[0] for i in res.items}
                observed.append((res.ds, res.table_version, tags, u, res.item_ids))

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        spark_warehouse.publish(
            SERVE_RECOMMENDATIONS, rows["recommendations"](D2, USERS, 5, "new "), D2
        )
        # The publisher is done; make sure the poller saw the new version at least once.
        deadline = datetime.now(UTC).timestamp() + 60
        while not any(o[0] == D2 for o in observed) and datetime.now(UTC).timestamp() < deadline:
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join()
    assert observed
    for ds, _, tags, user, items in observed:
        assert len(tags) == 1  # never a mix of days within one answer
        tag = tags.pop()
        assert (ds, tag) in ((D1, "old "), (D2, "new "))
        assert items == expected[tag][user]
    versions = [o[1] for o in observed if o[1] is not None]
    assert len(versions) == len(observed)
    assert versions == sorted(versions)  # never back to an older version
    assert observed[0][0] == D1
    assert observed[-1][0] == D2
    # The patient reader still serves the old day, whole, until its interval has passed.
    stale = patient.recommendations_for(17)
    assert (stale.ds, stale.items[0].reason) == (D1, "old because model 1")
    clock[0] = 3600.0
    assert patient.recommendations_for(17).ds == D2


def test_variant_parity_with_spark_assignment(spark: Any) -> None:
    config = experiments()
    population = [(str(u), 10 + u % 30) for u in range(1, 2001)]
    df = spark.createDataFrame(population, f"{Col.UNIT_ID} STRING, age INT")
    layer_order = {layer.id: i for i, layer in enumerate(config.layers)}
    by_unit: dict[str, list[tuple[int, str]]] = {}
    for r in assign_df(df, config, Col.UNIT_ID, DAY).collect():
        by_unit.setdefault(r[Col.UNIT_ID], []).append(
            (layer_order[r[Col.LAYER_ID]], r[Col.VARIANT])
        )
    reader = Reader("unused-root", experiments=config, sink=InMemorySink())
    counts: dict[str, int] = {}
    for unit, age in population:
        variants = [v for _, v in sorted(by_unit.get(unit, []))]
        want = next((v for v in variants if v in REC_SETS), RecSet.MODEL)
        got = reader.rec_set_for(int(unit), attributes={"age": age}, on=DAY)
        assert got == want, unit
        counts[got] = counts.get(got, 0) + 1
    # Both sets are served, and the holdout (10%) plus the non-set variants fall back to model.
    assert counts[RecSet.POPULARITY] > 300
    assert counts[RecSet.MODEL] > 300


def test_served_events_land_in_ab_served_for_the_exposure_job(
    spark_warehouse: Any, rows: Any, spark: Any
) -> None:
    spark_warehouse.publish(SERVE_RECOMMENDATIONS, rows["recommendations"](D2, USERS, n=3), D2)
    config = experiments()
    with DeltaServedSink(spark_warehouse.root, max_batch=4) as sink:
        reader = Reader(spark_warehouse.root, experiments=config, sink=sink, now=lambda: NOW)
        results = {u: reader.recommendations_for(u, n=3) for u in range(1, 11)}
        reader.recommendations_for(424242, n=2)  # unknown: trending fallback, still logged
    served = spark_warehouse.table(AB_SERVED)
    got = {r[Col.UNIT_ID]: r for r in served.collect()}
    assert len(got) == 11
    for u, res in results.items():
        row = got[str(u)]
        assert list(row[Col.ITEM_IDS]) == res.item_ids
        assert row[Col.REC_SET] == res.rec_set
        assert row[Col.MODEL_VERSION] == f"mv-{res.rec_set}"
        assert (row[Col.SOURCE], row[Col.DS], row[Col.SURFACE]) == ("app", DAY, "home")
        assert row[Col.SERVED_TS] == NOW.replace(tzinfo=None)  # naive UTC (TZ=UTC)
    assert got["424242"][Col.MODEL_VERSION] is None
    units = spark.createDataFrame([(str(u),) for u in range(1, 11)], f"{Col.UNIT_ID} STRING")
    assignments = assign_df(units.withColumn("age", F.lit(30)), config, Col.UNIT_ID, DAY)
    exposures = exposures_from_served(served, assignments.withColumn(Col.DS, F.lit(DAY))).collect()
    assigned = {r[Col.UNIT_ID] for r in assignments.collect()}
    assert {r[Col.UNIT_ID] for r in exposures} == assigned
    assert all(r[Col.FIRST_EXPOSURE_TS] == NOW.replace(tzinfo=None) for r in exposures)
