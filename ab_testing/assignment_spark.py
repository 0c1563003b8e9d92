"""Experiment assignment as native Spark expressions, and first exposures from served events.

The same recipe and decision logic as :mod:`ab_testing.assignment` (read its docstring), built
from Spark built-ins only (``xxhash64``, ``shiftrightunsigned``, ``CASE WHEN``): no Python UDF,
so rows never leave the JVM. Both implementations walk the same plan,
:meth:`ab_testing.config.ExperimentsConfig.active`, and a parity test holds them equal.

Config names reach Spark only as literals (salts, ids, filter values) or as column references
that were validated against the id pattern and checked to exist in the input; none is formatted
into SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import reduce
from typing import TYPE_CHECKING, Final

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ab_testing.bucketing import N_BUCKETS, SEPARATOR
from ab_testing.config_model import Experiment, check_id, check_salt
from recsys.warehouse.io import with_conflict_retry
from recsys.warehouse.tables import AB_ASSIGNMENTS, AB_EXPOSURES, Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from ab_testing.config_model import ExperimentsConfig, TargetingFilter

#: What :func:`assign_df` returns, one row per unit x experiment.
ASSIGNMENT_SCHEMA: Final = T.StructType(
    [
        T.StructField(Col.UNIT_ID, T.StringType(), False),
        T.StructField(Col.EXPERIMENT_ID, T.StringType(), False),
        T.StructField(Col.LAYER_ID, T.StringType(), False),
        T.StructField(Col.VARIANT, T.StringType(), False),
        T.StructField(Col.IS_CONTROL, T.BooleanType(), False),
        T.StructField(Col.BUCKET, T.IntegerType(), False),
        T.StructField(Col.VARIANT_BUCKET, T.IntegerType(), False),
    ]
)
ASSIGNMENT_COLUMNS: Final = tuple(ASSIGNMENT_SCHEMA.fieldNames())
EXPOSURE_COLUMNS: Final = (
    Col.EXPERIMENT_ID,
    Col.LAYER_ID,
    Col.VARIANT,
    Col.UNIT_ID,
    Col.FIRST_EXPOSURE_TS,
    Col.SURFACE,
    Col.DS,
)
# Intermediate columns, dropped before anything is returned.
_LAYER_BUCKETS: Final = "_ab_layer_buckets"
_PER_LAYER: Final = "_ab_per_layer"
_FIRST: Final = "_ab_first"


def bucket_col(salt: str, unit: Column | str) -> Column:
    """The unit's bucket under ``salt`` as an INT column in [0, 10000); NULL for a NULL unit.

    Native twin of :func:`ab_testing.assignment.bucket`: ``xxhash64`` is XXH64 with seed 42 of
    the string's UTF-8 bytes.

    Args:
        salt: A valid salt (``[a-z0-9][a-z0-9_.-]{0,62}``).
        unit: A STRING column, or its name.
    """
    check_salt("salt", salt)
    col = F.col(unit) if isinstance(unit, str) else unit
    digest = F.xxhash64(F.concat(F.lit(salt + SEPARATOR), col))
    # xxhash64 skips NULL inputs and would return its seed; a NULL unit has no bucket.
    return F.when(col.isNotNull(), (F.shiftrightunsigned(digest, 1) % N_BUCKETS).cast("int"))


_KIND_TYPES: Final = {
    "string": (T.StringType,),
    "number": (T.NumericType,),
    "bool": (T.BooleanType,),
}


def targeting_col(flt: TargetingFilter, schema: T.StructType) -> Column:
    """The filter as a non-NULL BOOLEAN column over ``schema`` (NULL or NaN never matches).

    Raises:
        ValueError: the attribute is not a column of ``schema``.
        TypeError: the column's type does not fit the filter's value kind.
    """
    if flt.attribute not in schema.fieldNames():
        raise ValueError(
            f"targeting attribute: {flt.attribute!r} is not a column of the input "
            f"{schema.fieldNames()!r}"
        )
    dtype = schema[flt.attribute].dataType
    if not isinstance(dtype, _KIND_TYPES[flt.kind]):
        raise TypeError(
            f"targeting attribute: column {flt.attribute!r} is {dtype.simpleString()}, "
            f"but the filter compares a {flt.kind}"
        )
    col = F.col(check_id("attribute", flt.attribute))
    if flt.op == "eq":
        pred = col == F.lit(flt.values[0])
    elif flt.op == "in":
        pred = col.isin(list(flt.values))
    elif flt.op == "lt":
        pred = col < F.lit(flt.values[0])
    elif flt.op == "le":
        pred = col <= F.lit(flt.values[0])
    elif flt.op == "gt":
        pred = col > F.lit(flt.values[0])
    else:
        pred = col >= F.lit(flt.values[0])
    if isinstance(dtype, (T.FloatType, T.DoubleType)):
        # Spark orders NaN above every number and NaN = NaN; Python treats NaN as missing.
        pred = pred & ~F.isnan(col)
    return F.coalesce(pred, F.lit(False))


def _case(branches: Sequence[tuple[Column, Column | str]]) -> Column:
    """``CASE WHEN c1 THEN v1 WHEN c2 THEN v2 ... END`` (NULL when none holds); str = literal."""
    (cond, value), *rest = branches
    return reduce(lambda acc, cv: acc.when(cv[0], cv[1]), rest, F.when(cond, value))


def _variant_col(exp: Experiment, variant_bucket: Column) -> Column:
    # Variant k owns experiment buckets [bound[k-1], bound[k]); the last bound is 10000.
    return _case(
        [
            (variant_bucket < bound, v.id)
            for v, bound in zip(exp.variants, exp.variant_bounds, strict=True)
        ]
    )


def _check_unit(df: DataFrame, unit_col: str) -> None:
    if unit_col not in df.columns:
        raise ValueError(f"unit_col: {unit_col!r} is not a column of the input {df.columns!r}")
    dtype = df.schema[unit_col].dataType
    if not isinstance(dtype, T.StringType):
        raise TypeError(
            f"unit_col: unit ids are strings, column {unit_col!r} is {dtype.simpleString()}; "
            "cast it (e.g. BIGINT user ids to their decimal string) first"
        )


def assign_df(df: DataFrame, config: ExperimentsConfig, unit_col: str, on: date) -> DataFrame:
    """One row per (unit, experiment) the unit is in on day ``on``; columns ASSIGNMENT_COLUMNS.

    Args:
        df: The unit population: one row per unit, with ``unit_col`` and every attribute the
            live experiments target. Duplicate units give duplicate rows.
        config: A validated configuration.
        unit_col: Name of the STRING unit-id column of ``df``; NULL ids are in nothing.
        on: The day (UTC) whose live experiments and ramps apply.

    Raises:
        ValueError: ``unit_col`` or a targeted attribute is missing from ``df``.
        TypeError: ``unit_col`` is not a string column, ``on`` not a date, or a targeted column's
            type does not fit its filter.
    """
    if not isinstance(on, date):
        raise TypeError(f"on: expected a datetime.date, got {on!r}")
    _check_unit(df, unit_col)
    plan = config.active(on)
    targeting = {
        live.experiment.id: reduce(
            Column.__and__,
            [targeting_col(f, df.schema) for f in live.experiment.targeting],
            F.lit(True),
        )
        for active in plan
        for live in active.experiments
    }
    if not plan:
        return df.sparkSession.createDataFrame([], ASSIGNMENT_SCHEMA)
    unit = F.col(unit_col)
    units = df.where(unit.isNotNull())
    if config.holdout.buckets > 0:
        units = units.where(bucket_col(config.holdout.salt, unit) >= config.holdout.buckets)
    # Each layer bucket is computed once, then read by every experiment of that layer.
    units = units.withColumn(
        _LAYER_BUCKETS, F.array(*[bucket_col(a.layer.salt, unit) for a in plan])
    )
    per_layer = []
    for i, active in enumerate(plan):
        b = F.col(_LAYER_BUCKETS)[i]
        experiment = _case(
            [
                ((b >= x.lo) & (b < x.hi) & targeting[x.experiment.id], x.experiment.id)
                for x in active.experiments
            ]
        )
        per_layer.append(
            F.struct(
                F.lit(active.layer.id).alias(Col.LAYER_ID),
                experiment.alias(Col.EXPERIMENT_ID),
                b.alias(Col.BUCKET),
            )
        )
    rows = (
        units.select(unit.alias(Col.UNIT_ID), F.explode(F.array(*per_layer)).alias(_PER_LAYER))
        .select(Col.UNIT_ID, _PER_LAYER + ".*")
        .where(F.col(Col.EXPERIMENT_ID).isNotNull())
    )
    experiments = [x.experiment for active in plan for x in active.experiments]
    is_exp = {e.id: F.col(Col.EXPERIMENT_ID) == e.id for e in experiments}
    # CASE is lazy: each row hashes with its own experiment's salt only.
    rows = rows.withColumn(
        Col.VARIANT_BUCKET,
        _case([(is_exp[e.id], bucket_col(e.salt, Col.UNIT_ID)) for e in experiments]),
    )
    rows = rows.withColumn(
        Col.VARIANT,
        _case([(is_exp[e.id], _variant_col(e, F.col(Col.VARIANT_BUCKET))) for e in experiments]),
    )
    # Read from the variant column, not by nesting its CASE in each branch: that expression
    # grows with the square of the live experiments, slow to plan with hundreds of them.
    is_control = F.coalesce(
        _case([(is_exp[e.id], F.col(Col.VARIANT) == F.lit(e.control.id)) for e in experiments]),
        F.lit(False),
    )
    return rows.select(
        Col.UNIT_ID,
        Col.EXPERIMENT_ID,
        Col.LAYER_ID,
        Col.VARIANT,
        is_control.alias(Col.IS_CONTROL),
        Col.BUCKET,
        Col.VARIANT_BUCKET,
    )


def write_assignments(assignments: DataFrame, ds: date, config_version: int, run_id: str) -> None:
    """Replace day ``ds`` of ``ab.assignments`` with ``assignments`` in one Delta commit.

    Readers see the old day or the new one, never a mix; a rerun never duplicates.

    Args:
        assignments: Output of :func:`assign_df` for day ``ds``.
        ds: The day; also the partition replaced.
        config_version: The config's ``version``.
        run_id: Id recorded on every row.
    """
    rows = assignments.select(
        *ASSIGNMENT_COLUMNS,
        F.lit(config_version).cast("int").alias(Col.CONFIG_VERSION),
        F.lit(run_id).alias(Col.RUN_ID),
        F.lit(ds).alias(Col.DS),
    )
    condition = F.col(Col.DS) == F.lit(ds)
    with_conflict_retry(
        lambda: rows.writeTo(AB_ASSIGNMENTS.qualified_name).overwrite(condition),
        AB_ASSIGNMENTS.qualified_name,
    )


def exposures_from_served(
    served: DataFrame, assignments: DataFrame, unit_col: str = Col.UNIT_ID
) -> DataFrame:
    """First exposure per (experiment, unit): the earliest served event on an assigned day.

    A served recommendation at ``served_ts`` exposes the unit to every experiment it is assigned
    to on that UTC day (``to_date(served_ts)`` in the session time zone, UTC in this project,
    matched to ``assignments.ds``). Events of units with no assignment that day expose nothing.

    Args:
        served: Served-recommendation events with ``unit_col`` (STRING), ``served_ts``
            (TIMESTAMP) and ``surface`` (STRING); other columns are ignored.
        assignments: Rows of ``ab.assignments`` (any days).
        unit_col: The unit-id column of ``served``, e.g. ``unit_id`` or ``user_id``.

    Returns:
        EXPOSURE_COLUMNS: one row per (experiment_id, unit_id), ``ds`` the day of the first
        exposure; ties in ``served_ts`` are broken by the smallest surface.
    """
    _check_unit(served, unit_col)
    for name, kind in ((Col.SERVED_TS, T.TimestampType), (Col.SURFACE, T.StringType)):
        if name not in served.columns or not isinstance(served.schema[name].dataType, kind):
            raise ValueError(f"served: needs a {kind.typeName()} column {name!r}")
    events = served.select(
        F.col(unit_col).alias(Col.UNIT_ID),
        Col.SERVED_TS,
        Col.SURFACE,
        F.to_date(Col.SERVED_TS).alias(Col.DS),
    ).where(F.col(Col.UNIT_ID).isNotNull() & F.col(Col.SERVED_TS).isNotNull())
    # Duplicate assignment rows would only repeat events, which the min below absorbs.
    assigned = assignments.select(Col.UNIT_ID, Col.DS, Col.EXPERIMENT_ID, Col.LAYER_ID, Col.VARIANT)
    first = (
        events.join(assigned, [Col.UNIT_ID, Col.DS])
        .groupBy(Col.EXPERIMENT_ID, Col.UNIT_ID)
        .agg(F.min(F.struct(Col.SERVED_TS, Col.SURFACE, Col.VARIANT, Col.LAYER_ID)).alias(_FIRST))
    )
    return first.select(
        Col.EXPERIMENT_ID,
        F.col(_FIRST)[Col.LAYER_ID].alias(Col.LAYER_ID),
        F.col(_FIRST)[Col.VARIANT].alias(Col.VARIANT),
        Col.UNIT_ID,
        F.col(_FIRST)[Col.SERVED_TS].alias(Col.FIRST_EXPOSURE_TS),
        F.col(_FIRST)[Col.SURFACE].alias(Col.SURFACE),
        F.to_date(F.col(_FIRST)[Col.SERVED_TS]).alias(Col.DS),
    )


#: What :func:`rec_set_mismatches` returns, one row per (experiment, day) with served rows.
MISMATCH_COLUMNS: Final = (
    Col.EXPERIMENT_ID,
    Col.DS,
    "served_rows",
    "mismatched_rows",
    "mismatched_units",
)


def rec_set_mismatches(
    served: DataFrame, assignments: DataFrame, unit_col: str = Col.UNIT_ID
) -> DataFrame:
    """Served rows whose ``rec_set`` is not the one the assigned variant serves, per day.

    Only experiments that vary the recommendation set are checked: those with at least one
    variant (in ``assignments``) named like a set in :data:`ab_testing.replay.REC_SETS`. Their
    variants serve :func:`ab_testing.replay.rec_set_for` (the set they name, else ``model``), the
    rule the app-side reader and the replay follow. A served row counts for every such experiment
    its unit is assigned to on the row's UTC day, as in :func:`exposures_from_served`.

    Args:
        served: Served rows with ``unit_col``, ``served_ts`` and ``rec_set``.
        assignments: Rows of ``ab.assignments`` (any days).
        unit_col: The unit-id column of ``served``.

    Returns:
        MISMATCH_COLUMNS: per (experiment_id, ds) the served rows checked, those whose set
        differs, and the distinct units among them. Aggregates only: one row per experiment and
        day.
    """
    from ab_testing.replay import REC_SETS, rec_set_col

    _check_unit(served, unit_col)
    for name in (Col.SERVED_TS, Col.REC_SET):
        if name not in served.columns:
            raise ValueError(f"served: needs a column {name!r}, has {served.columns}")
    names_a_set = F.col(Col.VARIANT).isin(*REC_SETS)
    varying = (
        assignments.groupBy(Col.EXPERIMENT_ID)
        .agg(F.max(names_a_set.cast("int")).alias("_varies"))
        .where(F.col("_varies") == F.lit(1))
        .select(Col.EXPERIMENT_ID)
    )
    assigned = (
        assignments.select(Col.UNIT_ID, Col.DS, Col.EXPERIMENT_ID, Col.VARIANT)
        .distinct()
        .join(F.broadcast(varying), Col.EXPERIMENT_ID)
    )
    events = served.select(
        F.col(unit_col).alias(Col.UNIT_ID),
        F.col(Col.REC_SET).alias("_served_set"),
        F.to_date(Col.SERVED_TS).alias(Col.DS),
    ).where(F.col(Col.UNIT_ID).isNotNull())
    differs = ~F.col("_served_set").eqNullSafe(rec_set_col(F.col(Col.VARIANT)))
    return (
        events.join(assigned, [Col.UNIT_ID, Col.DS])
        .groupBy(Col.EXPERIMENT_ID, Col.DS)
        .agg(
            F.count(F.lit(1)).alias("served_rows"),
            F.sum(differs.cast("long")).alias("mismatched_rows"),
            F.countDistinct(F.when(differs, F.col(Col.UNIT_ID))).alias("mismatched_units"),
        )
        .select(*MISMATCH_COLUMNS)
    )


def record_exposures(exposures: DataFrame) -> None:
    """Merge first exposures into ``ab.exposures`` in one Delta commit; idempotent.

    A new (experiment_id, unit_id) is inserted; a known one is replaced only by an earlier
    exposure (late-arriving events), so the table keeps the first exposure over all runs.

    Args:
        exposures: Output of :func:`exposures_from_served` (unique per experiment and unit).
    """
    from delta.tables import DeltaTable

    def target(name: str) -> Column:
        return F.col("t." + name)

    def source(name: str) -> Column:
        return F.col("s." + name)

    src = exposures.select(*EXPOSURE_COLUMNS)
    key = (target(Col.EXPERIMENT_ID) == source(Col.EXPERIMENT_ID)) & (
        target(Col.UNIT_ID) == source(Col.UNIT_ID)
    )
    earlier = source(Col.FIRST_EXPOSURE_TS) < target(Col.FIRST_EXPOSURE_TS)

    def merge() -> None:
        table = DeltaTable.forName(exposures.sparkSession, AB_EXPOSURES.qualified_name)
        (
            table.alias("t")
            .merge(src.alias("s"), key)
            .whenMatchedUpdateAll(condition=earlier)
            .whenNotMatchedInsertAll()
            .execute()
        )

    with_conflict_retry(merge, AB_EXPOSURES.qualified_name)
