"""The pinned set works together: pandas UDFs over Arrow, and petastorm's Spark -> torch path."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark


def test_pandas_udf_round_trips_through_arrow(spark: SparkSession) -> None:
    @F.pandas_udf("double")  # type: ignore[attr-defined,untyped-decorator]
    def plus_half(x: pd.Series) -> pd.Series:
        return x + 0.5

    got = spark.range(1000).select(plus_half(F.col("id").cast("double")).alias("y")).agg(F.sum("y"))
    row = got.first()
    assert row is not None
    assert row[0] == sum(range(1000)) + 500.0


def test_petastorm_converter_feeds_a_torch_dataloader(spark: SparkSession, tmp_path: Path) -> None:
    import torch
    from petastorm.spark import SparkDatasetConverter, make_spark_converter

    from recsys.training.data import epoch_batches

    spark.conf.set(SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF, "file://" + str(tmp_path))
    df = spark.range(100).select(
        F.col("id").cast("long").alias("user_id"), (F.col("id") * 0.5).cast("float").alias("x")
    )
    converter = make_spark_converter(df)
    try:
        seen = 0
        # Through the training code's reader, which rereads a pass petastorm's pool cut short.
        for batch in epoch_batches(converter, 32):
            assert isinstance(batch["x"], torch.Tensor)
            assert batch["x"].dtype == torch.float32
            seen += len(batch["user_id"])
        assert seen == 100
    finally:
        converter.delete()
