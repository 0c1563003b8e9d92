"""Tiny seeded training runs of the three models on a synthetic feature set."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest
import torch
from pyspark.sql import functions as F

from recsys.features.examples import READ_ROLES
from recsys.models.ranker import InteractionRanker
from recsys.training import data as D
from recsys.training import samples as S
from recsys.training.artifacts import FeatureSpecMismatchError, read_artifact, save_artifact
from recsys.training.baselines import (
    ALS_ITEM,
    ALS_RATING,
    ALS_USER,
    ALSConfig,
    als_train_positives,
    fit_als,
    popularity_counts,
    popularity_scores,
    train_positives,
    tune_als,
)
from recsys.training.covisit import CovisitConfig
from recsys.training.inference import known_mask, top_k
from recsys.training.loops import NDCG10, TrainConfig, fit
from recsys.training.trainers import (
    SplitData,
    train_ranker,
    train_sasrec,
    train_two_tower,
)
from recsys.warehouse.tables import FEATURES_INTERACTIONS_SPLIT, Col
from tests.helpers.tiny_features import tiny_split, write_tiny_features

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

DS = date(2026, 1, 5)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def split(spark: SparkSession) -> SplitData:
    return tiny_split(spark, DS)


@pytest.fixture
def root(spark: SparkSession, tmp_path: Path) -> str:
    return str(tmp_path)


def _cfg(**kw: object) -> TrainConfig:
    base: dict[str, object] = {"epochs": 4, "patience": 4, "batch_size": 16, "lr": 1e-2}
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.state_dict().values()]


@pytest.mark.slow
def test_two_tower_learns_and_is_deterministic(
    spark: SparkSession, split: SplitData, root: str
) -> None:
    a = train_two_tower(spark, split, _cfg(), root, CPU)
    hist = a.result.history
    assert hist[-1].loss < hist[0].loss
    assert a.result.metrics[NDCG10] >= max(e.metrics[NDCG10] for e in hist) - 1e-12
    assert a.result.metrics[NDCG10] > a.result.initial[NDCG10]
    b = train_two_tower(spark, split, _cfg(), root, CPU)
    assert all(torch.equal(x, y) for x, y in zip(_weights(a.model), _weights(b.model), strict=True))
    assert not list((Path(root) / "_petastorm_cache").glob("*/*.parquet"))


@pytest.mark.slow
def test_sasrec_loss_drops_and_val_ndcg_improves(
    spark: SparkSession, split: SplitData, root: str
) -> None:
    t = train_sasrec(spark, split, _cfg(epochs=6, patience=6, max_len=8), root, CPU)
    hist = t.result.history
    assert hist[-1].loss < hist[0].loss
    assert t.result.metrics[NDCG10] > t.result.initial[NDCG10]


def test_sasrec_rows_mark_positive_targets(spark: SparkSession) -> None:
    ds = DS + timedelta(days=1)
    write_tiny_features(spark, ds)
    name = FEATURES_INTERACTIONS_SPLIT.qualified_name
    here = (F.col(Col.DS) == F.lit(ds)) & (F.col(Col.SPLIT_ID) == F.lit("leave_last_out"))
    # Every third event becomes a non-positive one (still an input, not a target).
    flipped = (
        spark.table(name).where(here).withColumn(Col.IS_POSITIVE, F.hour(Col.EVENT_TS) % 3 != 0)
    )
    flipped.localCheckpoint().writeTo(name).overwrite(here)
    rows = D.sasrec_rows(
        spark, ds, "leave_last_out", 500, seed=0, positives_only=False, positive_targets=True
    ).toPandas()
    train = (
        spark.table(name)
        .where(here & (F.col(Col.ROLE) == D.TRAIN))
        .toPandas()
        .sort_values([Col.USER_ID, Col.EVENT_TS, Col.ITEM_ID])
    )
    assert 0 < train[Col.IS_POSITIVE].mean() < 1
    assert len(rows) == train[Col.USER_ID].nunique()  # one window per user at 500
    for _, row in rows.iterrows():
        events = train[train[Col.USER_ID] == row[Col.USER_ID]]
        items = [int(i) for i in events[Col.ITEM_ID]]  # the tiny items' index is their id
        wanted = [i if p else 0 for i, p in zip(items, events[Col.IS_POSITIVE], strict=True)]
        pad = 501 - len(items)
        assert list(row[D.SEQ]) == [0] * pad + items
        assert list(row[D.TARGET]) == [0] * pad + wanted
    plain = D.sasrec_rows(spark, ds, "leave_last_out", 500, seed=0, positives_only=False)
    assert D.TARGET not in plain.columns


@pytest.mark.slow
def test_sasrec_learns_from_positive_targets_only(
    spark: SparkSession, split: SplitData, root: str
) -> None:
    cfg = _cfg(epochs=3, patience=3, max_len=8, positives_only=False, positive_targets=True)
    t = train_sasrec(spark, split, cfg, root, CPU)
    assert t.model.config.positive_targets  # type: ignore[union-attr]
    assert t.result.history[-1].loss < t.result.history[0].loss


@pytest.mark.slow
def test_ranker_trains_on_examples(
    spark: SparkSession, split: SplitData, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tower = train_two_tower(spark, split, _cfg(epochs=2), root, CPU)
    roles: list[str] = []
    read = D.ranker_rows

    def recorded(*args: object, **kwargs: object) -> object:
        roles.append(str(args[3]))
        return read(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(D, "ranker_rows", recorded)
    r = train_ranker(spark, split, _cfg(epochs=3), root, CPU, tower.model)  # type: ignore[arg-type]
    # It reads only the roles the features job writes by default.
    assert roles
    assert set(roles) <= set(READ_ROLES)
    assert r.result.history[-1].loss < r.result.history[0].loss
    assert r.result.metrics["auc"] > 0.5


@pytest.mark.slow
def test_ranker_with_sasrec_and_covisit_reads_both_scores_straight(
    spark: SparkSession, split: SplitData, root: str
) -> None:
    tower = train_two_tower(spark, split, _cfg(epochs=2), root, CPU)
    sas = train_sasrec(spark, split, _cfg(epochs=2), root, CPU)
    r = train_ranker(
        spark,
        split,
        _cfg(epochs=3),
        root,
        CPU,
        tower.model,  # type: ignore[arg-type]
        sequencer=sas.model,  # type: ignore[arg-type]
        covisit=CovisitConfig(window=3, last=5),
    )
    width = int(split.users.dense.shape[1])
    assert isinstance(r.model, InteractionRanker)
    config = r.model.config
    assert config.n_dense == width + 6
    assert config.base_score_column == width + 3  # two-tower score
    assert config.linear_columns == (width + 4, width + 5)  # SASRec, co-visitation
    assert r.result.history[-1].loss < r.result.history[0].loss


def _one_batch() -> Iterator[dict[str, torch.Tensor]]:
    """An epoch of one batch: x = 1."""
    yield {"x": torch.ones(1, 1)}


def _towards_10(model: torch.nn.Module) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """The loss (model(x) - 10)^2: every step moves ``model``'s output towards 10."""

    def loss_fn(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out: torch.Tensor = (model(batch["x"]) - 10.0).pow(2).mean()
        return out

    return loss_fn


def test_early_stopping_keeps_the_best_epoch() -> None:
    model = torch.nn.Linear(1, 1, bias=False)
    scores = iter([0.0, 0.5, 0.9, 0.4, 0.3, 0.2, 0.1])
    weights: list[float] = []

    def validate() -> dict[str, float]:
        weights.append(float(model.weight))
        return {NDCG10: next(scores)}

    config = TrainConfig(epochs=10, patience=2, lr=0.1)
    res = fit(model, _one_batch, _towards_10(model), validate, config, "t")
    assert res.best_epoch == 2
    assert len(res.history) == 4  # epochs 3 and 4 did not improve: stop
    assert float(model.weight) == pytest.approx(weights[2])


def test_untrained_weights_are_kept_when_no_epoch_beats_them() -> None:
    model = torch.nn.Linear(1, 1, bias=False)
    start = float(model.weight)
    scores = iter([0.6, 0.5, 0.6, 0.1])  # epoch 0 (untrained), then no epoch better

    def validate() -> dict[str, float]:
        return {NDCG10: next(scores)}

    config = TrainConfig(epochs=10, patience=3, lr=0.1)
    res = fit(model, _one_batch, _towards_10(model), validate, config, "t")
    assert res.best_epoch == 0
    assert len(res.history) == 3
    assert res.metrics[NDCG10] == 0.6
    assert float(model.weight) == start


def test_artifact_refuses_a_mismatched_feature_spec(split: SplitData, tmp_path: Path) -> None:
    from recsys.training.loops import load_model

    model = torch.nn.Linear(1, 1)
    spec = {**split.feature_spec(), "n_items": split.items.n_items + 1}
    art = save_artifact(
        tmp_path,
        "two_tower",
        model.state_dict(),
        config={},
        feature_spec=spec,
        metrics={NDCG10: 0.1},
        data_versions=split.versions,
    )
    with pytest.raises(FeatureSpecMismatchError, match="n_items"):
        load_model(read_artifact(art.path), split)


def test_typed_load_refuses_an_artifact_of_another_model(split: SplitData, tmp_path: Path) -> None:
    from recsys.models.ranker import RankerConfig
    from recsys.models.two_tower import TwoTower
    from recsys.training.loops import config_dict, load_model_as

    config = RankerConfig(n_user_buckets=8, n_item_buckets=8, n_dense=3, deep_dims=(4,))
    art = save_artifact(
        tmp_path,
        "ranker",
        InteractionRanker(config).state_dict(),
        config=config_dict(config),
        feature_spec=split.feature_spec(),
        metrics={NDCG10: 0.1},
        data_versions=split.versions,
    )
    loaded = read_artifact(art.path)
    assert isinstance(load_model_as(loaded, split, InteractionRanker), InteractionRanker)
    with pytest.raises(TypeError, match=r"ranker artifact .*: not a TwoTower but a Interaction"):
        load_model_as(loaded, split, TwoTower)


def test_feature_spec_follows_the_catalogue_not_the_day(split: SplitData) -> None:
    """A model trained on one ds serves later days while the item vocabulary is unchanged."""
    later = dataclasses.replace(split, ds=split.ds + timedelta(days=7))
    assert later.feature_spec() == split.feature_spec()
    ids = split.items.item_ids.clone()
    ids[1], ids[2] = ids[2].item(), ids[1].item()  # the same ids meaning other indices
    shuffled = dataclasses.replace(split, items=dataclasses.replace(split.items, item_ids=ids))
    assert shuffled.feature_spec()["item_vocabulary"] != split.feature_spec()["item_vocabulary"]


def test_popularity_by_distinct_users_on_a_literal_dataset() -> None:
    pairs = pd.DataFrame(
        {
            Col.USER_ID: [1, 1, 2, 2, 3, 3, 3, 1],
            Col.ITEM_ID: [10, 20, 10, 30, 10, 20, 40, 10],
            Col.IS_POSITIVE: [True, True, True, True, True, True, False, True],
            Col.ROLE: ["train"] * 7 + ["test"],
        }
    )
    train = train_positives(pairs)
    counts = popularity_counts(train)
    assert counts[Col.ITEM_ID].tolist() == [10, 20, 30]
    assert counts[Col.N_INTERACTIONS].tolist() == [3, 2, 1]
    index_of = {10: 1, 20: 2, 30: 3, 40: 4}
    scores = popularity_scores(train, index_of, 4).float().expand(2, -1)
    mask = known_mask([1, 2], {1: {10, 20}, 2: {10, 30}}, index_of, 4)
    assert top_k(scores, mask, 2).tolist() == [[3, 4], [2, 4]]


def test_als_input_is_every_train_positive_built_in_spark(
    spark: SparkSession, split: SplitData
) -> None:
    train = als_train_positives(spark, DS, "leave_last_out").toPandas()
    pairs = train_positives(D.split_pairs(spark, DS, "leave_last_out"))  # the former input
    want = sorted(
        (int(u), split.index_of[int(i)])
        for u, i in zip(pairs[Col.USER_ID], pairs[Col.ITEM_ID], strict=True)
        if int(i) in split.index_of
    )
    assert sorted(zip(train[ALS_USER].tolist(), train[ALS_ITEM].tolist(), strict=True)) == want
    assert set(train[ALS_RATING]) == {1.0}


def test_als_collects_the_factors_of_the_asked_users_only(
    spark: SparkSession, split: SplitData
) -> None:
    ids = [int(u) for u in split.sample.ids[:5]]
    asked = spark.createDataFrame(pd.DataFrame({Col.USER_ID: ids}), "user_id BIGINT")
    train = als_train_positives(spark, DS, "leave_last_out")
    factors = fit_als(train, split.items.n_items, ALSConfig(rank=4, max_iter=3), asked)
    assert sorted(factors.user_rows) == sorted(ids)
    assert tuple(factors.users.shape) == (len(ids) + 1, 4)
    assert tuple(factors.items.shape) == (split.items.n_items + 1, 4)
    scores = factors.scores([*ids, -1])
    assert scores.shape == (len(ids) + 1, split.items.n_items + 1)
    assert torch.isfinite(scores[:-1, 1:]).all()
    assert scores[:-1, 1:].abs().sum() > 0
    assert not scores[-1, 1:].any()  # a user without factors scores zeros


def test_als_tuning_keeps_the_best_grid_point(spark: SparkSession, split: SplitData) -> None:
    train = als_train_positives(spark, DS, "leave_last_out")
    grid = ((2, 0.1, 1.0), (4, 0.1, 1.0), (3, 0.1, 1.0))
    best, records = tune_als(
        train,
        split.items.n_items,
        split.sample.frame,
        lambda f: float(f.config.rank),
        grid=grid,
        max_iter=2,
    )
    assert best.config.rank == 4
    assert [r["rank"] for r in records] == [2, 4, 3]
    assert not train.is_cached  # the grid's persisted input is released


@pytest.mark.slow
def test_two_tower_and_sasrec_stream_only_the_training_sample(
    spark: SparkSession, split: SplitData, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``train_users`` the rows read into the training process are the sample's only."""
    streamed: dict[str, list[int]] = {}

    class Recorded(D.EpochBatches):
        def __init__(self, converter: object, *args: object, **kwargs: object) -> None:
            super().__init__(converter, *args, **kwargs)  # type: ignore[arg-type]
            assert self.rows is not None
            streamed[str(len(streamed))] = self.rows[Col.USER_ID].tolist()

    monkeypatch.setattr(D, "EpochBatches", Recorded)
    train_two_tower(spark, split, _cfg(epochs=1, train_users=10), root, CPU)
    train_sasrec(spark, split, _cfg(epochs=1, train_users=10, max_len=8), root, CPU)
    sample = S.training_users(spark, DS, "leave_last_out", 10)
    assert sample is not None
    ids = {int(r[Col.USER_ID]) for r in sample.collect()}
    positives = (
        D.table_slice(spark, FEATURES_INTERACTIONS_SPLIT, DS, "leave_last_out")
        .where((F.col(Col.ROLE) == D.TRAIN) & F.col(Col.IS_POSITIVE))
        .toPandas()
    )
    sampled = positives[positives[Col.USER_ID].isin(ids)]
    two_tower, sasrec = streamed["0"], streamed["1"]
    # Two-tower: one row per train positive of each sampled user, nobody else's.
    assert sorted(two_tower) == sorted(int(u) for u in sampled[Col.USER_ID])
    # SASRec: one window per sampled user (at most 6 train positives < max_len + 1), nobody
    # else's.
    assert sorted(sasrec) == sorted({int(u) for u in sampled[Col.USER_ID]})
    assert len(ids) == 10 < split.n_users
