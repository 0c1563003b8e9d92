"""The outcome joins' definition in pure Python, shared by the Spark tests of
:mod:`ab_testing.outcomes`: the input frames' schemas and what one unit's events add up to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from ab_testing.metrics_config import EventAggregate

EXPOSURES_SCHEMA = (
    "experiment_id string, variant string, unit_id string, first_exposure_ts timestamp"
)
EVENTS_SCHEMA = "unit_id string, event_type string, event_ts timestamp, value double"
#: (experiment_id, variant, unit_id, first_exposure_ts)
Exposure = tuple[str, str, str, datetime]
#: (unit_id, event_type, event_ts, value)
Event = tuple[str, str, datetime, float | None]


def input_frames(
    spark: SparkSession, exposures: Sequence[Exposure], events: Sequence[Event]
) -> tuple[DataFrame, DataFrame]:
    """The exposures and events as the DataFrames ``sufficient_stats`` takes."""
    return (
        spark.createDataFrame(list(exposures), EXPOSURES_SCHEMA),
        spark.createDataFrame(list(events), EVENTS_SCHEMA),
    )


def event_total(
    events: Sequence[Event], agg: EventAggregate, unit: str, lo: datetime, hi: datetime
) -> float:
    """``agg`` over ``unit``'s events of type ``agg.event`` in ``[lo, hi)``: their count, the sum
    of their values (a missing value counts 0) or, for ``any``, 1 if there is one else 0."""
    hits = [(v or 0.0) for u, t, ts, v in events if u == unit and t == agg.event and lo <= ts < hi]
    if agg.agg == "any":
        return 1.0 if hits else 0.0
    return float(sum(hits)) if agg.agg == "sum" else float(len(hits))
