"""The feature job end to end on a tiny ingest: outputs, idempotent reruns, one commit per table."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from pyspark.sql import functions as F

from jobs import features, ingest
from recsys.training.covisit import CovisitConfig, covisit_matrix, matrix_from_ids
from recsys.training.covisit_spark import stored_day
from recsys.warehouse.completion import table_version
from recsys.warehouse.tables import (
    FEATURES_COVISIT,
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_ITEM_FEATURES,
    FEATURES_RANKER_EXAMPLES,
    FEATURES_USER_FEATURES,
    Col,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

SOURCE = "features-tiny"
DS = "2030-01-02"
TABLES = (
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_USER_FEATURES,
    FEATURES_ITEM_FEATURES,
    FEATURES_RANKER_EXAMPLES,
    FEATURES_COVISIT,
)
MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    "2,Jumanji (1995),Adventure|Children|Fantasy\n"
    "3,Heat (1995),Action|Crime|Thriller\n"
    "4,Sabrina (1995),Comedy|Romance\n"
    "5,GoldenEye (1995),Action|Adventure|Thriller\n"
    "6,Nobody Rated This (2001),(no genres listed)\n"
)


def rating(user: int, item: int) -> float:
    """Users 1-3 like four of items 1-5; user 4 likes two, too few to hold any out."""
    if user == 4:
        return 5.0 if item <= 2 else 1.0
    return 2.0 if (user + item) % 4 == 0 else 4.5


# Users 1-4 rate items 1-5, a day apart per user and an hour apart per item.
RATINGS = [
    f"{u},{i},{rating(u, i)},{1_500_000_000 + u * 86_400 + i * 3_600}"
    for u in range(1, 5)
    for i in range(1, 6)
]


def ingest_tiny(directory: Path) -> None:
    directory.mkdir()
    (directory / "movies.csv").write_text(MOVIES)
    (directory / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(RATINGS))
    (directory / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,1,pixar,1500000000\n")
    argv = ["--input", str(directory), "--ds", "2030-01-01", "--source", SOURCE]
    assert ingest.main(argv) == 0


def state(spark: SparkSession, split_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """Rows of (DS, split_id) and the latest Delta version, per table."""
    counts = " UNION ALL ".join(
        f"SELECT '{t}' AS t, COUNT(*) AS n FROM {t.qualified_name} "
        f"WHERE ds = DATE'{DS}' AND split_id = '{split_id}'"
        for t in TABLES
    )
    rows = {r["t"]: r["n"] for r in spark.sql(counts).collect()}
    return rows, {str(t): table_version(spark, t) for t in TABLES}


def test_job_writes_every_table_once_and_reruns_idempotently(
    spark: SparkSession, tmp_path: Path
) -> None:
    ingest_tiny(tmp_path / "tiny")
    argv = ["--ds", DS, "--source", SOURCE, "--no-content", "--negatives-per-positive", "2"]
    argv += ["--covisit-top-n", "2"]
    _, before = state(spark, "leave_last_out")
    assert features.main(argv) == 0
    first, after_first = state(spark, "leave_last_out")
    assert features.main(argv) == 0
    second, after_second = state(spark, "leave_last_out")

    assert first == second
    assert first["features.interactions_split"] == len(RATINGS)
    assert first["features.item_features"] == 6
    assert first["features.user_features"] == 4
    for t in TABLES:  # one commit per table and run
        assert after_first[str(t)] == before[str(t)] + 1
        assert after_second[str(t)] == after_first[str(t)] + 1

    items = {
        r[Col.ITEM_ID]: r
        for r in spark.table(FEATURES_ITEM_FEATURES.qualified_name)
        .where(F.col(Col.DS) == F.lit(date.fromisoformat(DS)))
        .collect()
    }
    assert sorted(r[Col.ITEM_INDEX] for r in items.values()) == [1, 2, 3, 4, 5, 6]
    assert items[6][Col.IS_COLD]
    assert items[1][Col.TEXT] == (
        "Toy Story. Genres: Adventure, Animation, Children, Comedy, Fantasy. Tags: pixar."
    )
    roles = {
        r[Col.ROLE]: r["n"]
        for r in spark.table(FEATURES_INTERACTIONS_SPLIT.qualified_name)
        .where(F.col(Col.SPLIT_ID) == "leave_last_out")
        .groupBy(Col.ROLE)
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    }
    # Users 1-3 hold out two positives each (plus any later non-positive); user 4 is all train.
    assert roles["validation"] >= 3
    assert roles["test"] >= 3
    users = spark.table(FEATURES_USER_FEATURES.qualified_name).where(
        (F.col(Col.DS) == F.lit(date.fromisoformat(DS))) & (F.col(Col.USER_ID) == 4)
    )
    row = users.first()
    assert row is not None
    assert list(row[Col.HISTORY]) == [1, 2]
    # Ranker examples only of the role the ranker reads (every role held positives above).
    example_roles = {
        r[Col.ROLE]
        for r in spark.table(FEATURES_RANKER_EXAMPLES.qualified_name)
        .where(F.col(Col.DS) == F.lit(date.fromisoformat(DS)))
        .where(F.col(Col.SPLIT_ID) == "leave_last_out")
        .select(Col.ROLE)
        .distinct()
        .collect()
    }
    assert example_roles == {"validation"}

    # features.covisit: the numpy matrix of the written train events, cut to --covisit-top-n.
    day = F.col(Col.DS) == F.lit(date.fromisoformat(DS))
    train = (
        spark.table(FEATURES_INTERACTIONS_SPLIT.qualified_name)
        .where(day & (F.col(Col.SPLIT_ID) == "leave_last_out") & (F.col(Col.ROLE) == "train"))
        .toPandas()
        .sort_values([Col.USER_ID, Col.EVENT_TS, Col.ITEM_ID])
    )
    seqs: dict[int, list[int]] = {}
    for u, i in zip(train[Col.USER_ID].to_numpy(), train[Col.ITEM_ID].to_numpy(), strict=True):
        seqs.setdefault(int(u), []).append(int(i))
    cov = spark.table(FEATURES_COVISIT.qualified_name).where(day).toPandas()
    assert set(cov[Col.TOP_N]) == {2}
    assert set(cov[Col.COVISIT_WINDOW]) == {CovisitConfig().window}
    want = covisit_matrix(seqs, 6, CovisitConfig(top_n=2))
    got = matrix_from_ids(
        cov[Col.ITEM_ID].to_numpy(),
        cov[Col.NEXT_ITEM_ID].to_numpy(),
        cov[Col.WEIGHT].to_numpy(),
        np.arange(1, 7),
    )
    assert got.nnz == want.nnz == len(cov) > 0
    np.testing.assert_allclose(got.toarray(), want.toarray(), atol=1e-6)

    # A day the DAG does not train (--no-covisit): every other table gets the day, the matrix
    # is left alone, and readers of the next day find this one.
    next_day = "2030-01-03"
    assert features.main(["--ds", next_day, *argv[2:], "--no-covisit"]) == 0
    _, after_skip = state(spark, "leave_last_out")
    assert after_skip[str(FEATURES_COVISIT)] == after_second[str(FEATURES_COVISIT)]
    assert (
        after_skip[str(FEATURES_INTERACTIONS_SPLIT)]
        == after_second[str(FEATURES_INTERACTIONS_SPLIT)] + 1
    )
    later = date.fromisoformat(next_day)
    assert spark.table(FEATURES_COVISIT.qualified_name).where(F.col(Col.DS) == later).count() == 0
    assert stored_day(spark, later, "leave_last_out", CovisitConfig(top_n=2)) == date.fromisoformat(
        DS
    )
    assert features.parse_args(["--ds", DS]).write_covisit
    assert not features.parse_args(["--ds", DS, "--no-covisit"]).write_covisit


def test_other_splits_of_the_same_ds_are_left_alone(spark: SparkSession) -> None:
    table: TableRef = FEATURES_RANKER_EXAMPLES
    df = spark.createDataFrame(
        [(1, 2, 1.0, "positive", "train")],
        "user_id BIGINT, item_id BIGINT, label FLOAT, kind STRING, role STRING",
    )
    ds = date(2030, 3, 1)
    features.replace_split(df, table, ds, "leave_last_out")
    features.replace_split(df.union(df), table, ds, "time_cutoff_20300101T000000")
    features.replace_split(df, table, ds, "time_cutoff_20300101T000000")
    per_split = {
        r[Col.SPLIT_ID]: r["n"]
        for r in spark.table(table.qualified_name)
        .where(F.col(Col.DS) == F.lit(ds))
        .groupBy(Col.SPLIT_ID)
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    }
    assert per_split == {"leave_last_out": 1, "time_cutoff_20300101T000000": 1}


@pytest.mark.parametrize(
    "argv",
    [
        ["--split", "time_cutoff"],  # no --cutoff
        ["--cutoff", "2020-01-01"],  # a cutoff without time_cutoff
        ["--history-len", "0"],
        ["--covisit-top-n", "0"],
        ["--example-roles", "nope"],
        ["--example-roles", ""],
        ["--example-roles", "train,train"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    assert features.main(["--ds", DS, *argv]) == 2


def test_missing_delivery_exits_2(spark: SparkSession) -> None:
    assert features.main(["--ds", DS, "--source", "never-ingested"]) == 2


def test_example_roles_are_parsed_in_time_order() -> None:
    assert features.parse_args(["--ds", DS]).example_roles == ("validation",)
    config = features.parse_args(["--ds", DS, "--example-roles", "test, train"])
    assert config.example_roles == ("train", "test")
