"""The three trainers (two-tower, SASRec, ranker) on the feature tables of one (ds, split_id).

Each reads the in-memory item table, a seeded sample of users (:class:`SplitData`: their
features and interactions, :mod:`recsys.training.samples`) and a petastorm stream of training
rows (:mod:`recsys.training.data`), trains with :func:`recsys.training.loops.fit` (early
stopping on the sample's validation NDCG@10, full ranking over every item minus the user's train
items, scored in blocks of users: :mod:`recsys.training.blocks`) and returns the trained module
with its config, feature spec, validation metrics and input Delta versions, ready for
:func:`recsys.training.artifacts.save_artifact`. Nothing proportional to every user or every
interaction is held: the two-tower rows carry their user's features in the stream, and the
ranker trains on the sample's users.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from pyspark.sql import Column
from pyspark.sql import functions as F
from torch import Tensor, nn

from recsys.features.item_features import GENRES
from recsys.models.device import ModelKind, batch_size_for
from recsys.models.ranker import InteractionRanker, RankerConfig, bce_loss
from recsys.models.sasrec import SASRecConfig, SequentialRecommender, item_log_q
from recsys.models.two_tower import TwoTower, TwoTowerConfig, id_buckets, in_batch_softmax_loss
from recsys.training import data as D
from recsys.training import samples as S
from recsys.training.blocks import EvalTask, eval_task, in_blocks, ranked, top_k_fast, user_block
from recsys.training.covisit import CovisitConfig
from recsys.training.inference import (
    CovisitScores,
    SequenceScores,
    covisit_scores_spark,
    item_vectors,
    merged_pool,
    ndcg_at,
    ranker_dense,
    rerank,
    sasrec_scores,
    sequence_scores,
    two_tower_scorer,
    user_vectors,
)
from recsys.training.loops import NDCG10, FitResult, TrainConfig, config_dict, fit, seed_everything
from recsys.warehouse.completion import table_versions
from recsys.warehouse.tables import (
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_ITEM_FEATURES,
    FEATURES_RANKER_EXAMPLES,
    FEATURES_USER_FEATURES,
    Col,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

INPUT_TABLES = (
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_USER_FEATURES,
    FEATURES_ITEM_FEATURES,
    FEATURES_RANKER_EXAMPLES,
)


def feature_spec_of(items: D.ItemTable, user_dense_dim: int, split_id: str) -> dict[str, Any]:
    """The feature spec artifacts are checked against: vocabulary and input dimensions.

    It names which item id each index means (a hash of the ids in index order), not the day: a
    model trained on an earlier ds serves later days as long as the catalogue is unchanged.
    """
    return {
        "n_items": items.n_items,
        "genres": list(GENRES),
        "n_genres": int(items.genres.shape[1]),
        "content_dim": int(items.content.shape[1]),
        "user_dense_dim": int(user_dense_dim),
        "split_id": split_id,
        "item_vocabulary": hashlib.sha256(
            np.ascontiguousarray(items.item_ids[1:].numpy(), dtype=np.int64).tobytes()
        ).hexdigest()[:16],
    }


@dataclass(frozen=True)
class SplitData:
    """What training and evaluation hold of one (ds, split_id): bounded by items and a sample.

    Attributes:
        items: Every item's features.
        users: Features of the sampled users only (:mod:`recsys.training.samples`).
        sample_pairs: Every interaction (any role) of the sampled users.
        index_of: Raw item id -> item index.
        versions: Delta versions of the input tables.
        n_users: Users with features in the split (all of them, not only the sample).
        sample: The drawn sample (ids and a Spark frame of them).
    """

    ds: date
    split_id: str
    items: D.ItemTable
    users: D.UserTable
    sample_pairs: pd.DataFrame
    index_of: dict[int, int]
    versions: dict[str, int]
    n_users: int
    sample: S.UserSample

    def feature_spec(self) -> dict[str, Any]:
        """What a model's inputs depend on; artifacts refuse to load against another."""
        return feature_spec_of(self.items, int(self.users.dense.shape[1]), self.split_id)

    def eval_task(self, role: str) -> EvalTask:
        """The sampled users with held-out positives of ``role``: known items (every interaction
        before ``role``: train; plus validation for test), targets and ground truth."""
        return eval_task(self.sample_pairs, role, self.index_of)


def load_split(
    spark: SparkSession,
    ds: date,
    split_id: str,
    history_len: int,
    sample_size: int = S.VALIDATION_USERS,
    sample_seed: int = S.SAMPLE_SEED,
) -> SplitData:
    """Read one split's item features, a seeded user sample's features and interactions, and
    the Delta versions read. ``sample_size`` >= the split's users: every user."""
    S.check_sample_size("sample_size", sample_size)
    versions = table_versions(spark, INPUT_TABLES)
    items = D.load_items(spark, ds, split_id)
    sample = S.draw_sample(spark, ds, split_id, sample_size, sample_seed)
    return SplitData(
        ds=ds,
        split_id=split_id,
        items=items,
        users=D.load_users(spark, ds, split_id, history_len, sample.frame),
        sample_pairs=S.sample_pairs(spark, ds, split_id, sample.frame),
        index_of=items.index_of(),
        versions=versions,
        n_users=S.count_users(spark, ds, split_id),
        sample=sample,
    )


@dataclass(frozen=True)
class Trained:
    """A trained module and what its artifact records."""

    name: str
    model: nn.Module
    config: dict[str, Any]
    result: FitResult


def _train_counts(
    spark: SparkSession, split: SplitData, *, positives_only: bool
) -> npt.NDArray[np.int64]:
    """``(n_items + 1,)`` int64: train rows per item index (positives only when asked), counted
    in Spark over every user; 0 for padding and items without train rows."""
    per_item = S.train_item_counts(
        spark, split.ds, split.split_id, positives_only=positives_only, distinct_users=False
    )
    return S.counts_by_index(per_item, split.index_of, split.items.n_items)


def _fit_streamed(
    name: ModelKind,
    model: nn.Module,
    model_config: Any,
    rows: DataFrame,
    loss_fn: Callable[[dict[str, Tensor]], Tensor],
    validate: Callable[[], dict[str, float]],
    config: TrainConfig,
    warehouse_root: str,
    device: torch.device,
    length_of: str | None = None,
) -> Trained:
    """:func:`fit` ``model`` on ``rows`` streamed through petastorm (batch size from
    ``config`` or the device; ``length_of``: see :class:`recsys.training.data.EpochBatches`)."""
    size = config.batch_size or batch_size_for(name, device)
    with D.petastorm_converter(rows, warehouse_root) as conv:
        batches = D.EpochBatches(conv, size, config.seed, length_of=length_of)
        result = fit(model, batches, loss_fn, validate, config, name)
    return Trained(name, model, config_dict(model_config), result)


def train_two_tower(
    spark: SparkSession,
    split: SplitData,
    config: TrainConfig,
    warehouse_root: str,
    device: torch.device,
    model_config: TwoTowerConfig | None = None,
) -> Trained:
    """In-batch softmax with logQ over train positives; validation NDCG@10 by full ranking.

    Each training row carries its user's dense features and history
    (:func:`recsys.training.data.two_tower_rows`); with ``config.train_users`` only the rows of
    that seeded training sample are streamed. The item frequencies of the logQ correction are
    counted in Spark over every user; validation ranks the sampled users (``split.users``) in
    blocks.
    """
    seed_everything(config.seed)
    items, users = split.items, split.users
    mc = model_config or TwoTowerConfig(
        n_user_buckets=id_buckets(split.n_users),
        n_item_buckets=id_buckets(items.n_items),
        user_dense_dim=int(users.dense.shape[1]),
        content_dim=int(items.content.shape[1]),
        n_genres=int(items.genres.shape[1]),
        id_dropout=0.1,
        hidden_dims=(128,),
    )
    model = TwoTower(mc).to(device)
    counts = _train_counts(spark, split, positives_only=True)
    log_q = torch.log(torch.from_numpy(np.maximum(counts, 1) / max(1, counts.sum())).float())
    val = split.eval_task(D.VALIDATION)

    def loss_fn(batch: dict[str, Tensor]) -> Tensor:
        item_ids = batch[Col.ITEM_ID].long()
        hist = batch[Col.HISTORY].long()
        hist = torch.where(hist == item_ids.unsqueeze(1), torch.zeros_like(hist), hist)
        idx = batch[Col.ITEM_INDEX].long()
        out = model(
            batch[Col.USER_ID].long().to(device),
            batch[Col.DENSE].float().to(device),
            hist.to(device),
            item_ids.to(device),
            items.content[idx].to(device),
            items.genres[idx].to(device),
            items.year[idx].to(device),
        )
        return in_batch_softmax_loss(
            out.user, out.item, out.temperature, item_ids.to(device), log_q[idx].to(device)
        )

    def validate() -> dict[str, float]:
        scores = two_tower_scorer(model, users, items, device)
        return {NDCG10: ndcg_at(ranked(val, items.n_items, scores, 10), val.targets)}

    rows_df = D.two_tower_rows(
        spark,
        split.ds,
        split.split_id,
        config.seed,
        history_len=int(users.history.shape[1]),
        users=S.training_users(spark, split.ds, split.split_id, config.train_users),
    )
    return _fit_streamed(
        "two_tower", model, mc, rows_df, loss_fn, validate, config, warehouse_root, device
    )


def train_sasrec(
    spark: SparkSession,
    split: SplitData,
    config: TrainConfig,
    warehouse_root: str,
    device: torch.device,
    model_config: SASRecConfig | None = None,
) -> Trained:
    """Next-item training on chronological train events, full or sampled softmax (``mc.loss``).

    The events are the train positives, or every train interaction when
    ``config.positives_only`` is False; validation feeds the same kind of sequence. With
    ``config.positive_targets`` only positive next events are targets. With
    ``config.train_users`` only the sequences of that seeded training sample are streamed.
    Batches are reshuffled every epoch and grouped by length, each cut to its longest row.
    """
    seed_everything(config.seed)
    mc = model_config or SASRecConfig(
        n_items=split.items.n_items,
        max_len=config.max_len,
        dropout=config.dropout,
        positives_only=config.positives_only,
        positive_targets=config.positive_targets,
    )
    model = SequentialRecommender(mc).to(device)
    val = split.eval_task(D.VALIDATION)
    seqs = D.event_sequences(split.sample_pairs, (D.TRAIN,), split.index_of, mc.positives_only)
    # Sampled softmax (large catalogues, mc.sampled) with popularity negatives: Q from the
    # train counts of the events the sequences hold, counted in Spark (one row per item).
    log_q: Tensor | None = None
    if mc.sampled and mc.negatives == "popularity":
        counts = _train_counts(spark, split, positives_only=mc.positives_only)
        log_q = item_log_q(torch.from_numpy(counts)).to(device)

    def loss_fn(batch: dict[str, Tensor]) -> Tensor:
        seq = batch[D.SEQ].long().to(device)
        targets = batch[D.TARGET].long().to(device) if mc.positive_targets else seq
        return model.loss(seq[:, :-1], targets[:, 1:], log_q)

    def validate() -> dict[str, float]:
        top = ranked(
            val, split.items.n_items, lambda ids: sasrec_scores(model, seqs, ids, device), 10
        )
        return {NDCG10: ndcg_at(top, val.targets)}

    rows_df = D.sasrec_rows(
        spark,
        split.ds,
        split.split_id,
        mc.max_len,
        config.seed,
        mc.positives_only,
        mc.positive_targets,
        users=S.training_users(spark, split.ds, split.split_id, config.train_users),
    )
    return _fit_streamed(
        "sasrec", model, mc, rows_df, loss_fn, validate, config, warehouse_root, device, D.SEQ
    )


def _auc(labels: Tensor, logits: Tensor) -> float:
    pos, neg = logits[labels > 0.5], logits[labels <= 0.5]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = torch.argsort(torch.argsort(torch.cat([pos, neg]))).double() + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


#: Pool items drawn per positive as extra (hard) negatives, on the fly each batch.
RANKER_POOL_NEGATIVES = 32
#: One validation user in this many is held out of ranker training for early stopping.
RANKER_HOLDOUT_EVERY = 5


def ranker_holdout(seed: int) -> Column:
    """True for users held out of ranker training (its early stopping reads them), by hash."""
    h = F.xxhash64(F.lit(seed), F.lit("ranker_holdout"), F.col(Col.USER_ID).cast("long"))
    return F.pmod(h, F.lit(RANKER_HOLDOUT_EVERY)) == F.lit(0)


def train_ranker(
    spark: SparkSession,
    split: SplitData,
    config: TrainConfig,
    warehouse_root: str,
    device: torch.device,
    retriever: TwoTower,
    model_config: RankerConfig | None = None,
    sequencer: SequentialRecommender | None = None,
    covisit: CovisitConfig | None = None,
) -> Trained:
    """BCE on validation-role labels over the retriever's pool, features from the train role only.

    The ranker learns what it does in serving: order the retriever's candidates by the chance the
    user consumes them *next*. Its labels therefore come from the validation role (the first
    positive after the train window) while every input (user features, genre affinity, history,
    the two-tower model) comes from the train role. Training on train-role positives leaks the
    label instead: those items sit in the user's history and genre affinity and the two-tower
    model was fitted to them, so the ranker learns "already seen" (measured on ml-latest-small:
    NDCG@10 0.024, below popularity's 0.025; this version 0.0455 with two-tower alone at 0.040,
    0.042 before the residual base score).

    Rows: the validation positives of ``features.ranker_examples`` of the sampled users
    (``split.sample``, every user when the sample holds them all) through petastorm; a positive
    teaches only when it is in the user's two-tower top ``config.candidates`` (the pool the ranker
    orders in serving), and brings :data:`RANKER_POOL_NEGATIVES` items drawn from that pool each
    batch (a draw equal to the positive is labelled 1). Positives outside the pool and the
    popularity-sampled negatives are not used: both lie outside the pool, where a high retrieval
    score means "negative". One validation user in :data:`RANKER_HOLDOUT_EVERY` (seeded hash) is
    held out: early stopping reads the NDCG@10 of re-ranking their pool, and AUC on their
    examples is reported beside it. The default config has no id embeddings (``id_dim=0``): with
    one label per user they memorise (re-ranking a 3-epoch two-tower: test NDCG@10 0.022 with
    32-wide ids, 0.032 without).

    With a ``sequencer`` (a trained SASRec) the pool is what serving ranks, the two-tower and
    the SASRec top ``config.candidates`` merged (:func:`merged_pool`), and SASRec's next-item
    log-probability of the train-role sequence is one more input with its own straight weight
    (``RankerConfig.linear_columns``, from 0). With ``covisit`` the co-visitation score of the
    train-role events (the stored ``features.covisit`` matrix and each user's last train events;
    :mod:`recsys.training.covisit`) is another
    such input.
    """
    seed_everything(config.seed)
    items, users = split.items, split.users
    retriever = retriever.to(device)
    uvec = user_vectors(retriever, users, torch.arange(users.user_ids.shape[0]), device)
    ivec = item_vectors(retriever, items, device)
    retrieval_col = int(users.dense.shape[1]) + 3  # ranker_dense's retrieval score column
    seq_scores: SequenceScores | None = None
    if sequencer is not None:
        sequencer = sequencer.to(device)
        train_seqs = D.event_sequences(
            split.sample_pairs, (D.TRAIN,), split.index_of, sequencer.config.positives_only
        )
        seq_scores = sequence_scores(sequencer, train_seqs, users, device)
    cov_scores: CovisitScores | None = None
    if covisit is not None:
        # The stored matrix (features.covisit, as evaluation and serving read it) and the
        # train-role votes of the rows of `users` only, collected from Spark for them.
        cov_scores = covisit_scores_spark(
            spark, split.ds, split.split_id, items, users, (D.TRAIN,), covisit
        )
    extra_cols = int(seq_scores is not None) + int(cov_scores is not None)
    mc = model_config or RankerConfig(
        n_user_buckets=id_buckets(split.n_users),
        n_item_buckets=id_buckets(items.n_items),
        id_dim=0,
        n_dense=retrieval_col + 1 + extra_cols,
        deep_dims=(64, 32),
        base_score_column=retrieval_col,
        linear_columns=tuple(range(retrieval_col + 1, retrieval_col + 1 + extra_cols)),
    )
    model = InteractionRanker(mc).to(device)
    examples = D.ranker_rows(
        spark, split.ds, split.split_id, D.VALIDATION, config.seed, users=split.sample.frame
    )
    held = ranker_holdout(config.seed)
    hold_ex = examples.where(held).toPandas()
    held_users = {int(u) for u in hold_ex[Col.USER_ID].unique()}
    val = split.eval_task(D.VALIDATION)
    val_users, val_targets = val.users, val.targets
    tower = two_tower_scorer(retriever, users, items, device)

    def pool_block(start: int, stop: int) -> tuple[Tensor, ...]:
        ids, mask = val_users[start:stop], val.mask(start, stop, items.n_items)
        retrieval = tower(ids)
        if seq_scores is None:
            cands = top_k_fast(retrieval, mask, config.candidates)
        else:
            seq_matrix = seq_scores.matrix(users.row_of(np.asarray(ids)))
            cands = merged_pool(retrieval, seq_matrix, mask, config.candidates)
        return cands, retrieval.gather(1, cands)

    # The pool and each candidate's retrieval score, per block of users (no users x items).
    candidates, pool_retrieval = in_blocks(len(val_users), user_block(items.n_items), pool_block)
    # Candidate pool per user-table row (row 0 and users without validation positives: none).
    pool = torch.zeros((users.user_ids.shape[0], candidates.shape[1]), dtype=torch.long)
    has_pool = torch.zeros(users.user_ids.shape[0], dtype=torch.bool)
    val_rows = users.row_of(np.asarray(val_users))
    known = val_rows > 0
    pool[val_rows[known]], has_pool[val_rows[known]] = candidates[known], True
    pick = [i for i, u in enumerate(val_users) if u in held_users]
    hold_users = [val_users[i] for i in pick]
    hold_candidates, hold_targets = candidates[pick], [val_targets[i] for i in pick]
    generator = torch.Generator().manual_seed(config.seed)

    def dense_of(rows: Tensor, idx: Tensor) -> Tensor:
        seq = None if seq_scores is None else seq_scores.log_prob(rows, idx)
        cov = None if cov_scores is None else cov_scores.feature(rows, idx)
        return ranker_dense(users, items, rows, idx, (uvec[rows] * ivec[idx]).sum(-1), seq, cov)

    def forward(rows: Tensor, idx: Tensor) -> Tensor:
        dense = dense_of(rows, idx)
        out: Tensor = model(
            users.user_ids[rows].to(device), items.item_ids[idx].to(device), dense.to(device)
        )
        return out

    if mc.base_score_column is not None and bool(has_pool.any()):
        # Start calibrated: the untrained ranker orders by the retrieval score (its base column)
        # and predicts the base rate of a training group, 1 positive in 1 + negatives, on average
        # over the pool. Started at offset 0 instead, BCE first drives every logit down and the
        # base weight with it, losing the retrieval order (measured: val NDCG@10 0.037 -> 0.002).
        p_rows = has_pool.nonzero().squeeze(1).repeat_interleave(pool.shape[1])
        base = dense_of(p_rows, pool[has_pool].reshape(-1))[:, mc.base_score_column]
        rate = 1.0 / (1 + RANKER_POOL_NEGATIVES)
        with torch.no_grad():
            model.head.bias.fill_(math.log(rate / (1 - rate)) - float(base.mean()))

    def loss_fn(batch: dict[str, Tensor]) -> Tensor:
        rows = users.row_of(batch[Col.USER_ID].numpy())
        idx = batch[Col.ITEM_INDEX].long()
        # Only positives the retriever put in the pool teach re-ranking; the rest (and the
        # popularity negatives, which lie outside the pool) would teach "a high retrieval score
        # means negative", since the pool's own items are the negatives.
        keep = (batch[Col.LABEL] > 0.5) & has_pool[rows] & (pool[rows] == idx.unsqueeze(1)).any(1)
        if not bool(keep.any()):
            return forward(rows[:1], idx[:1]).sum() * 0.0
        p_rows, p_items = rows[keep], idx[keep]
        draw = torch.randint(
            0, pool.shape[1], (len(p_rows), RANKER_POOL_NEGATIVES), generator=generator
        )
        hard = pool[p_rows].gather(1, draw)
        all_rows = torch.cat([p_rows, p_rows.repeat_interleave(RANKER_POOL_NEGATIVES)])
        all_idx = torch.cat([p_items, hard.reshape(-1)])
        labels = torch.cat(
            [torch.ones(len(p_rows)), (hard == p_items.unsqueeze(1)).float().reshape(-1)]
        )
        return bce_loss(forward(all_rows, all_idx), labels.to(device))

    def validate() -> dict[str, float]:
        if not hold_users:
            return {NDCG10: 0.0}
        reranked = rerank(
            model,
            users,
            items,
            hold_users,
            hold_candidates,
            pool_retrieval[pick],
            device,
            seq_scores,
            cov_scores,
        )
        metrics = {NDCG10: ndcg_at(reranked, hold_targets)}
        if len(hold_ex):
            with torch.no_grad():
                model.eval()
                logits = forward(
                    users.row_of(hold_ex[Col.USER_ID].to_numpy(np.int64)),
                    torch.from_numpy(hold_ex[Col.ITEM_INDEX].to_numpy(np.int64)),
                ).cpu()
            metrics["auc"] = _auc(torch.from_numpy(hold_ex[Col.LABEL].to_numpy(np.float32)), logits)
        return metrics

    rows_df = examples.where(~held)
    return _fit_streamed(
        "ranker", model, mc, rows_df, loss_fn, validate, config, warehouse_root, device
    )
