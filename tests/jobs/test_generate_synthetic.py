"""The synthetic-data job end to end: bronze deliveries, idempotent reruns, ingestible CSVs."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import functions as F

from jobs import generate_synthetic, ingest
from recsys.synthetic import synthetic_interactions, synthetic_items
from recsys.warehouse.tables import (
    BRONZE_INTERACTIONS,
    BRONZE_ITEMS,
    BRONZE_QUARANTINE,
    BRONZE_USERS,
    OPS_INGEST_RUNS,
    Col,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark

DS = date(2026, 11, 28)
SIZE = ["--users", "200", "--items", "50", "--interactions", "5000", "--seed", "5"]
BRONZE = (BRONZE_ITEMS, BRONZE_INTERACTIONS, BRONZE_USERS)


def delivery(spark: SparkSession, table: TableRef, source: str) -> DataFrame:
    return spark.table(table.qualified_name).where(
        (F.col(Col.DS) == F.lit(DS)) & (F.col(Col.SOURCE) == F.lit(source))
    )


def counts(spark: SparkSession, source: str) -> dict[TableRef, int]:
    return {t: delivery(spark, t, source).count() for t in BRONZE}


def test_writes_three_tables_and_a_rerun_replaces(spark: SparkSession) -> None:
    argv = [*SIZE, "--ds", DS.isoformat(), "--source", "synth-job"]
    assert generate_synthetic.main([*argv, "--run-id", "first"]) == 0
    first = counts(spark, "synth-job")
    n_interactions = first[BRONZE_INTERACTIONS]
    assert first[BRONZE_ITEMS] == 50
    assert first[BRONZE_USERS] == 200
    assert 0 < n_interactions <= 5000
    users = delivery(spark, BRONZE_USERS, "synth-job")
    total = users.agg(F.sum(Col.N_INTERACTIONS)).first()
    assert total is not None
    assert total[0] == n_interactions
    latest = delivery(spark, BRONZE_INTERACTIONS, "synth-job").agg(F.max(Col.EVENT_TS)).first()
    assert latest is not None
    assert latest[0].date() < DS

    assert generate_synthetic.main([*argv, "--run-id", "second"]) == 0
    assert counts(spark, "synth-job") == first
    for table in BRONZE:
        run_ids = {r[0] for r in delivery(spark, table, "synth-job").select(Col.RUN_ID).collect()}
        assert run_ids == {"second"}


def test_csv_output_ingests_without_quarantine(spark: SparkSession, tmp_path: Path) -> None:
    out = tmp_path / "synth-ml"
    argv = [*SIZE, "--ds", DS.isoformat(), "--csv-out", str(out), "--csv-only"]
    assert generate_synthetic.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["movies.csv", "ratings.csv"]
    with (out / "movies.csv").open(newline="", encoding="utf-8") as f:
        movies = list(csv.reader(f))
    assert movies[0] == ["movieId", "title", "genres"]
    assert len(movies) == 51
    assert all(row[1].endswith(")") and row[1][-6:-5] == "(" for row in movies[1:])
    assert (out / "ratings.csv").read_text().splitlines()[0] == "userId,movieId,rating,timestamp"

    assert ingest.main(["--input", str(out), "--ds", DS.isoformat(), "--source", "synth-csv"]) == 0
    assert delivery(spark, BRONZE_QUARANTINE, "synth-csv").count() == 0
    runs = spark.table(OPS_INGEST_RUNS.qualified_name).where(F.col(Col.SOURCE) == "synth-csv")
    assert {r[Col.N_QUARANTINED] for r in runs.collect()} == {0}

    config = generate_synthetic.parse_args(argv).synthetic
    columns = [Col.USER_ID, Col.ITEM_ID, Col.RATING, Col.EVENT_TS]
    ingested = delivery(spark, BRONZE_INTERACTIONS, "synth-csv").select(*columns)
    generated = synthetic_interactions(spark, config).select(*columns)
    assert ingested.count() == generated.count()
    assert ingested.exceptAll(generated).count() == 0
    item_columns = [Col.ITEM_ID, Col.TITLE, Col.YEAR, Col.GENRES]
    ingested_items = delivery(spark, BRONZE_ITEMS, "synth-csv").select(*item_columns)
    generated_items = synthetic_items(spark, config).select(*item_columns)
    assert ingested_items.exceptAll(generated_items).count() == 0


@pytest.mark.parametrize(
    "extra",
    [
        ["--end", "2026-11-29"],  # events after the delivery date
        ["--csv-only"],  # nothing to write
        ["--users", "0"],
        ["--source", "Bad Name"],
    ],
)
def test_bad_arguments_exit_2_before_spark(extra: list[str]) -> None:
    assert generate_synthetic.main([*SIZE, "--ds", DS.isoformat(), *extra]) == 2


def test_write_single_csv_leaves_one_file(spark: SparkSession, tmp_path: Path) -> None:
    df = spark.createDataFrame([(1, 'a "b", c'), (2, "plain")], "id bigint, text string")
    path = tmp_path / "out.csv"
    generate_synthetic.write_single_csv(df.repartition(2), path)
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with path.open(newline="", encoding="utf-8") as f:
        got = list(csv.reader(f))
    assert got[0] == ["id", "text"]
    assert sorted(got[1:]) == [["1", 'a "b", c'], ["2", "plain"]]


def test_movielens_movies_layout(spark: SparkSession) -> None:
    items = spark.createDataFrame(
        [(3, 'The "Big" One, Part 2', 1999, ["Drama", "Sci-Fi"], "x")],
        "item_id bigint, title string, year int, genres array<string>, tag_text string",
    )
    [row] = generate_synthetic.movielens_movies(items).collect()
    assert row.asDict() == {
        "movieId": 3,
        "title": 'The "Big" One, Part 2 (1999)',
        "genres": "Drama|Sci-Fi",
    }
