"""The Spark trending lists equal the pandas twin; the default as-of instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from recsys.surfaces.trending import default_as_of, end_of_day, trending, widen_windows
from recsys.surfaces.trending_formula import TRENDING_COLUMNS, TrendingConfig, trending_pandas
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

AS_OF = datetime(2018, 9, 24, 14, 27, 30, tzinfo=UTC)
GENRES = ["Action", "Comedy", "Drama", "Horror"]


def random_data(seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_items, n_events = 60, 3000
    # Item i's events pile up towards as_of more the larger i is: a spread of growth.
    items = rng.integers(1, n_items + 1, size=n_events)
    ages = rng.exponential(scale=5.0 + 60.0 / items, size=n_events) + rng.uniform(
        -1, 0.001, n_events
    )
    interactions = pd.DataFrame(
        {
            Col.USER_ID: rng.integers(1, 80, size=n_events),
            Col.ITEM_ID: items,
            Col.EVENT_TS: [AS_OF - timedelta(days=float(a)) for a in ages],
        }
    )
    catalogue = pd.DataFrame(
        {
            Col.ITEM_ID: np.arange(1, n_items + 1),
            Col.GENRES: [
                [GENRES[j] for j in range(4) if (i >> j) & 1] for i in range(1, n_items + 1)
            ],
        }
    )
    return interactions, catalogue


def test_spark_equals_pandas(spark: SparkSession) -> None:
    interactions, catalogue = random_data()
    config = TrendingConfig(recent_days=7, baseline_days=28, min_support=2, top_k=5)
    sdf_inter = spark.createDataFrame(
        interactions, f"{Col.USER_ID} BIGINT, {Col.ITEM_ID} BIGINT, {Col.EVENT_TS} TIMESTAMP"
    )
    sdf_items = spark.createDataFrame(
        catalogue, f"{Col.ITEM_ID} BIGINT, {Col.GENRES} ARRAY<STRING>"
    )
    got = trending(sdf_inter, sdf_items, AS_OF, config).toPandas()
    want = trending_pandas(interactions, catalogue, AS_OF, config)
    assert tuple(got.columns) == TRENDING_COLUMNS
    key = [Col.GENRE, Col.RANK]
    got = got.sort_values(key).reset_index(drop=True)
    want = want.sort_values(key).reset_index(drop=True)
    assert got[Col.GENRE].tolist() == want[Col.GENRE].tolist()
    assert got[Col.ITEM_ID].tolist() == want[Col.ITEM_ID].tolist()
    for col in (Col.SCORE, Col.RECENT_COUNT, Col.BASELINE_COUNT):
        assert np.allclose(got[col], want[col], rtol=1e-9, atol=1e-12)
    assert set(got[Col.GENRE]) == {"all", *GENRES}


def test_default_as_of_is_latest_event_of_the_day(spark: SparkSession) -> None:
    rows = [
        (1, 1, datetime(2018, 9, 24, 23, 59, 59, tzinfo=UTC)),
        (1, 2, datetime(2018, 9, 25, 0, 0, 0, tzinfo=UTC)),
        (1, 3, datetime(2018, 9, 20, tzinfo=UTC)),
    ]
    df = spark.createDataFrame(
        rows, f"{Col.USER_ID} BIGINT, {Col.ITEM_ID} BIGINT, {Col.EVENT_TS} TIMESTAMP"
    )
    assert end_of_day(date(2018, 9, 24)) == datetime(2018, 9, 25, tzinfo=UTC)
    assert default_as_of(df, date(2018, 9, 24)) == rows[0][2]
    assert default_as_of(df, date(2018, 9, 19)) is None


def test_windows_widen_until_enough_items(spark: SparkSession) -> None:
    # Item 1: three users 2 days ago. Item 2: three users 20-22 days ago, recent only from 28 days.
    rows = [(u, 1, AS_OF - timedelta(days=2)) for u in (1, 2, 3)]
    rows += [(u, 2, AS_OF - timedelta(days=18 + u)) for u in (2, 3, 4)]
    df = spark.createDataFrame(
        rows, f"{Col.USER_ID} BIGINT, {Col.ITEM_ID} BIGINT, {Col.EVENT_TS} TIMESTAMP"
    )
    config = TrendingConfig(recent_days=7, baseline_days=28, min_support=3)
    widened = widen_windows(df, AS_OF, config, min_items=2)
    assert (widened.recent_days, widened.baseline_days) == (28, 112)
    assert widen_windows(df, AS_OF, config, min_items=1) == config
    assert widen_windows(df, AS_OF, config, min_items=0) == config
    # Never enough: the widest window tried.
    assert widen_windows(df, AS_OF, config, min_items=5, max_doublings=1).recent_days == 14
    with pytest.raises(ValueError, match="min_items"):
        widen_windows(df, AS_OF, config, min_items=-1)
