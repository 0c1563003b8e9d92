"""The pandas metrics against hand-computed tiny cases, their input checks, and properties."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.evaluation import (
    ALL,
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

L3 = math.log2(3)


def test_accuracy_at_3(hand: dict[str, Any]) -> None:
    r, t = hand["recs"], hand["truth"]
    # recall: u1 2/2, u2 1/3, u4 0 -> (1 + 1/3 + 0) / 3
    assert recall_at_k(r, t, 3) == pytest.approx(4 / 9)
    # precision: u1 2/3, u2 1/3, u4 0 -> 1/3
    assert precision_at_k(r, t, 3) == pytest.approx(1 / 3)
    # NDCG: u1 (1 + 1/log2 4) / (1 + 1/log2 3); u2 (1/log2 4) / (1 + 1/log2 3 + 1/log2 4); u4 0
    u1 = (1 + 1 / 2) / (1 + 1 / L3)
    u2 = (1 / 2) / (1 + 1 / L3 + 1 / 2)
    assert ndcg_at_k(r, t, 3) == pytest.approx((u1 + u2) / 3)
    # AP@3: u1 (P@1 + P@3) / min(2, 3) = (1 + 2/3) / 2 = 5/6; u2 P@3 / min(3, 3) = (1/3) / 3
    assert map_at_k(r, t, 3) == pytest.approx((5 / 6 + 1 / 9) / 3)
    # hits in top 3: u1 yes, u2 yes, u4 no
    assert hit_rate_at_k(r, t, 3) == pytest.approx(2 / 3)
    # first hit: u1 rank 1, u2 rank 3, u4 none -> (1 + 1/3 + 0) / 3
    assert mrr(r, t, 3) == pytest.approx(4 / 9)


def test_ndcg_per_user_is_what_ndcg_at_k_averages(hand: dict[str, Any]) -> None:
    r, t = hand["recs"], hand["truth"]
    per_user = ndcg_per_user(r, t, 3)
    assert per_user.index.tolist() == [1, 2, 4]  # users of the truth; user 3 has none
    u1 = (1 + 1 / 2) / (1 + 1 / L3)
    u2 = (1 / 2) / (1 + 1 / L3 + 1 / 2)
    assert per_user.tolist() == pytest.approx([u1, u2, 0.0])
    for k in (1, 2, 3, 10):
        assert ndcg_per_user(r, t, k).mean() == pytest.approx(ndcg_at_k(r, t, k))
    with pytest.raises(ValueError, match="k"):
        ndcg_per_user(r, t, 0)


def test_accuracy_at_1_and_2(hand: dict[str, Any]) -> None:
    r, t = hand["recs"], hand["truth"]
    # top 1: only u1 hits (a). recall 1/2 -> (1/2)/3; precision 1/1 -> 1/3; NDCG 1/1 -> 1/3;
    # AP@1 = P@1 / min(2, 1) = 1 -> 1/3; hit 1/3; MRR 1/3.
    assert recall_at_k(r, t, 1) == pytest.approx(1 / 6)
    for f in (precision_at_k, ndcg_at_k, map_at_k, hit_rate_at_k, mrr):
        assert f(r, t, 1) == pytest.approx(1 / 3)
    # top 2: u1 hits only at 1. NDCG@2 = 1 / (1 + 1/log2 3) -> /3; AP@2 = 1 / min(2, 2) -> /3
    assert ndcg_at_k(r, t, 2) == pytest.approx(1 / (1 + 1 / L3) / 3)
    assert map_at_k(r, t, 2) == pytest.approx(1 / 2 / 3)
    assert precision_at_k(r, t, 2) == pytest.approx(1 / 2 / 3)


def test_k_larger_than_the_lists(hand: dict[str, Any]) -> None:
    r, t = hand["recs"], hand["truth"]
    # Lists end at 4; precision pads with misses: u1 2/10, u2 1/10 -> 0.3 / 3
    assert precision_at_k(r, t, 10) == pytest.approx(0.1)
    # Nothing else changes beyond the lists (IDCG cut at |rel| <= 3 < 10).
    for f in (recall_at_k, ndcg_at_k, map_at_k, hit_rate_at_k, mrr):
        assert f(r, t, 10) == pytest.approx(f(r, t, 4))
    assert mrr(r, t) == pytest.approx(4 / 9)  # k=None: whole lists


def test_ndcg_example_from_the_issue() -> None:
    # hits at ranks {1, 3}, 2 relevant: NDCG@3 = (1 + 1/2) / (1 + 1/log2 3)
    recs = pd.DataFrame({"user_id": [7, 7, 7], "item_id": [1, 2, 3], "rank": [1, 2, 3]})
    truth = pd.DataFrame({"user_id": [7, 7], "item_id": [1, 3]})
    assert ndcg_at_k(recs, truth, 3) == pytest.approx((1 + 1 / 2) / (1 + 1 / L3))


def test_map_normaliser_is_min_of_relevant_and_k() -> None:
    # 5 relevant, list of 2 hits: AP@2 = (P@1 + P@2) / min(5, 2) = (1 + 1) / 2 = 1
    recs = pd.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "rank": [1, 2]})
    truth = pd.DataFrame({"user_id": [1] * 5, "item_id": [1, 2, 3, 4, 5]})
    assert map_at_k(recs, truth, 2) == pytest.approx(1.0)
    # recall keeps |rel|: 2/5
    assert recall_at_k(recs, truth, 2) == pytest.approx(0.4)


def test_no_hits_gives_zeros(hand: dict[str, Any]) -> None:
    truth = pd.DataFrame({"user_id": [1, 2], "item_id": ["h", "g"]})
    for f in (recall_at_k, precision_at_k, ndcg_at_k, map_at_k, hit_rate_at_k, mrr):
        assert f(hand["recs"], truth, 3) == 0.0


def test_catalogue_metrics(hand: dict[str, Any]) -> None:
    r, cat = hand["recs"], hand["catalog"]
    # top 2: u1 {a, b}, u2 {c, a}, u3 {b, e} -> 4 distinct of 8
    assert catalog_coverage(r, cat, 2) == pytest.approx(0.5)
    assert catalog_coverage(r, cat) == pytest.approx(5 / 8)  # whole lists add d
    # top-2 exposure sorted over 8 items: 0 0 0 0 1 1 2 2, Σx = 6;
    # Σ (2j - 9) x_j = 1·1 + 3·1 + 5·2 + 7·2 = 28 -> 28 / (8 · 6) = 7/12
    assert gini(r, cat, 2) == pytest.approx(7 / 12)
    # top 1: a, c, b once each: 0 0 0 0 0 1 1 1 -> (3 + 5 + 7) / (8 · 3) = 15/24
    assert gini(r, cat, 1) == pytest.approx(15 / 24)
    # -log2(n_i / 4): a 0, b 1, c 2, unseen 2 (floor n_i = 1). top 2:
    # u1 (0 + 1)/2, u2 (2 + 0)/2, u3 (1 + 2)/2 -> (0.5 + 1 + 1.5) / 3 = 1
    assert novelty(r, hand["train_counts"], 4, 2) == pytest.approx(1.0)
    # whole lists: u1 (0 + 1 + 2 + 2)/4, u2 (2 + 0 + 2)/3, u3 1.5
    whole = (5 / 4 + 4 / 3 + 1.5) / 3
    assert novelty(r, hand["train_counts"], 4) == pytest.approx(whole)


def test_gini_extremes() -> None:
    cat = pd.DataFrame({"item_id": [1, 2, 3, 4]})
    # each item once: equal exposure -> 0
    equal = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [1, 2, 3, 4], "rank": [1, 2, 1, 2]})
    assert gini(equal, cat) == pytest.approx(0.0)
    # one item to everyone: 0 0 0 2 -> (2·4 - 5)·2 / (4·2) = 3/4 = 1 - 1/n
    one = pd.DataFrame({"user_id": [1, 2], "item_id": [1, 1], "rank": [1, 1]})
    assert gini(one, cat) == pytest.approx(0.75)


def values(rows: list[MetricRow]) -> dict[tuple[str, int, str], tuple[float, int]]:
    return {(r.metric.value, r.k, r.slice): (r.value, r.n_users) for r in rows}


def test_evaluate_rows_and_slices(hand: dict[str, Any]) -> None:
    rows = evaluate(
        hand["recs"],
        hand["truth"],
        ks=(3, 2),
        catalog=hand["catalog"],
        train_counts=hand["train_counts"],
        n_train_users=4,
        slices={"light": UserSlice({1, 3}), "cold": ItemSlice({"e", "f"}), "none": UserSlice([])},
    )
    got = values(rows)
    assert len(got) == len(rows)
    # all: 6 accuracy + 3 catalogue metrics, 2 cutoffs; light: the same; cold: 3 metrics
    assert len(rows) == 18 + 18 + 6
    first = [(Metric.RECALL, 3), (Metric.RECALL, 2), (Metric.PRECISION, 3)]
    assert [(r.metric, r.k) for r in rows[:3]] == first
    assert got["recall", 3, ALL] == pytest.approx((4 / 9, 3))
    assert got["gini", 2, ALL] == pytest.approx((7 / 12, 3))
    assert got["novelty", 2, ALL] == pytest.approx((1.0, 3))
    # light = users {1, 3}: accuracy over u1 only (u3 has no truth); catalogue over u1 and u3.
    assert got["ndcg", 3, "light"] == pytest.approx(((1 + 1 / 2) / (1 + 1 / L3), 1))
    # top 2 of u1 and u3: a, b, b, e -> 3 of 8; novelty ((0 + 1)/2 + (1 + 2)/2) / 2 = 1
    assert got["catalog_coverage", 2, "light"] == pytest.approx((3 / 8, 2))
    assert got["novelty", 2, "light"] == pytest.approx((1.0, 2))
    # cold = items {e, f}: only u2 has such relevant items ({e, f}); e is hit at rank 3.
    assert got["recall", 3, "cold"] == pytest.approx((1 / 2, 1))
    assert got["ndcg", 3, "cold"] == pytest.approx(((1 / 2) / (1 + 1 / L3), 1))
    assert got["hit_rate", 2, "cold"] == pytest.approx((0.0, 1))
    assert ("map", 3, "cold") not in got
    assert not [r for r in rows if r.slice == "none"]  # empty population: no rows


def test_evaluate_without_catalogue_inputs(hand: dict[str, Any]) -> None:
    rows = evaluate(hand["recs"], hand["truth"], ks=(5,))
    assert {r.metric for r in rows} == {
        Metric.RECALL,
        Metric.PRECISION,
        Metric.NDCG,
        Metric.MAP,
        Metric.HIT_RATE,
        Metric.MRR,
    }


def _with(df: pd.DataFrame, **cols: list[Any]) -> pd.DataFrame:
    return df.assign(**cols)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda f: f.update(recs=f["recs"].iloc[:0]), ValueError, "recs: is empty"),
        (lambda f: f.update(truth=f["truth"].iloc[:0]), ValueError, "truth: is empty"),
        (lambda f: f.update(recs=f["recs"].drop(columns="rank")), ValueError, "recs: missing"),
        (lambda f: f.update(truth=[(1, "a")]), TypeError, "truth: expected a pandas DataFrame"),
        (
            lambda f: f.update(recs=pd.concat([f["recs"], f["recs"].iloc[[0]]])),
            ValueError,
            r"recs: duplicate \('user_id', 'item_id'\)",
        ),
        (
            lambda f: f.update(recs=_with(f["recs"], rank=[1, 1, 2, 3, 1, 2, 3, 1, 2])),
            ValueError,
            r"recs: duplicate \('user_id', 'rank'\)",
        ),
        (
            lambda f: f.update(recs=_with(f["recs"], rank=[1, 2, 3, 5, 1, 2, 3, 1, 2])),
            ValueError,
            "recs: ranks of user 1",
        ),
        (
            lambda f: f.update(recs=_with(f["recs"], rank=[1.0, 2, 3, 4, 1, 2, 3, 1, 2])),
            TypeError,
            "recs: column 'rank' must be integer",
        ),
        (
            lambda f: f.update(truth=pd.concat([f["truth"], f["truth"].iloc[[2]]])),
            ValueError,
            "truth: duplicate",
        ),
        (
            lambda f: f.update(truth=_with(f["truth"], item_id=[None, "c", "b", "e", "f", "a"])),
            ValueError,
            "truth: null",
        ),
        (lambda f: f.update(catalog=f["catalog"].iloc[1:]), ValueError, "'a' is not in catalog"),
        (
            lambda f: f.update(catalog=pd.concat([f["catalog"]] * 2)),
            ValueError,
            "catalog: duplicate",
        ),
        (
            lambda f: f.update(train_counts=_with(f["train_counts"], n_interactions=[5, 2, 1])),
            ValueError,
            r"train_counts: n_interactions must lie in \[0, n_train_users=4\]",
        ),
        (lambda f: f.update(ks=()), ValueError, "ks: expected a non-empty"),
        (lambda f: f.update(ks=(10, 10)), ValueError, "ks: repeated"),
        (lambda f: f.update(ks=(0,)), ValueError, "ks: expected an int >= 1, got 0"),
        (lambda f: f.update(ks=(True,)), TypeError, "ks: expected an int"),
        (lambda f: f.update(n_train_users=0), ValueError, "n_train_users"),
        (lambda f: f.update(slices={ALL: UserSlice({1})}), ValueError, "slices: names"),
        (lambda f: f.update(slices={"x": {1, 2}}), TypeError, r"slices\['x'\]"),
        (lambda f: f.update(slices={"x": UserSlice(3)}), TypeError, r"slices\['x'\]: members"),
    ],
)
def test_evaluate_rejects_bad_inputs(
    hand: dict[str, Any], change: Any, error: type[Exception], match: str
) -> None:
    args = {**hand, "n_train_users": 4, "ks": (3,), "slices": None}
    change(args)
    with pytest.raises(error, match=match):
        evaluate(args.pop("recs"), args.pop("truth"), **args)


def test_single_metrics_check_k(hand: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="k: expected an int >= 1, got 0"):
        recall_at_k(hand["recs"], hand["truth"], 0)
    with pytest.raises(TypeError, match=r"k: expected an int >= 1, got 2\.5"):
        gini(hand["recs"], hand["catalog"], 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_train_users: given without train_counts"):
        evaluate(hand["recs"], hand["truth"], n_train_users=3)


# --- properties ---------------------------------------------------------------------------------


@st.composite
def instances(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Random lists and truths over ``n_items`` items; user 0 always has both."""
    n_items = draw(st.integers(1, 12))
    recs: list[tuple[int, int, int]] = []
    truth: list[tuple[int, int]] = []
    for u in range(draw(st.integers(1, 6))):
        order = draw(st.permutations(range(n_items)))
        length = draw(st.integers(1 if u == 0 else 0, n_items))
        recs += [(u, i, r + 1) for r, i in enumerate(order[:length])]
        rel = draw(st.sets(st.integers(0, n_items - 1), min_size=1 if u == 0 else 0))
        truth += [(u, i) for i in sorted(rel)]
    return (
        pd.DataFrame(recs, columns=["user_id", "item_id", "rank"]),
        pd.DataFrame(truth, columns=["user_id", "item_id"]),
        n_items,
    )


@settings(max_examples=60, deadline=None)
@given(instances(), st.integers(1, 5), st.data())
def test_ranges_and_recall_monotone_in_k(
    inst: tuple[pd.DataFrame, pd.DataFrame, int], n_train: int, data: st.DataObject
) -> None:
    recs, truth, n_items = inst
    counts = data.draw(st.lists(st.integers(0, n_train), min_size=n_items, max_size=n_items))
    ks = tuple(range(1, n_items + 2))
    rows = evaluate(
        recs,
        truth,
        ks=ks,
        catalog=pd.DataFrame({"item_id": range(n_items)}),
        train_counts=pd.DataFrame({"item_id": range(n_items), "n_interactions": counts}),
        n_train_users=n_train,
    )
    for row in rows:
        if row.metric == Metric.NOVELTY:
            assert 0.0 <= row.value <= math.log2(n_train) + 1e-12
        else:
            assert 0.0 <= row.value <= 1.0 + 1e-12, row
    recall = [r.value for r in rows if r.metric == Metric.RECALL]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(recall))
    # Shuffling the rows changes nothing.
    rng = np.random.default_rng(0)
    shuffled = evaluate(
        recs.sample(frac=1.0, random_state=rng), truth.sample(frac=1.0, random_state=rng), ks=ks
    )
    accuracy = [r for r in rows if r.metric not in {Metric.CATALOG_COVERAGE, Metric.GINI}]
    accuracy = [r for r in accuracy if r.metric != Metric.NOVELTY]
    assert [r.value for r in shuffled] == pytest.approx([r.value for r in accuracy])


@settings(max_examples=60, deadline=None)
@given(instances(), st.integers(1, 15))
def test_perfect_ranking_scores_one(inst: tuple[pd.DataFrame, pd.DataFrame, int], k: int) -> None:
    _, truth, n_items = inst
    # Each user's relevant items first, then the others: the ideal ordering.
    rows = []
    for u, rel in truth.groupby("user_id")["item_id"]:
        order = list(rel) + [i for i in range(n_items) if i not in set(rel)]
        rows += [(u, i, r + 1) for r, i in enumerate(order)]
    perfect = pd.DataFrame(rows, columns=["user_id", "item_id", "rank"])
    assert ndcg_at_k(perfect, truth, k) == pytest.approx(1.0)
    assert map_at_k(perfect, truth, k) == pytest.approx(1.0)
    assert hit_rate_at_k(perfect, truth, k) == 1.0
    assert mrr(perfect, truth, k) == 1.0
