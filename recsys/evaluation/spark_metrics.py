"""The metrics of :mod:`recsys.evaluation.metrics` over Spark DataFrames, with the same API.

Definitions, inputs, populations and results are those of the pandas twin. Everything runs as
native Spark (joins, windows, aggregates and higher-order functions, no Python UDFs); the driver
receives only aggregates: check counts and one row per query (per cutoff for coverage and Gini).
Each call scans ``recs`` several times (checks, accuracy, catalogue, per slice): persist it first
when it is expensive to compute.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence

import numpy as np
from pyspark.sql import Column, DataFrame, Row, Window
from pyspark.sql import functions as F
from pyspark.sql.types import IntegralType, StructField, StructType

from recsys.evaluation.metrics import (
    ACCURACY_METRICS,
    ALL,
    COUNT,
    DEFAULT_KS,
    ITEM,
    ITEM_SLICE_METRICS,
    RANK,
    USER,
    ItemSlice,
    Metric,
    MetricRow,
    UserSlice,
    check_counts,
    check_k,
    check_ks,
    check_slice_names,
    rows_for,
)

#: A slice's ids: a collection of plain values or a DataFrame with the id column.
SliceMembers = Collection[Hashable] | DataFrame

_N_REL = "_n_rel"
_UPTO = "_upto"
_FIRST = "_first"

# --- input checks -------------------------------------------------------------------------------


def _frame(name: str, df: object, cols: Sequence[str]) -> DataFrame:
    if not isinstance(df, DataFrame):
        raise TypeError(f"{name}: expected a Spark DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing}; has {df.columns}")
    return df.select(*cols)


def _integral(name: str, df: DataFrame, col: str) -> None:
    dtype = df.schema[col].dataType
    if not isinstance(dtype, IntegralType):
        raise TypeError(f"{name}: column {col!r} must be integer, got {dtype.simpleString()}")


def _any_null(cols: Sequence[str]) -> Column:
    cond = F.col(cols[0]).isNull()
    for c in cols[1:]:
        cond = cond | F.col(c).isNull()
    return F.sum(F.when(cond, 1).otherwise(0))


def _stats(name: str, df: DataFrame, keys: list[str], *extra: Column) -> Row:
    """One job: rows, null rows, rows minus distinct ``keys``, then ``extra`` aggregates."""
    # A global aggregate always yields exactly one row.
    row = df.agg(
        F.count(F.lit(1)), _any_null(df.columns), F.count_distinct(*keys), *extra
    ).collect()[0]
    if row[0] == 0:
        raise ValueError(f"{name}: is empty")
    if row[1]:
        raise ValueError(f"{name}: {row[1]} rows with null values in {df.columns}")
    if row[0] != row[2]:
        raise ValueError(f"{name}: {row[0] - row[2]} duplicate {tuple(keys)} rows")
    return row


def _check_recs(recs: object) -> tuple[DataFrame, int]:
    """Checked ``recs`` and its longest list length (one job)."""
    df = _frame("recs", recs, (USER, ITEM, RANK))
    _integral("recs", df, RANK)
    per_user = df.groupBy(USER).agg(
        F.count(F.lit(1)).alias("n"),
        _any_null((ITEM, RANK)).alias("nulls"),
        F.count_distinct(ITEM).alias("ni"),
        F.count_distinct(RANK).alias("nr"),
        F.min(RANK).alias("lo"),
        F.max(RANK).alias("hi"),
    )
    # With (user, rank) unique, ranks are exactly 1..n_u iff the minimum is 1 and the maximum n_u.
    n = F.col("n")
    bad_rank = (F.col("nr") != n) | (F.col("lo") != 1) | (F.col("hi") != n)
    row = per_user.agg(
        F.count(F.lit(1)),
        F.sum(F.when(F.col(USER).isNull(), n).otherwise(F.col("nulls"))),
        F.sum(F.when(F.col("ni") != n, 1).otherwise(0)),
        F.sum(F.when(bad_rank, 1).otherwise(0)),
        F.max("hi"),
    ).collect()[0]
    if row[0] == 0:
        raise ValueError("recs: is empty")
    if row[1]:
        raise ValueError(f"recs: {row[1]} rows with null values in {df.columns}")
    if row[2]:
        raise ValueError(f"recs: {row[2]} users with duplicate ('user_id', 'item_id') rows")
    if row[3]:
        raise ValueError(f"recs: ranks of {row[3]} users are not exactly 1..list length")
    return df, int(row[4])


def _check_truth(truth: object) -> DataFrame:
    df = _frame("truth", truth, (USER, ITEM))
    _stats("truth", df, [USER, ITEM])
    return df


def _check_catalog(catalog: object, recs: DataFrame) -> int:
    df = _frame("catalog", catalog, (ITEM,))
    n = int(_stats("catalog", df, [ITEM])[0])
    outside = recs.select(ITEM).distinct().join(df, ITEM, "left_anti").limit(1).collect()
    if outside:
        raise ValueError(f"recs: item_id {outside[0][0]!r} is not in catalog")
    return n


def _check_train_counts(train_counts: object, n_train_users: object) -> tuple[DataFrame, int]:
    n = check_k("n_train_users", n_train_users)
    df = _frame("train_counts", train_counts, (ITEM, COUNT))
    _integral("train_counts", df, COUNT)
    row = _stats("train_counts", df, [ITEM], F.min(COUNT), F.max(COUNT))
    if row[3] < 0 or row[4] > n:
        raise ValueError(
            f"train_counts: {COUNT} must lie in [0, n_train_users={n}], "
            f"got range [{row[3]}, {row[4]}]"
        )
    return df, n


def _members(name: str, members: object, field: StructField, like: DataFrame) -> DataFrame:
    """Slice members as a one-column DataFrame of distinct ids."""
    if isinstance(members, DataFrame):
        if field.name not in members.columns:
            raise ValueError(f"slices[{name!r}]: members DataFrame has no column {field.name!r}")
        return members.select(field.name).distinct()
    if isinstance(members, str | bytes) or not isinstance(members, Collection):
        raise TypeError(f"slices[{name!r}]: members must be a collection or a DataFrame")
    ids = [(m.item() if isinstance(m, np.generic) else m,) for m in members]
    schema = StructType([StructField(field.name, field.dataType, True)])
    return like.sparkSession.createDataFrame(ids, schema).distinct()


# --- computation on checked frames --------------------------------------------------------------


def _accuracy(
    recs: DataFrame, truth: DataFrame, ks: Sequence[int]
) -> tuple[dict[tuple[Metric, int], float], int]:
    n_rel = truth.groupBy(USER).agg(F.count(F.lit(1)).alias(_N_REL))
    by_rank = Window.partitionBy(USER).orderBy(RANK)
    # _UPTO = hits so far (this one included), so _UPTO / rank = P@rank at each hit.
    hits = recs.join(truth, [USER, ITEM], "inner").select(
        USER, RANK, F.row_number().over(by_rank).alias(_UPTO)
    )
    rank = F.col(RANK)
    per_hit: list[Column] = [F.min(RANK).alias(_FIRST)]
    for k in ks:
        within = rank <= k
        per_hit += [
            F.count(F.when(within, 1)).alias(f"_hits{k}"),
            F.sum(F.when(within, F.lit(1.0) / F.log2(rank + 1))).alias(f"_dcg{k}"),
            F.sum(F.when(within, F.col(_UPTO) / rank)).alias(f"_ap{k}"),
        ]
    users = n_rel.join(hits.groupBy(USER).agg(*per_hit), USER, "left")

    rel, first = F.col(_N_REL), F.col(_FIRST)
    means: list[Column] = []
    for k in ks:
        n_hits = F.coalesce(F.col(f"_hits{k}"), F.lit(0))
        cut = F.least(rel, F.lit(k)).cast("int")
        idcg = F.aggregate(
            F.sequence(F.lit(1), cut), F.lit(0.0), lambda acc, i: acc + F.lit(1.0) / F.log2(i + 1)
        )
        per_user = {
            Metric.RECALL: n_hits / rel,
            Metric.PRECISION: n_hits / F.lit(k),
            Metric.NDCG: F.coalesce(F.col(f"_dcg{k}"), F.lit(0.0)) / idcg,
            Metric.MAP: F.coalesce(F.col(f"_ap{k}"), F.lit(0.0)) / cut,
            Metric.HIT_RATE: F.when(n_hits > 0, 1.0).otherwise(0.0),
            Metric.MRR: F.when(first <= k, F.lit(1.0) / first).otherwise(0.0),
        }
        means += [F.avg(v).alias(f"{m.value}@{k}") for m, v in per_user.items()]
    row = users.agg(F.count(F.lit(1)).alias("n"), *means).collect()[0]
    if not row["n"]:
        return {}, 0
    return {(m, k): float(row[f"{m.value}@{k}"]) for m in ACCURACY_METRICS for k in ks}, row["n"]


def _coverage_gini(recs: DataFrame, ks: Sequence[int], n: int) -> dict[int, tuple[float, float]]:
    top = recs.where(F.col(RANK) <= max(ks))
    per_item = top.groupBy(ITEM).agg(
        *[F.count(F.when(F.col(RANK) <= k, 1)).alias(f"_x{k}") for k in ks]
    )
    long = per_item.select(
        F.explode(F.array(*[F.struct(F.lit(k).alias("k"), F.col(f"_x{k}").alias("x")) for k in ks]))
    ).select("col.k", "col.x")
    dist = long.where(F.col("x") > 0).groupBy("k", "x").agg(F.count(F.lit(1)).alias("m"))
    # Gini's Σ_j (2j - n - 1) x_(j) by exposure level: the m items with exposure x occupy sorted
    # positions s+1..s+m, s = items with lower exposure (unrecommended ones included), and
    # contribute x·m·(2s + m - n). Exact in integers.
    k_part = Window.partitionBy("k")
    running = k_part.orderBy("x").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    below = (F.lit(n) - F.sum("m").over(k_part)) + (F.sum("m").over(running) - F.col("m"))
    term = F.col("x") * F.col("m") * (2 * below + F.col("m") - F.lit(n))
    per_k = (
        dist.select("k", "x", "m", term.alias("t"))
        .groupBy("k")
        .agg(F.sum("m").alias("d"), F.sum("t").alias("num"), F.sum(F.col("x") * F.col("m")))
        .collect()
    )
    return {int(r[0]): (int(r[1]) / n, int(r[2]) / (n * int(r[3]))) for r in per_k}


def _novelty(
    recs: DataFrame, ks: Sequence[int], counts: DataFrame, n_train: int
) -> tuple[list[float], int]:
    """Novelty at each k and the number of users with a list."""
    count = F.greatest(F.coalesce(F.col(COUNT), F.lit(0)), F.lit(1))
    self_info = -F.log2(count / F.lit(float(n_train)))
    joined = recs.where(F.col(RANK) <= max(ks)).join(counts, ITEM, "left")
    # avg skips the NULLs of ranks beyond k: each user's mean over their own top-k items.
    per_user = joined.groupBy(USER).agg(
        *[F.avg(F.when(F.col(RANK) <= k, self_info)).alias(f"_n{k}") for k in ks]
    )
    row = per_user.agg(F.count(F.lit(1)), *[F.avg(f"_n{k}") for k in ks]).collect()[0]
    # An empty population averages to NULL; its rows are dropped by rows_for.
    return [float("nan") if v is None else float(v) for v in row[1:]], int(row[0])


# --- public API ---------------------------------------------------------------------------------


def _one(recs: object, truth: object, k: object, metric: Metric) -> float:
    r, _ = _check_recs(recs)
    kk = check_k("k", k)
    return _accuracy(r, _check_truth(truth), (kk,))[0][metric, kk]


def recall_at_k(recs: DataFrame, truth: DataFrame, k: int = 10) -> float:
    """Spark twin of :func:`recsys.evaluation.metrics.recall_at_k`."""
    return _one(recs, truth, k, Metric.RECALL)


def precision_at_k(recs: DataFrame, truth: DataFrame, k: int = 10) -> float:
    """Spark twin of :func:`recsys.evaluation.metrics.precision_at_k`."""
    return _one(recs, truth, k, Metric.PRECISION)


def ndcg_at_k(recs: DataFrame, truth: DataFrame, k: int = 10) -> float:
    """Spark twin of :func:`recsys.evaluation.metrics.ndcg_at_k`."""
    return _one(recs, truth, k, Metric.NDCG)


def map_at_k(recs: DataFrame, truth: DataFrame, k: int = 10) -> float:
    """Spark twin of :func:`recsys.evaluation.metrics.map_at_k`."""
    return _one(recs, truth, k, Metric.MAP)


def hit_rate_at_k(recs: DataFrame, truth: DataFrame, k: int = 10) -> float:
    """Spark twin of :func:`recsys.evaluation.metrics.hit_rate_at_k`."""
    return _one(recs, truth, k, Metric.HIT_RATE)


def mrr(recs: DataFrame, truth: DataFrame, k: int | None = None) -> float:
    """Spark twin of :func:`recsys.evaluation.metrics.mrr` (``k=None``: whole lists)."""
    r, longest = _check_recs(recs)
    kk = longest if k is None else check_k("k", k)
    return _accuracy(r, _check_truth(truth), (kk,))[0][Metric.MRR, kk]


def catalog_coverage(recs: DataFrame, catalog: DataFrame, k: int | None = None) -> float:
    """Spark twin of :func:`recsys.evaluation.metrics.catalog_coverage`."""
    r, longest = _check_recs(recs)
    kk = longest if k is None else check_k("k", k)
    return _coverage_gini(r, (kk,), _check_catalog(catalog, r))[kk][0]


def gini(recs: DataFrame, catalog: DataFrame, k: int | None = None) -> float:
    """Spark twin of :func:`recsys.evaluation.metrics.gini`."""
    r, longest = _check_recs(recs)
    kk = longest if k is None else check_k("k", k)
    return _coverage_gini(r, (kk,), _check_catalog(catalog, r))[kk][1]


def novelty(
    recs: DataFrame, train_counts: DataFrame, n_train_users: int, k: int | None = None
) -> float:
    """Spark twin of :func:`recsys.evaluation.metrics.novelty`."""
    r, longest = _check_recs(recs)
    kk = longest if k is None else check_k("k", k)
    return _novelty(r, (kk,), *_check_train_counts(train_counts, n_train_users))[0][0]


def evaluate_spark(
    recs: DataFrame,
    truth: DataFrame,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    catalog: DataFrame | None = None,
    train_counts: DataFrame | None = None,
    n_train_users: int | None = None,
    slices: Mapping[str, UserSlice[SliceMembers] | ItemSlice[SliceMembers]] | None = None,
) -> list[MetricRow]:
    """Spark twin of :func:`recsys.evaluation.metrics.evaluate`: same rows in the same order.

    Slice ``members`` may also be a DataFrame with a ``user_id`` (:class:`UserSlice`) or
    ``item_id`` (:class:`ItemSlice`) column, so large slices never pass through the driver.
    """
    (r, _), t, cutoffs = _check_recs(recs), _check_truth(truth), check_ks(ks)
    n_catalog = None if catalog is None else _check_catalog(catalog, r)
    counts = check_counts(train_counts, n_train_users, _check_train_counts)
    rows = _evaluate_part(ALL, r, t, cutoffs, n_catalog, counts)
    for name, sl in check_slice_names(slices).items():
        if isinstance(sl, UserSlice):
            users = _members(name, sl.members, r.schema[USER], r)
            r_s, t_s = r.join(users, USER, "left_semi"), t.join(users, USER, "left_semi")
            rows += _evaluate_part(name, r_s, t_s, cutoffs, n_catalog, counts)
        else:
            items = _members(name, sl.members, t.schema[ITEM], t)
            values, n_users = _accuracy(r, t.join(items, ITEM, "left_semi"), cutoffs)
            rows += rows_for(name, ITEM_SLICE_METRICS, cutoffs, values, n_users)
    return rows


def _evaluate_part(
    name: str,
    recs: DataFrame,
    truth: DataFrame,
    ks: tuple[int, ...],
    n_catalog: int | None,
    counts: tuple[DataFrame, int] | None,
) -> list[MetricRow]:
    values, n_truth = _accuracy(recs, truth, ks)
    rows = rows_for(name, ACCURACY_METRICS, ks, values, n_truth)
    if counts is not None:
        novelties, n_rec_users = _novelty(recs, ks, *counts)
    elif n_catalog is not None:
        n_rec_users = recs.select(USER).distinct().count()
    else:
        return rows
    if n_catalog is not None and n_rec_users:
        cov_gini = _coverage_gini(recs, ks, n_catalog)
        cat = {(Metric.CATALOG_COVERAGE, k): v[0] for k, v in cov_gini.items()}
        cat |= {(Metric.GINI, k): v[1] for k, v in cov_gini.items()}
        rows += rows_for(name, (Metric.CATALOG_COVERAGE, Metric.GINI), ks, cat, n_rec_users)
    if counts is not None:
        nov = {(Metric.NOVELTY, k): v for k, v in zip(ks, novelties, strict=True)}
        rows += rows_for(name, (Metric.NOVELTY,), ks, nov, n_rec_users)
    return rows
