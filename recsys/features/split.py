"""Train/validation/test splits of interactions; every feature is computed from the train role.

Two split definitions, each with its own ``split_id`` so several coexist in the feature tables:

* :class:`LeaveLastOut` (``split_id = "leave_last_out"``). Each user's interactions are ordered by
  ``(event_ts, item_id)``: the item id breaks ties between events of the same second, whose true
  order is unknown. The user's last positive opens the **test** window, the positive before it
  the **validation** window; every interaction at or after the last positive is ``test``, every
  one from the second-to-last positive up to the last is ``validation``, everything earlier is
  ``train``. So each held-out role holds exactly one positive (plus the non-positive events
  that followed it) and train holds only what happened before the user's validation positive.
  Users with fewer than ``min_positives`` (>= 3) positives cannot give one positive to each role;
  all their interactions stay ``train`` and they are never evaluated.
* :class:`TimeCutoff` (``split_id = "time_cutoff_<YYYYMMDDTHHMMSS>"``). One global instant:
  ``event_ts < validation_cutoff`` is train, ``[validation_cutoff, cutoff)`` validation and
  ``>= cutoff`` test. Without a validation cutoff there is no validation role.

:func:`as_of` gives the end of the train window, the reference time of recency features.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from pyspark.sql import Column, Window
from pyspark.sql import functions as F

from recsys.validation import check_int
from recsys.warehouse.tables import Col, TableRef

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_KEY: Final = "_key"
_TEST_KEY: Final = "_test_key"
_VALIDATION_KEY: Final = "_validation_key"
_RANK: Final = "_rank"
_N: Final = "_n"

#: Columns :func:`split_interactions` reads (and passes through, in this order).
INTERACTION_COLUMNS: Final = (Col.USER_ID, Col.ITEM_ID, Col.RATING, Col.IS_POSITIVE, Col.EVENT_TS)


class Role(StrEnum):
    """Role of an interaction in a split, in time order (see :data:`ROLE_ORDER`)."""

    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"


#: Position of each role in time: what is known at a role is every role with a lower or equal rank.
ROLE_ORDER: Final[dict[Role, int]] = {Role.TRAIN: 0, Role.VALIDATION: 1, Role.TEST: 2}


def _utc(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{name}: expected a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class LeaveLastOut:
    """Per-user temporal leave-last-out (last positive -> test, the one before -> validation).

    Attributes:
        min_positives: Users with fewer positives keep everything in train, >= 3 (one positive
            each for train, validation and test).
    """

    min_positives: int = 3

    def __post_init__(self) -> None:
        check_int("min_positives", self.min_positives, 3)

    @property
    def split_id(self) -> str:
        return "leave_last_out"


@dataclass(frozen=True, slots=True)
class TimeCutoff:
    """Global time cutoff: train before, test from ``cutoff`` (validation in between if given).

    Attributes:
        cutoff: First instant of the test window; timezone-aware, stored in UTC.
        validation_cutoff: First instant of the validation window, before ``cutoff``; None for no
            validation role.
    """

    cutoff: datetime
    validation_cutoff: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "cutoff", _utc("cutoff", self.cutoff))
        if self.validation_cutoff is not None:
            start = _utc("validation_cutoff", self.validation_cutoff)
            if start >= self.cutoff:
                raise ValueError(
                    f"validation_cutoff: must be before cutoff {self.cutoff.isoformat()}, "
                    f"got {start.isoformat()}"
                )
            object.__setattr__(self, "validation_cutoff", start)

    @property
    def train_end(self) -> datetime:
        """First instant not in train."""
        return self.validation_cutoff or self.cutoff

    @property
    def split_id(self) -> str:
        # No ':' (not allowed in Hadoop path names, and split_id is a partition directory).
        suffix = self.cutoff.strftime("%Y%m%dT%H%M%S")
        if self.validation_cutoff is not None:
            suffix += "_val" + self.validation_cutoff.strftime("%Y%m%dT%H%M%S")
        return "time_cutoff_" + suffix


Split = LeaveLastOut | TimeCutoff


def _order_key() -> Column:
    return F.struct(F.col(Col.EVENT_TS), F.col(Col.ITEM_ID))


def _leave_last_out(interactions: DataFrame, split: LeaveLastOut) -> DataFrame:
    positives = interactions.where(F.col(Col.IS_POSITIVE)).select(
        Col.USER_ID, _order_key().alias(_KEY)
    )
    newest_first = Window.partitionBy(Col.USER_ID).orderBy(F.col(_KEY).desc())
    ranked = positives.withColumns(
        {
            _RANK: F.row_number().over(newest_first),
            _N: F.count(F.lit(1)).over(Window.partitionBy(Col.USER_ID)),
        }
    ).where((F.col(_RANK) <= 2) & (F.col(_N) >= split.min_positives))
    bounds = ranked.groupBy(Col.USER_ID).agg(
        F.max(F.when(F.col(_RANK) == 1, F.col(_KEY))).alias(_TEST_KEY),
        F.max(F.when(F.col(_RANK) == 2, F.col(_KEY))).alias(_VALIDATION_KEY),
    )
    key = _order_key()
    role = (
        F.when(F.col(_TEST_KEY).isNull(), F.lit(Role.TRAIN.value))
        .when(key >= F.col(_TEST_KEY), F.lit(Role.TEST.value))
        .when(key >= F.col(_VALIDATION_KEY), F.lit(Role.VALIDATION.value))
        .otherwise(F.lit(Role.TRAIN.value))
    )
    joined = interactions.join(bounds, Col.USER_ID, "left")
    return joined.select(*INTERACTION_COLUMNS, role.alias(Col.ROLE))


def _time_cutoff(interactions: DataFrame, split: TimeCutoff) -> DataFrame:
    ts = F.col(Col.EVENT_TS)
    role = F.when(ts >= F.lit(split.cutoff), F.lit(Role.TEST.value))
    if split.validation_cutoff is not None:
        role = role.when(ts >= F.lit(split.validation_cutoff), F.lit(Role.VALIDATION.value))
    return interactions.select(
        *INTERACTION_COLUMNS, role.otherwise(F.lit(Role.TRAIN.value)).alias(Col.ROLE)
    )


def split_interactions(interactions: DataFrame, split: Split) -> DataFrame:
    """Give every interaction its role under ``split``.

    Args:
        interactions: Rows with :data:`INTERACTION_COLUMNS` (one delivery of
            ``bronze.interactions``; a user rates an item at most once).
        split: The split definition.

    Returns:
        :data:`INTERACTION_COLUMNS` plus ``role`` (a :class:`Role` value); same rows.
    """
    if isinstance(split, LeaveLastOut):
        return _leave_last_out(interactions, split)
    return _time_cutoff(interactions, split)


def table_slice(spark: SparkSession, table: TableRef, ds: date, split_id: str) -> DataFrame:
    """Rows of ``table`` (a ``features.*`` table, partitioned by ``ds`` and ``split_id``) for one
    ``(ds, split_id)``."""
    return spark.table(table.qualified_name).where(
        (F.col(Col.DS) == F.lit(ds)) & (F.col(Col.SPLIT_ID) == F.lit(split_id))
    )


def train_rows(split_df: DataFrame) -> DataFrame:
    """The train role of a split DataFrame (the only rows features may read)."""
    return split_df.where(F.col(Col.ROLE) == F.lit(Role.TRAIN.value))


def as_of(split_df: DataFrame, split: Split) -> datetime:
    """End of the train window (UTC): the reference time of recency and decay features.

    The cutoff for :class:`TimeCutoff`; for :class:`LeaveLastOut` the last train event (runs one
    Spark aggregation), or the Unix epoch when train is empty.
    """
    if isinstance(split, TimeCutoff):
        return split.train_end
    row = train_rows(split_df).agg(F.max(Col.EVENT_TS).alias(Col.EVENT_TS)).first()
    last = None if row is None else row[Col.EVENT_TS]
    if last is None:
        return datetime(1970, 1, 1, tzinfo=UTC)
    # PySpark returns naive datetimes in the Python process's local zone, whatever the session's;
    # astimezone reads a naive datetime as local time.
    return last.astimezone(UTC)  # type: ignore[no-any-return]
