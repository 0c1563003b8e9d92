"""Full-ranking offline evaluation: the pandas metrics and their Spark twin, one API.

:mod:`recsys.evaluation.metrics` holds the definitions and the pandas implementation;
:mod:`recsys.evaluation.spark_metrics` computes the same on Spark DataFrames (same function names;
its entry point is :func:`evaluate_spark`).
"""

from __future__ import annotations

from recsys.evaluation.metrics import (
    ACCURACY_METRICS,
    ALL,
    DEFAULT_KS,
    ITEM_SLICE_METRICS,
    RANK,
    ItemSlice,
    Metric,
    MetricRow,
    UserSlice,
    catalog_coverage,
    evaluate,
    gini,
    hit_rate_at_k,
    map_at_k,
    mrr,
    ndcg_at_k,
    ndcg_per_user,
    novelty,
    precision_at_k,
    recall_at_k,
)
from recsys.evaluation.spark_metrics import evaluate_spark

__all__ = [
    "ACCURACY_METRICS",
    "ALL",
    "DEFAULT_KS",
    "ITEM_SLICE_METRICS",
    "RANK",
    "ItemSlice",
    "Metric",
    "MetricRow",
    "UserSlice",
    "catalog_coverage",
    "evaluate",
    "evaluate_spark",
    "gini",
    "hit_rate_at_k",
    "map_at_k",
    "mrr",
    "ndcg_at_k",
    "ndcg_per_user",
    "novelty",
    "precision_at_k",
    "recall_at_k",
]
