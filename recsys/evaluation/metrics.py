"""Full-ranking offline metrics over top-K lists, in pandas: the reference twin of the Spark code.

Inputs (column names are fixed; extra columns are ignored):

* ``recs``: one row per recommendation, ``user_id``, ``item_id``, ``rank`` (integer, per user
  exactly ``1..n_u`` where ``n_u`` is the list length). The caller scored the whole catalogue and
  removed the user's training items before cutting the list: there are no sampled negatives.
* ``truth``: one row per relevant held-out ``(user_id, item_id)`` pair.
* ``catalog``: one row per item of the universe, ``item_id``.
* ``train_counts``: ``item_id``, ``n_interactions`` = number of distinct training users who
  interacted with the item, in ``[0, n_train_users]``; items without a row count 0.

Accuracy at cutoff K, for a user u with relevant set R_u, where hit_r = 1 when the item at rank r
is in R_u:

* ``recall@K = Σ_{r≤K} hit_r / |R_u|``; ``precision@K = Σ_{r≤K} hit_r / K`` (a list shorter than
  K counts as padded with misses).
* ``ndcg@K = DCG / IDCG`` with binary gains, ``DCG = Σ_{r≤K} hit_r / log2(r + 1)`` and
  ``IDCG = Σ_{i=1}^{min(|R_u|, K)} 1 / log2(i + 1)``.
* ``map@K``: mean of ``AP@K = (1 / min(|R_u|, K)) Σ_{r≤K} P@r · hit_r``. The normaliser is
  ``min(|R_u|, K)``, not ``|R_u|``, so a list that is all hits scores 1 even when the user has
  more than K relevant items (Microsoft Recommenders' ``map_at_k`` makes the same choice).
* ``hit_rate@K = 1`` when some ``hit_r = 1`` with ``r ≤ K``, else 0.
* ``mrr@K = 1 / r*`` for the first hit rank ``r* ≤ K``, else 0; with no cutoff, the whole list.

Accuracy metrics are macro averages over the users of ``truth``: users only in ``recs`` are
ignored and users of ``truth`` without recommendations score 0. All lie in ``[0, 1]``.

Catalogue metrics at cutoff K, over the top-K lists of every user of ``recs``:

* ``catalog_coverage@K`` = distinct recommended items / catalogue size, in ``[0, 1]``.
* ``novelty@K``: mean over users of the mean self-information ``-log2 p(i)`` of their list, in
  bits, ``p(i) = max(n_i, 1) / N`` with ``n_i`` the item's training users and ``N`` the number of
  training users (Zhou et al. 2010, PNAS; Vargas & Castells 2011, RecSys). The floor of 1 gives
  items unseen in training the finite maximum ``log2 N``. Always ``>= 0``.
* ``gini@K = Σ_{j=1}^{n} (2j - n - 1) x_(j) / (n Σ_j x_j)``, the Gini index of exposure over the
  n catalogue items, ``x_(1) ≤ … ≤ x_(n)`` the number of top-K lists holding each item
  (unrecommended items count 0). 0 = equal exposure; at most ``1 - 1/n``, one item shown to all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from recsys.warehouse.tables import Col

USER: Final = Col.USER_ID
ITEM: Final = Col.ITEM_ID
RANK: Final = "rank"
COUNT: Final = Col.N_INTERACTIONS
#: Cutoffs reported by :func:`evaluate` unless told otherwise.
DEFAULT_KS: Final[tuple[int, ...]] = (10, 20, 50, 100)
#: Name of the slice holding every user.
ALL: Final = "all"


class Metric(StrEnum):
    """Names of the metrics, as written to :attr:`MetricRow.metric`."""

    RECALL = "recall"
    PRECISION = "precision"
    NDCG = "ndcg"
    MAP = "map"
    HIT_RATE = "hit_rate"
    MRR = "mrr"
    CATALOG_COVERAGE = "catalog_coverage"
    NOVELTY = "novelty"
    GINI = "gini"


ACCURACY_METRICS: Final[tuple[Metric, ...]] = (
    Metric.RECALL,
    Metric.PRECISION,
    Metric.NDCG,
    Metric.MAP,
    Metric.HIT_RATE,
    Metric.MRR,
)
#: What an :class:`ItemSlice` reports: only these read naturally on a subset of relevant items.
ITEM_SLICE_METRICS: Final[tuple[Metric, ...]] = (Metric.RECALL, Metric.NDCG, Metric.HIT_RATE)


@dataclass(frozen=True, slots=True)
class MetricRow:
    """One metric value.

    Attributes:
        metric: Which metric.
        k: Cutoff: only ranks ``1..k`` count.
        slice: :data:`ALL` or the name given in ``slices``.
        value: The metric (see the module docstring); in ``[0, 1]`` except novelty (bits, >= 0).
        n_users: Users averaged over: ground-truth users for accuracy metrics, users with
            recommendations for catalogue metrics.
    """

    metric: Metric
    k: int
    slice: str
    value: float
    n_users: int


M = TypeVar("M", covariant=True)
#: A frame type (pandas or Spark) and what its checks return.
F = TypeVar("F")
C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class UserSlice(Generic[M]):
    """Evaluate only these users: ``recs`` and ``truth`` are both restricted to ``members``.

    Every metric is reported. Typical members: light or heavy users by training activity.
    """

    members: M


@dataclass(frozen=True, slots=True)
class ItemSlice(Generic[M]):
    """Evaluate only the relevance of these items, e.g. cold-start items.

    ``truth`` is restricted to ``members`` and the population becomes the users with at least one
    such relevant item; their full lists are kept, so only hits on members count. Reports
    :data:`ITEM_SLICE_METRICS`.
    """

    members: M


def check_k(name: str, k: object) -> int:
    """Return ``k`` as an int >= 1, or raise TypeError/ValueError naming ``name``."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"{name}: expected an int >= 1, got {k!r}")
    if k < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {k!r}")
    return int(k)


def check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """Return the cutoffs as a tuple, rejecting an empty, repeated or non-integer sequence."""
    if isinstance(ks, str | bytes) or not isinstance(ks, Sequence):
        raise TypeError(f"ks: expected a non-empty sequence of ints >= 1, got {ks!r}")
    if not ks:
        raise ValueError(f"ks: expected a non-empty sequence of ints >= 1, got {ks!r}")
    out = tuple(check_k("ks", k) for k in ks)
    if len(set(out)) != len(out):
        raise ValueError(f"ks: repeated cutoff in {ks!r}")
    return out


def check_counts(
    train_counts: F | None, n_train_users: int | None, check: Callable[[F, int | None], C]
) -> C | None:
    """The novelty inputs: ``check(train_counts, n_train_users)`` when counts are given (the
    frame type's own checks), None when neither is; ``n_train_users`` alone is a ValueError."""
    if train_counts is not None:
        return check(train_counts, n_train_users)
    if n_train_users is not None:
        raise ValueError("n_train_users: given without train_counts")
    return None


def check_slice_names(
    slices: Mapping[str, UserSlice[object] | ItemSlice[object]] | None,
) -> dict[str, UserSlice[object] | ItemSlice[object]]:
    """Validate the slice mapping's names and kinds; return it as a dict."""
    if slices is None:
        return {}
    if not isinstance(slices, Mapping):
        raise TypeError(f"slices: expected a mapping name -> slice, got {type(slices).__name__}")
    for name, sl in slices.items():
        if not isinstance(name, str) or not name or name == ALL:
            raise ValueError(
                f"slices: names must be non-empty strings other than {ALL!r}: {name!r}"
            )
        if not isinstance(sl, UserSlice | ItemSlice):
            raise TypeError(f"slices[{name!r}]: expected UserSlice or ItemSlice, got {sl!r}")
    return dict(slices)


def rows_for(
    slice_name: str,
    metrics: Sequence[Metric],
    ks: Sequence[int],
    values: Mapping[tuple[Metric, int], float],
    n_users: int,
) -> list[MetricRow]:
    """Rows in the canonical order (metric, then k); none when the population is empty."""
    if n_users == 0:
        return []
    return [MetricRow(m, k, slice_name, float(values[m, k]), n_users) for m in metrics for k in ks]


# --- input checks -------------------------------------------------------------------------------


def _frame(
    name: str, df: object, cols: Sequence[str], unique: Sequence[str], integer: str | None = None
) -> pd.DataFrame:
    """``df[cols]`` after checking type, columns, emptiness, nulls, dtype and ``unique`` keys."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing}; has {list(df.columns)}")
    if len(df) == 0:
        raise ValueError(f"{name}: is empty")
    out = df.loc[:, list(cols)]
    if out.isna().to_numpy().any():
        raise ValueError(f"{name}: null values in {list(cols)}")
    if integer is not None and not pd.api.types.is_integer_dtype(out[integer]):
        raise TypeError(f"{name}: column {integer!r} must be integer, got {out[integer].dtype}")
    dup = out.duplicated(list(unique))
    if dup.any():
        first = tuple(out.loc[dup, list(unique)].iloc[0])
        raise ValueError(f"{name}: duplicate {tuple(unique)}, e.g. {first!r}")
    return out


def _check_recs(recs: object) -> pd.DataFrame:
    df = _frame("recs", recs, (USER, ITEM, RANK), (USER, ITEM), integer=RANK)
    _frame("recs", df, (USER, RANK), (USER, RANK))
    # With (user, rank) unique, ranks are exactly 1..n_u iff the minimum is 1 and the maximum n_u.
    g = df.groupby(USER)[RANK].agg(["min", "max", "size"])
    bad = g[(g["min"] != 1) | (g["max"] != g["size"])]
    if len(bad):
        raise ValueError(f"recs: ranks of user {bad.index[0]!r} are not exactly 1..list length")
    return df


def _check_truth(truth: object) -> pd.DataFrame:
    return _frame("truth", truth, (USER, ITEM), (USER, ITEM))


def _check_catalog(catalog: object, recs: pd.DataFrame) -> int:
    df = _frame("catalog", catalog, (ITEM,), (ITEM,))
    outside = ~recs[ITEM].isin(df[ITEM])
    if outside.any():
        raise ValueError(f"recs: item_id {recs.loc[outside, ITEM].iloc[0]!r} is not in catalog")
    return len(df)


def _check_train_counts(train_counts: object, n_train_users: object) -> tuple[pd.DataFrame, int]:
    n = check_k("n_train_users", n_train_users)
    df = _frame("train_counts", train_counts, (ITEM, COUNT), (ITEM,), integer=COUNT)
    lo, hi = int(df[COUNT].min()), int(df[COUNT].max())
    if lo < 0 or hi > n:
        raise ValueError(
            f"train_counts: {COUNT} must lie in [0, n_train_users={n}], got range [{lo}, {hi}]"
        )
    return df, n


def _members(name: str, members: object) -> list[Hashable]:
    if isinstance(members, str | bytes) or not isinstance(members, Collection):
        raise TypeError(f"slices[{name!r}]: members must be a collection of ids, got {members!r}")
    return list(members)


# --- computation on checked frames --------------------------------------------------------------


def _idcg_table(max_n: int) -> npt.NDArray[np.float64]:
    """``table[m] = Σ_{i=1}^{m} 1 / log2(i + 1)`` for m in 0..max_n."""
    gains = 1.0 / np.log2(np.arange(2, max_n + 2, dtype=np.float64))
    return np.concatenate(([0.0], np.cumsum(gains)))


def _per_user_accuracy(
    recs: pd.DataFrame, truth: pd.DataFrame, ks: Sequence[int]
) -> tuple[pd.Index, dict[tuple[Metric, int], npt.NDArray[np.float64]]]:
    """The users of ``truth`` (sorted) and each accuracy metric's value per user, in that order."""
    n_rel = truth.groupby(USER).size()
    users = n_rel.index
    hits = recs.merge(truth, on=[USER, ITEM], how="inner").sort_values([USER, RANK])
    rank = hits[RANK].to_numpy(dtype=np.float64)
    # P@r at the rank of each hit: hits so far (this one included) over r.
    hits = hits.assign(
        _gain=1.0 / np.log2(rank + 1.0),
        _prec=(hits.groupby(USER).cumcount().to_numpy() + 1) / rank,
    )
    first = hits.groupby(USER)[RANK].min().reindex(users).to_numpy(dtype=np.float64)
    rel = n_rel.to_numpy(dtype=np.int64)
    idcg = _idcg_table(int(min(rel.max(), max(ks))))
    out: dict[tuple[Metric, int], npt.NDArray[np.float64]] = {}
    for k in ks:
        g = hits[hits[RANK] <= k].groupby(USER)
        n_hits = g.size().reindex(users, fill_value=0).to_numpy(dtype=np.float64)
        dcg = g["_gain"].sum().reindex(users, fill_value=0.0).to_numpy(dtype=np.float64)
        ap = g["_prec"].sum().reindex(users, fill_value=0.0).to_numpy(dtype=np.float64)
        cut = np.minimum(rel, k)
        with np.errstate(divide="ignore", invalid="ignore"):
            mrr = np.where(first <= k, 1.0 / first, 0.0)
        out[Metric.RECALL, k] = n_hits / rel
        out[Metric.PRECISION, k] = n_hits / k
        out[Metric.NDCG, k] = dcg / idcg[cut]
        out[Metric.MAP, k] = ap / cut
        out[Metric.HIT_RATE, k] = (n_hits > 0).astype(np.float64)
        out[Metric.MRR, k] = mrr
    return users, out


def _accuracy(
    recs: pd.DataFrame, truth: pd.DataFrame, ks: Sequence[int]
) -> tuple[dict[tuple[Metric, int], float], int]:
    users, per_user = _per_user_accuracy(recs, truth, ks)
    return {key: float(np.mean(v)) for key, v in per_user.items()}, len(users)


def ndcg_per_user(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> pd.Series:
    """Binary NDCG@k of every user in ``truth`` (0 when no hit), indexed by user id, sorted.

    The per-user values whose mean is :func:`ndcg_at_k`, e.g. for standard errors and paired
    comparisons (:mod:`recsys.evaluation.uncertainty`).
    """
    k = check_k("k", k)
    recs, truth = _check_recs(recs), _check_truth(truth)
    if not len(truth):
        return pd.Series([], dtype=np.float64, name="ndcg")
    users, per_user = _per_user_accuracy(recs, truth, (k,))
    return pd.Series(per_user[Metric.NDCG, k], index=users, name="ndcg")


def _top(recs: pd.DataFrame, k: int | None) -> pd.DataFrame:
    return recs if k is None else recs[recs[RANK] <= k]


def _coverage_gini(top: pd.DataFrame, n_catalog: int) -> tuple[float, float]:
    x = np.sort(top[ITEM].value_counts().to_numpy(dtype=np.int64))
    # Unrecommended items (x = 0) sort first and add nothing, so only the d nonzero counts, at
    # sorted positions n-d+1..n, enter the sum; integer arithmetic keeps it exact.
    j = np.arange(n_catalog - len(x) + 1, n_catalog + 1, dtype=np.int64)
    num = int(np.sum((2 * j - n_catalog - 1) * x))
    return len(x) / n_catalog, num / (n_catalog * int(x.sum()))


def _novelty(top: pd.DataFrame, counts: pd.DataFrame, n_train_users: int) -> float:
    merged = top[[USER, ITEM]].merge(counts, on=ITEM, how="left")
    c = merged[COUNT].fillna(0).to_numpy(dtype=np.float64)
    self_info = -np.log2(np.maximum(c, 1.0) / n_train_users)
    per_user = pd.Series(self_info).groupby(merged[USER].to_numpy()).mean()
    return float(per_user.mean())


# --- public API ---------------------------------------------------------------------------------


def _one(recs: object, truth: object, k: object, metric: Metric) -> float:
    r, t, kk = _check_recs(recs), _check_truth(truth), check_k("k", k)
    return _accuracy(r, t, (kk,))[0][metric, kk]


def recall_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    """Mean over ground-truth users of hits in the top ``k`` / number of relevant items."""
    return _one(recs, truth, k, Metric.RECALL)


def precision_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    """Mean over ground-truth users of hits in the top ``k`` / ``k``."""
    return _one(recs, truth, k, Metric.PRECISION)


def ndcg_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    """Mean over ground-truth users of binary-gain NDCG@k (IDCG over min(|relevant|, k))."""
    return _one(recs, truth, k, Metric.NDCG)


def map_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    """Mean over ground-truth users of AP@k, normalised by min(|relevant|, k)."""
    return _one(recs, truth, k, Metric.MAP)


def hit_rate_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int = 10) -> float:
    """Fraction of ground-truth users with at least one relevant item in their top ``k``."""
    return _one(recs, truth, k, Metric.HIT_RATE)


def mrr(recs: pd.DataFrame, truth: pd.DataFrame, k: int | None = None) -> float:
    """Mean over ground-truth users of 1 / rank of the first hit within the top ``k`` (0 if none).

    ``k=None`` uses each whole list.
    """
    r = _check_recs(recs)
    kk = int(r[RANK].max()) if k is None else check_k("k", k)
    return _accuracy(r, _check_truth(truth), (kk,))[0][Metric.MRR, kk]


def catalog_coverage(recs: pd.DataFrame, catalog: pd.DataFrame, k: int | None = None) -> float:
    """Distinct items in the top-``k`` lists / catalogue size (``k=None``: whole lists)."""
    r = _check_recs(recs)
    n = _check_catalog(catalog, r)
    return _coverage_gini(_top(r, None if k is None else check_k("k", k)), n)[0]


def gini(recs: pd.DataFrame, catalog: pd.DataFrame, k: int | None = None) -> float:
    """Gini index of top-``k`` exposure over the catalogue (0 = equal; ``k=None``: whole lists)."""
    r = _check_recs(recs)
    n = _check_catalog(catalog, r)
    return _coverage_gini(_top(r, None if k is None else check_k("k", k)), n)[1]


def novelty(
    recs: pd.DataFrame, train_counts: pd.DataFrame, n_train_users: int, k: int | None = None
) -> float:
    """Mean over users of the mean self-information (bits) of their top-``k`` items.

    ``n_train_users`` is the number of distinct users in the training data (N in ``p(i)``).
    """
    r = _check_recs(recs)
    counts, n = _check_train_counts(train_counts, n_train_users)
    return _novelty(_top(r, None if k is None else check_k("k", k)), counts, n)


def evaluate(
    recs: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    catalog: pd.DataFrame | None = None,
    train_counts: pd.DataFrame | None = None,
    n_train_users: int | None = None,
    slices: Mapping[str, UserSlice[Collection[Hashable]] | ItemSlice[Collection[Hashable]]]
    | None = None,
) -> list[MetricRow]:
    """Every metric at every cutoff, overall (slice :data:`ALL`) and per slice.

    Args:
        recs: Top-K lists (see the module docstring); lists may be shorter or longer than K.
        truth: Relevant held-out pairs.
        ks: Cutoffs, each an int >= 1.
        catalog: Item universe; when given, catalogue coverage and Gini are reported.
        train_counts: Training users per item; when given (with ``n_train_users``), novelty.
        n_train_users: Number of distinct training users, >= 1.
        slices: Name -> :class:`UserSlice` or :class:`ItemSlice` whose ``members`` is a
            collection of ids (a set, list or Series).

    Returns:
        Per slice (:data:`ALL` first, then ``slices`` in order): accuracy metrics, then coverage,
        Gini and novelty, each at every k in ``ks`` order. A slice whose population is empty
        gets no rows for that group of metrics.

    Raises:
        TypeError: an argument has the wrong type, naming it.
        ValueError: an argument is empty, has nulls, duplicates, non-contiguous ranks,
            recommended items outside ``catalog``, or counts outside ``[0, n_train_users]``.
    """
    r, t, cutoffs = _check_recs(recs), _check_truth(truth), check_ks(ks)
    n_catalog = None if catalog is None else _check_catalog(catalog, r)
    counts = check_counts(train_counts, n_train_users, _check_train_counts)
    rows = _evaluate_part(ALL, r, t, cutoffs, n_catalog, counts)
    for name, sl in check_slice_names(slices).items():
        if isinstance(sl, UserSlice):
            members = _members(name, sl.members)
            rows += _evaluate_part(
                name, r[r[USER].isin(members)], t[t[USER].isin(members)], cutoffs, n_catalog, counts
            )
        else:
            t_items = t[t[ITEM].isin(_members(name, sl.members))]
            values, n_users = _accuracy(r, t_items, cutoffs) if len(t_items) else ({}, 0)
            rows += rows_for(name, ITEM_SLICE_METRICS, cutoffs, values, n_users)
    return rows


def _evaluate_part(
    name: str,
    recs: pd.DataFrame,
    truth: pd.DataFrame,
    ks: tuple[int, ...],
    n_catalog: int | None,
    counts: tuple[pd.DataFrame, int] | None,
) -> list[MetricRow]:
    values, n_truth = _accuracy(recs, truth, ks) if len(truth) else ({}, 0)
    rows = rows_for(name, ACCURACY_METRICS, ks, values, n_truth)
    n_rec_users = int(recs[USER].nunique())
    if n_catalog is not None and n_rec_users:
        cov_gini = {k: _coverage_gini(_top(recs, k), n_catalog) for k in ks}
        cat = {(Metric.CATALOG_COVERAGE, k): v[0] for k, v in cov_gini.items()}
        cat |= {(Metric.GINI, k): v[1] for k, v in cov_gini.items()}
        rows += rows_for(name, (Metric.CATALOG_COVERAGE, Metric.GINI), ks, cat, n_rec_users)
    if counts is not None and n_rec_users:
        nov = {(Metric.NOVELTY, k): _novelty(_top(recs, k), *counts) for k in ks}
        rows += rows_for(name, (Metric.NOVELTY,), ks, nov, n_rec_users)
    return rows
