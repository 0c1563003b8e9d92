"""Benchmark assignment: the native Spark expression against Python and pandas UDFs.

Usage::

    python bench/bench_assignment.py                  # 5M units, 2 layers, holdout
    python bench/bench_assignment.py --rows 1000000 --no-pandas

All three paths assign the same generated units (``user-<n>``) with the same config (a 5%
holdout, two layers, three experiments, targeting-free) in the same session, and each result
is forced in full by a write to Spark's ``noop`` sink. The UDFs call the pure-Python reference
(:func:`ab_testing.assignment.assign`) per unit; before timing, a check on the first 100k units
confirms that all three produce the same rows. Prints ONE JSON line on stdout (logs go to
stderr): units per second for each path (a rate over input units; Spark start-up and warm-up
excluded) and the native speed-up against the >= 10x goal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from ab_testing.config import ExperimentsConfig

GOAL = 10.0
DAY = date(2026, 1, 10)
CONFIG: dict[str, Any] = {
    "version": 1,
    "holdout": {"salt": "holdout-bench", "buckets": 500},
    "layers": [
        {
            "id": "ranking",
            "experiments": [
                {
                    "id": "two_tower",
                    "start": "2026-01-01",
                    "end": "2026-02-01",
                    "buckets": [0, 4000],
                    "variants": [
                        {"id": "control", "weight": 1, "control": True},
                        {"id": "treat", "weight": 1},
                    ],
                },
                {
                    "id": "diversity",
                    "start": "2026-01-01",
                    "end": "2026-02-01",
                    "buckets": [4000, 8000],
                    "variants": [
                        {"id": "control", "weight": 0.5, "control": True},
                        {"id": "mmr_03", "weight": 0.25},
                        {"id": "mmr_05", "weight": 0.25},
                    ],
                },
            ],
        },
        {
            "id": "ui",
            "experiments": [
                {
                    "id": "carousel",
                    "start": "2026-01-01",
                    "end": "2026-02-01",
                    "buckets": [0, 10000],
                    "variants": [
                        {"id": "control", "weight": 1, "control": True},
                        {"id": "rows3", "weight": 1},
                    ],
                }
            ],
        },
    ],
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_assignment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="units to assign")
    parser.add_argument("--partitions", type=int, help="input partitions (default: 2 per core)")
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas UDF")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error(f"--rows: must be >= 1, got {args.rows}")
    return args


def _labels(config: ExperimentsConfig, unit: str) -> list[str]:
    from ab_testing.assignment import assign

    return [a.experiment_id + "/" + a.variant for a in assign(config, unit, on=DAY)]


def _paths(
    config: ExperimentsConfig,
) -> dict[str, Callable[[DataFrame], DataFrame]]:
    """Each path maps the units to (unit_id, label) rows, one per unit x experiment."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.pandas.functions import pandas_udf as vectorised

    from ab_testing.assignment_spark import assign_df
    from recsys.warehouse.tables import Col

    labels = T.ArrayType(T.StringType())

    @F.udf(labels)  # type: ignore[misc]
    def python_udf(unit: str) -> list[str]:
        return _labels(config, unit)

    # pandas-UDF type hints are read at run time: pd must be a module global.
    @vectorised(labels)  # type: ignore[call-overload, misc, untyped-decorator]
    def pandas_udf(units: pd.Series) -> pd.Series:
        return units.map(lambda u: _labels(config, u))

    def native(df: DataFrame) -> DataFrame:
        out = assign_df(df, config, Col.UNIT_ID, DAY)
        label = F.concat_ws("/", Col.EXPERIMENT_ID, Col.VARIANT)
        return out.select(Col.UNIT_ID, label.alias("label"))

    def via(udf: Callable[[Any], Any]) -> Callable[[DataFrame], DataFrame]:
        return lambda df: df.select(Col.UNIT_ID, F.explode(udf(Col.UNIT_ID)).alias("label"))

    return {"native": native, "python_udf": via(python_udf), "pandas_udf": via(pandas_udf)}


def _units(spark: SparkSession, n: int, partitions: int) -> DataFrame:
    from pyspark.sql import functions as F

    from recsys.warehouse.tables import Col

    unit = F.concat(F.lit("user-"), F.col("id").cast("string"))
    return spark.range(0, n, numPartitions=partitions).select(unit.alias(Col.UNIT_ID))


def _checksum(df: DataFrame) -> tuple[int, int]:
    from pyspark.sql import functions as F

    row = df.agg(F.count("*"), F.sum(F.xxhash64("unit_id", "label") % 1_000_003)).first()
    if row is None:
        raise RuntimeError("checksum: empty aggregate")
    return int(row[0]), int(row[1] or 0)


def _timed(build: Callable[[DataFrame], DataFrame], df: DataFrame) -> float:
    started = time.perf_counter()
    build(df).write.format("noop").mode("overwrite").save()
    return time.perf_counter() - started


def run(spark: SparkSession, args: argparse.Namespace) -> Iterator[tuple[str, Any]]:
    from ab_testing.config import parse_config

    config = parse_config(CONFIG)
    paths = _paths(config)
    if args.no_pandas:
        del paths["pandas_udf"]
    partitions = args.partitions or 2 * (os.cpu_count() or 1)
    sample = _units(spark, min(args.rows, 100_000), partitions)
    sums = {name: _checksum(build(sample)) for name, build in paths.items()}
    if len(set(sums.values())) != 1:
        raise RuntimeError(f"paths disagree on the first 100k units: {sums}")
    units = _units(spark, args.rows, partitions)
    yield "units", args.rows
    yield "partitions", partitions
    yield "assigned_rows", _checksum(paths["native"](units))[0]
    rates = {}
    for name, build in paths.items():
        _timed(build, sample)  # warm-up: code generation, Python workers
        seconds = _timed(build, units)
        rates[name] = args.rows / seconds
        yield name + "_seconds", round(seconds, 2)
        yield name + "_units_per_s", round(rates[name])
    for name in rates:
        if name != "native":
            yield "speedup_vs_" + name, round(rates["native"] / rates[name], 1)
    yield "goal_speedup", GOAL
    yield "goal_met", all(rates["native"] / r >= GOAL for n, r in rates.items() if n != "native")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-assignment-"))
    os.environ["RECSYS_WAREHOUSE"] = str(root)
    os.environ.setdefault("RECSYS_SPARK_UI", "false")
    from jobs.common import configure_logging
    from recsys.settings import load_settings
    from recsys.warehouse.session import build_spark

    configure_logging()
    spark = build_spark(load_settings(), app_name="bench_assignment", attach=False)
    try:
        record: dict[str, Any] = {"bench": "assignment"}
        record.update(run(spark, args))
        record["cores"] = os.cpu_count()
        print(json.dumps(record), flush=True)
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
