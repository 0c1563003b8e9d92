"""Parity: the Spark metrics give the pandas values (to 1e-9) on the hand case and a random one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation import ItemSlice, MetricRow, UserSlice, evaluate, evaluate_spark
from recsys.evaluation import metrics as pm
from recsys.evaluation import spark_metrics as sm

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark


def random_frames(seed: int = 7) -> tuple[dict[str, pd.DataFrame], int]:
    """200 users x 500 items; lists and truths drawn by a Zipf-like popularity so hits happen."""
    rng = np.random.default_rng(seed)
    n_users, n_items, n_train = 200, 500, 300
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop /= pop.sum()
    recs, truth = [], []
    for u in range(n_users):
        if u % 17 != 0:  # some truth users get no list
            length = 100 if u % 5 else int(rng.integers(1, 100))
            items = rng.choice(n_items, size=length, replace=False, p=pop)
            recs += [(u, int(i), r + 1) for r, i in enumerate(items)]
        if u % 13 != 0:  # some listed users have no truth
            rel = rng.choice(n_items, size=int(rng.integers(1, 30)), replace=False, p=pop)
            truth += [(u, int(i)) for i in rel]
    seen = rng.binomial(n_train, np.minimum(1.0, pop * 40))
    seen[-40:] = 0  # the 40 least popular items are cold
    frames = {
        "recs": pd.DataFrame(recs, columns=["user_id", "item_id", "rank"]),
        "truth": pd.DataFrame(truth, columns=["user_id", "item_id"]),
        "catalog": pd.DataFrame({"item_id": range(n_items)}),
        "train_counts": pd.DataFrame({"item_id": range(n_items), "n_interactions": seen})
        .query("n_interactions > 0")
        .reset_index(drop=True),
    }
    return frames, n_train


def to_spark(spark: SparkSession, frames: dict[str, pd.DataFrame]) -> dict[str, DataFrame]:
    return {name: spark.createDataFrame(df) for name, df in frames.items()}


def assert_same(a: list[MetricRow], b: list[MetricRow]) -> None:
    assert [(r.metric, r.k, r.slice, r.n_users) for r in a] == [
        (r.metric, r.k, r.slice, r.n_users) for r in b
    ]
    for x, y in zip(a, b, strict=True):
        assert abs(x.value - y.value) <= 1e-9, (x, y)


def test_hand_case_parity(spark: SparkSession, hand: dict[str, pd.DataFrame]) -> None:
    p: dict[str, Any] = dict(hand)
    s: dict[str, Any] = dict(to_spark(spark, p))
    slices: dict[str, Any] = {
        "light": UserSlice({1, 3}),
        "cold": ItemSlice(["e", "f"]),
        "nobody": UserSlice([]),
    }
    kw: dict[str, Any] = {"ks": (1, 2, 3, 10), "n_train_users": 4}
    expected = evaluate(p.pop("recs"), p.pop("truth"), **p, **kw, slices=slices)
    got = evaluate_spark(s.pop("recs"), s.pop("truth"), **s, **kw, slices=slices)
    assert_same(expected, got)


def test_single_metric_functions_parity(spark: SparkSession, hand: dict[str, pd.DataFrame]) -> None:
    p: dict[str, Any] = dict(hand)
    s: dict[str, Any] = dict(to_spark(spark, p))
    # The five accuracy wrappers share one path (checked in full by the evaluate parity tests).
    for name in ("ndcg_at_k", "map_at_k"):
        assert getattr(sm, name)(s["recs"], s["truth"], 3) == pytest.approx(
            getattr(pm, name)(p["recs"], p["truth"], 3), abs=1e-12
        )
    assert sm.mrr(s["recs"], s["truth"]) == pytest.approx(4 / 9)
    assert sm.catalog_coverage(s["recs"], s["catalog"], 2) == pytest.approx(0.5)
    assert sm.gini(s["recs"], s["catalog"], 2) == pytest.approx(7 / 12)
    assert sm.novelty(s["recs"], s["train_counts"], 4) == pytest.approx((5 / 4 + 4 / 3 + 1.5) / 3)


def test_random_case_parity(spark: SparkSession) -> None:
    p, n_train = random_frames()
    s = to_spark(spark, p)
    sizes = p["truth"].groupby("user_id").size()
    light, heavy = set(sizes[sizes <= 5].index), set(sizes[sizes >= 20].index)
    cold = set(range(500)) - set(p["train_counts"]["item_id"])
    assert light
    assert heavy
    assert cold
    heavy_df = spark.createDataFrame(pd.DataFrame({"user_id": sorted(heavy)}))

    def slices(heavy_users: Any) -> dict[str, Any]:
        return {"light": UserSlice(light), "heavy": UserSlice(heavy_users), "cold": ItemSlice(cold)}

    def kw(frames: Mapping[str, Any]) -> dict[str, Any]:
        return {k: frames[k] for k in ("catalog", "train_counts")} | {"n_train_users": n_train}

    expected = evaluate(p["recs"], p["truth"], **kw(p), slices=slices(heavy))
    got = evaluate_spark(s["recs"], s["truth"], **kw(s), slices=slices(heavy_df))
    assert len(expected) == 4 * (9 + 9 + 3 + 9)
    assert_same(expected, got)
    assert any(r.value > 0 for r in got if r.slice == "cold")


@pytest.mark.parametrize(
    ("recs", "truth", "match"),
    [
        ([(1, "a", 1), (1, "a", 2)], [(1, "a")], "recs: 1 users with duplicate"),
        ([(1, "a", 1), (1, "b", 1)], [(1, "a")], "recs: ranks of 1 users"),
        ([(1, "a", 1)], [(1, "a"), (1, "a")], r"truth: 1 duplicate \('user_id', 'item_id'\)"),
        ([(1, "a", 1)], [], "truth: is empty"),
    ],
)
def test_spark_rejects_bad_inputs(
    spark: SparkSession, recs: list[Any], truth: list[Any], match: str
) -> None:
    r = spark.createDataFrame(recs, "user_id long, item_id string, rank int")
    t = spark.createDataFrame(truth, "user_id long, item_id string")
    with pytest.raises(ValueError, match=match):
        evaluate_spark(r, t, ks=(1,))


def test_spark_rejects_wrong_types(spark: SparkSession) -> None:
    r = spark.createDataFrame([(1, "a", 1.0)], "user_id long, item_id string, rank double")
    t = spark.createDataFrame([(1, "a")], "user_id long, item_id string")
    with pytest.raises(TypeError, match="recs: column 'rank' must be integer"):
        evaluate_spark(r, t)
    ok = spark.createDataFrame([(1, "a", 1)], "user_id long, item_id string, rank int")
    with pytest.raises(TypeError, match="truth: expected a Spark DataFrame"):
        sm.recall_at_k(ok, pd.DataFrame({"user_id": [1], "item_id": ["a"]}))  # type: ignore[arg-type]
