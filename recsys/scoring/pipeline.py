"""The four scoring steps of one ds, each reading and writing warehouse tables.

``embeddings`` -> ``serve.item_embeddings``, ``serve.user_embeddings``; ``retrieve`` ->
``serve.candidates``; ``rank`` -> ``serve.ranked``; ``publish`` -> ``serve.recommendations``.
Each step replaces day ``ds`` of its tables in one Delta commit per table, so a rerun replaces
and never duplicates. The models are the members of one model bundle
(:mod:`recsys.training.bundle`), loaded once per :class:`ScoreContext`: ``bundle_id``, else the
bundle of a pinned ranker, else the champion bundle; pinned per-model versions must be the
bundle's, and a bundle whose ranker records another two-tower or SASRec is refused
(:class:`recsys.training.bundle.BundleMismatchError`). Artifacts are checked against the current
features.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import torch
from pyspark.sql import Window
from pyspark.sql import functions as F

from recsys.kernels import matrix_lists
from recsys.models.device import pick_device
from recsys.models.sasrec import SequentialRecommender
from recsys.models.two_tower import TwoTower
from recsys.scoring.embeddings import (
    DEFAULT_HISTORY_LEN,
    feature_spec,
    item_embedding_arrays,
    user_embeddings_spark,
)
from recsys.scoring.explain import item_labels, with_explanations
from recsys.scoring.rank_inputs import ItemArrays
from recsys.scoring.ranking import BECAUSE, RECENT_ITEMS, SOURCES, rank_spark
from recsys.scoring.retrieval import SEEN, collect_items, retrieve_spark
from recsys.scoring.runtime import ModelPayload
from recsys.scoring.sequential import SEQUENCE, sasrec_spark, sasrec_vectors_spark
from recsys.training import data as D
from recsys.training.artifacts import Artifact, check_feature_spec
from recsys.training.bundle import BundleMismatchError, ModelBundle, resolve_bundle
from recsys.training.inference import sasrec_item_vectors, serving_covisit_matrix
from recsys.training.loops import as_module
from recsys.warehouse.io import replace_partition
from recsys.warehouse.tables import (
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_ITEM_FEATURES,
    FEATURES_USER_FEATURES,
    SERVE_CANDIDATES,
    SERVE_ITEM_EMBEDDINGS,
    SERVE_RANKED,
    SERVE_RECOMMENDATIONS,
    SERVE_TRENDING,
    SERVE_USER_EMBEDDINGS,
    TRENDING_ALL_GENRES,
    Col,
    RecSet,
    TableRef,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

TRENDING, POPULAR = SOURCES[2], SOURCES[3]


@dataclass(frozen=True)
class ScoreContext:
    """What every step of one run shares."""

    spark: SparkSession
    ds: date
    split_id: str
    run_id: str
    artifacts_root: Path
    two_tower_version: str | None = None
    sasrec_version: str | None = None
    ranker_version: str | None = None
    bundle_id: str | None = None

    @functools.cached_property
    def bundle(self) -> ModelBundle:
        """The model bundle this run serves, loaded and checked once (every step of the run
        uses the same versions, even if the champion moves meanwhile).

        Raises:
            BundleMismatchError: a pinned version is not the bundle's, or its ranker was
                trained with other models.
            FileNotFoundError: no bundle, or a member's artifact is missing.
        """
        return resolve_bundle(
            self.artifacts_root,
            self.bundle_id,
            two_tower=self.two_tower_version,
            sasrec=self.sasrec_version,
            ranker=self.ranker_version,
        )

    def split(self, table: TableRef) -> DataFrame:
        return D.table_slice(self.spark, table, self.ds, self.split_id)

    def day(self, table: TableRef) -> DataFrame:
        return self.spark.table(table.qualified_name).where(F.col(Col.DS) == F.lit(self.ds))


def _dense_dim(ctx: ScoreContext) -> int:
    row = ctx.split(FEATURES_USER_FEATURES).select(F.size(Col.DENSE).alias("n")).first()
    if row is None:
        raise ValueError(
            f"{FEATURES_USER_FEATURES}: no rows for ds={ctx.ds} split_id={ctx.split_id!r}"
        )
    return int(row["n"])


def resolve(ctx: ScoreContext, name: str, version: str | None, items: D.ItemTable) -> Artifact:
    """Member ``name`` of the run's bundle (``version``, when given, must be its version),
    refused when trained on other features.

    Raises:
        FileNotFoundError: the bundle has no ``name`` (no SASRec) or its artifact is missing.
        BundleMismatchError: ``version`` is not the bundle's.
    """
    bundle = ctx.bundle
    if version is not None and version != bundle.version_of(name):
        raise BundleMismatchError(
            f"{name}: version {version!r} is not the one of bundle {bundle.bundle_id}"
        )
    art = bundle.artifact(ctx.artifacts_root, name)
    check_feature_spec(art, feature_spec(items, _dense_dim(ctx), ctx.split_id))
    return art


def _write(ctx: ScoreContext, df: DataFrame, table: TableRef) -> int:
    """Cast to the table's schema, replace day ds in one commit; returns rows written."""
    started = time.perf_counter()
    schema = ctx.spark.table(table.qualified_name).schema
    out = df.withColumn(Col.RUN_ID, F.lit(ctx.run_id)).withColumn(Col.DS, F.lit(ctx.ds))
    replace_partition(
        out.select(*[F.col(f.name).cast(f.dataType) for f in schema.fields]), table, ctx.ds
    )
    rows = ctx.day(table).count()
    log.info("%s: %d rows for ds=%s in %.1f s", table, rows, ctx.ds, time.perf_counter() - started)
    return rows


def step_embeddings(ctx: ScoreContext) -> dict[str, int]:
    """Item and user two-tower embeddings of ds."""
    items = D.load_items(ctx.spark, ctx.ds, ctx.split_id)
    art = resolve(ctx, "two_tower", ctx.two_tower_version, items)
    payload = ModelPayload.from_artifact(art)
    device = pick_device()
    model = payload.build(device)
    if not isinstance(model, TwoTower):
        raise TypeError(f"two_tower artifact {art.version}: not a TwoTower")
    vecs = item_embedding_arrays(model, items, device)
    table = pa.table(
        {
            Col.MODEL_VERSION: pa.array([art.version] * len(vecs)),
            Col.ITEM_ID: pa.array(items.item_ids[1:].numpy(), pa.int64()),
            Col.EMBEDDING: matrix_lists(vecs),
            Col.IS_COLD: pa.array(items.is_cold[1:].numpy()),
        }
    )
    counts = {
        str(SERVE_ITEM_EMBEDDINGS): _write(
            ctx, ctx.spark.createDataFrame(table), SERVE_ITEM_EMBEDDINGS
        )
    }
    history_len = int(art.extra.get("train_config", {}).get("history_len", DEFAULT_HISTORY_LEN))
    users = user_embeddings_spark(
        ctx.split(FEATURES_USER_FEATURES), payload, history_len=history_len
    )
    users = users.withColumn(Col.MODEL_VERSION, F.lit(art.version))
    counts[str(SERVE_USER_EMBEDDINGS)] = _write(ctx, users, SERVE_USER_EMBEDDINGS)
    return counts


def _embeddings(ctx: ScoreContext, table: TableRef, version: str) -> DataFrame:
    df = ctx.day(table).where(F.col(Col.MODEL_VERSION) == F.lit(version))
    if df.limit(1).count() == 0:
        raise ValueError(
            f"{table}: no rows for ds={ctx.ds} model_version={version!r}: run the embeddings step"
        )
    return df


def seen_pairs(ctx: ScoreContext) -> DataFrame:
    """(user_id, item_id) of every train or validation interaction of the split."""
    roles = F.col(Col.ROLE).isin(D.TRAIN, D.VALIDATION)
    return (
        ctx.split(FEATURES_INTERACTIONS_SPLIT)
        .where(roles)
        .select(Col.USER_ID, Col.ITEM_ID)
        .distinct()
    )


def popularity_items(ctx: ScoreContext) -> DataFrame:
    """``item_id, embedding=[n_interactions]``: train popularity as a 1-d 'vector'."""
    return ctx.split(FEATURES_ITEM_FEATURES).select(
        Col.ITEM_ID, F.array(F.col(Col.N_INTERACTIONS).cast("float")).alias(Col.EMBEDDING)
    )


def fallback_items(ctx: ScoreContext) -> tuple[DataFrame, str, str]:
    """Fallback list: ``serve.trending`` (genre 'all') of ds when present, else popularity."""
    trending = ctx.day(SERVE_TRENDING).where(F.col(Col.GENRE) == F.lit(TRENDING_ALL_GENRES))
    if trending.limit(1).count() > 0:
        items = trending.select(
            Col.ITEM_ID, F.array(F.col(Col.SCORE).cast("float")).alias(Col.EMBEDDING)
        )
        return items, TRENDING, "trending-" + ctx.ds.isoformat()
    return popularity_items(ctx), POPULAR, "popularity-" + ctx.ds.isoformat()


def _with_source(df: DataFrame, source: str, version: str) -> DataFrame:
    return df.withColumn(Col.SOURCE, F.lit(source)).withColumn(Col.MODEL_VERSION, F.lit(version))


def step_retrieve(ctx: ScoreContext, k: int) -> dict[str, int]:
    """Two-tower and SASRec candidates of warm users, fallbacks for the others, merged."""
    items = D.load_items(ctx.spark, ctx.ds, ctx.split_id)
    tt = resolve(ctx, "two_tower", ctx.two_tower_version, items)
    user_emb = _embeddings(ctx, SERVE_USER_EMBEDDINGS, tt.version)
    item_emb = _embeddings(ctx, SERVE_ITEM_EMBEDDINGS, tt.version)
    seen = seen_pairs(ctx)
    feats = ctx.split(FEATURES_USER_FEATURES)
    warm_ids = feats.where(F.size(Col.HISTORY) > 0).select(Col.USER_ID)
    warm = user_emb.join(warm_ids, Col.USER_ID, "left_semi").select(Col.USER_ID, Col.EMBEDDING)
    parts = [_with_source(retrieve_spark(warm, item_emb, k, seen), SOURCES[0], tt.version)]
    try:
        sas = resolve(ctx, "sasrec", ctx.sasrec_version, items)
    except FileNotFoundError as err:
        log.warning("no SASRec candidates: %s", err)
    else:
        parts.append(
            _with_source(_sasrec(ctx, sas, items, warm_ids, seen, k), SOURCES[1], sas.version)
        )
    everyone = (
        ctx.split(FEATURES_INTERACTIONS_SPLIT)
        .select(Col.USER_ID)
        .unionByName(feats.select(Col.USER_ID))
        .distinct()
    )
    cold = everyone.join(warm_ids, Col.USER_ID, "left_anti").select(
        Col.USER_ID, F.array(F.lit(1.0).cast("float")).alias(Col.EMBEDDING)
    )
    fb_items, fb_source, fb_version = fallback_items(ctx)
    parts.append(_with_source(retrieve_spark(cold, fb_items, k, seen), fb_source, fb_version))
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.unionByName(p)
    priority = F.array_position(F.array(*[F.lit(s) for s in SOURCES]), F.col(Col.SOURCE))
    best = Window.partitionBy(Col.USER_ID, Col.ITEM_ID).orderBy(F.col(Col.CANDIDATE_RANK), priority)
    merged = merged.withColumn("_n", F.row_number().over(best)).where(F.col("_n") == 1).drop("_n")
    return {str(SERVE_CANDIDATES): _write(ctx, merged, SERVE_CANDIDATES)}


def _sasrec(
    ctx: ScoreContext, art: Artifact, items: D.ItemTable, users: DataFrame, seen: DataFrame, k: int
) -> DataFrame:
    lists = seen.groupBy(Col.USER_ID).agg(
        F.collect_list(F.col(Col.ITEM_ID).cast("long")).alias(SEEN)
    )
    frame = sasrec_sequences(ctx, art, users).join(lists, Col.USER_ID, "left")
    return sasrec_spark(frame, items.item_ids[1:].numpy(), ModelPayload.from_artifact(art), k)


def sasrec_sequences(ctx: ScoreContext, art: Artifact, users: DataFrame) -> DataFrame:
    """``user_id, _sequence``: the train and validation events of ``users`` as SASRec reads
    them (item indices, oldest first, ties by item id)."""
    # The input the model was trained on: positives only, or every interaction (artifacts from
    # before the option existed lack the key and were trained on positives).
    return event_sequences(ctx, users, bool(art.config.get("positives_only", True)))


def event_sequences(ctx: ScoreContext, users: DataFrame | None, positives_only: bool) -> DataFrame:
    """``user_id, _sequence``: the train and validation events (positives only, or all) of
    ``users`` (None: every user) as item indices, oldest first, ties by item id (as offline
    :func:`recsys.training.data.event_sequences`)."""
    roles = F.col(Col.ROLE).isin(D.TRAIN, D.VALIDATION)
    if positives_only:
        roles = roles & F.col(Col.IS_POSITIVE)
    index = ctx.split(FEATURES_ITEM_FEATURES).select(Col.ITEM_ID, Col.ITEM_INDEX)
    pos = ctx.split(FEATURES_INTERACTIONS_SPLIT).where(roles).join(index, Col.ITEM_ID)
    ordered = F.sort_array(
        F.collect_list(
            F.struct(Col.EVENT_TS, Col.ITEM_ID, F.col(Col.ITEM_INDEX).cast("long").alias("i"))
        )
    )
    if users is not None:
        pos = pos.join(users, Col.USER_ID, "left_semi")
    return pos.groupBy(Col.USER_ID).agg(F.transform(ordered, lambda s: s["i"]).alias(SEQUENCE))


def item_arrays(ctx: ScoreContext, items: D.ItemTable, version: str) -> ItemArrays:
    """Ranking's item-side arrays: features plus the two-tower item embeddings of ds."""
    ids, emb = collect_items(_embeddings(ctx, SERVE_ITEM_EMBEDDINGS, version))
    feat_ids = items.item_ids[1:].numpy()
    if not np.array_equal(ids, feat_ids):
        raise ValueError(f"{SERVE_ITEM_EMBEDDINGS}: items differ from {FEATURES_ITEM_FEATURES}")
    return ItemArrays(
        item_ids=feat_ids,
        genres=items.genres[1:].numpy(),
        log_count=items.log_count[1:].numpy(),
        is_cold=items.is_cold[1:].numpy(),
        embedding=emb,
    )


def step_rank(ctx: ScoreContext, n: int) -> dict[str, int]:
    """Ranker top-n of the candidates (rec_set model) and popularity top-n (rec_set popularity)."""
    items = D.load_items(ctx.spark, ctx.ds, ctx.split_id)
    tt = resolve(ctx, "two_tower", ctx.two_tower_version, items)
    rk = resolve(ctx, "ranker", ctx.ranker_version, items)
    candidates = ctx.day(SERVE_CANDIDATES).select(Col.USER_ID, Col.ITEM_ID, Col.SOURCE)
    if candidates.limit(1).count() == 0:
        raise ValueError(f"{SERVE_CANDIDATES}: no rows for ds={ctx.ds}: run the retrieve step")
    cand_users = candidates.select(Col.USER_ID).distinct()
    user_emb = _embeddings(ctx, SERVE_USER_EMBEDDINGS, tt.version).select(
        Col.USER_ID, Col.EMBEDDING
    )
    users = (
        ctx.split(FEATURES_USER_FEATURES)
        .select(Col.USER_ID, Col.DENSE, Col.GENRE_AFFINITY, Col.HISTORY)
        .join(user_emb, Col.USER_ID)
    )
    arrays = item_arrays(ctx, items, tt.version)
    # The bundle id: the two-tower, SASRec and ranker versions that serve together.
    version = ctx.bundle.bundle_id
    if ctx.bundle.sasrec is not None:
        # The ranker reads the SASRec score of the model it was trained with (its bundle's).
        sas = resolve(ctx, "sasrec", ctx.sasrec_version, items)
        payload = ModelPayload.from_artifact(sas)
        sequencer = as_module(
            payload.build(torch.device("cpu")),
            SequentialRecommender,
            f"sasrec artifact {sas.version}",
        )
        arrays = replace(arrays, sequence=sasrec_item_vectors(sequencer)[1:].numpy())
        vectors = sasrec_vectors_spark(sasrec_sequences(ctx, sas, cand_users), payload)
        users = users.join(vectors, Col.USER_ID, "left")
    cov_config = ctx.bundle.covisit
    if cov_config is not None:
        # The newest stored matrix with the ranker's settings (features.covisit, written by the
        # features job on training days; at most items x top_n entries, broadcast with the item
        # arrays), the votes from each user's
        # train + validation events, computed in Spark per user.
        matrix = serving_covisit_matrix(ctx.spark, ctx.ds, ctx.split_id, items, cov_config)
        arrays = replace(arrays, covisit_matrix=matrix, covisit_config=cov_config)
        recent = event_sequences(ctx, cand_users, False).select(
            Col.USER_ID,
            # The last `last` events (slice with a negative start empties shorter arrays).
            F.slice(
                SEQUENCE,
                F.greatest(F.size(SEQUENCE) - cov_config.last + 1, F.lit(1)),
                cov_config.last,
            ).alias(RECENT_ITEMS),
        )
        users = users.join(recent, Col.USER_ID, "left")
    model = rank_spark(candidates, users, arrays, ModelPayload.from_artifact(rk), n)
    model = model.withColumn(Col.REC_SET, F.lit(RecSet.MODEL)).withColumn(
        Col.MODEL_VERSION, F.lit(version)
    )
    pop = popularity_set(ctx, cand_users, n)
    ranked = with_explanations(model.unionByName(pop), item_labels(ctx.spark, ctx.ds, ctx.split_id))
    return {str(SERVE_RANKED): _write(ctx, ranked, SERVE_RANKED)}


@dataclass(frozen=True)
class ScoringModels:
    """The artifacts one fused scoring run reads.

    Attributes:
        two_tower: Its item and user vectors of the day (the embeddings step's model).
        ranker: The ranker.
        sasrec: SASRec candidates; None without a SASRec artifact (two-tower only).
        sequencer: The SASRec the ranker was trained with (its score is a ranker input), None
            for a ranker without one; it may differ from ``sasrec`` (the champion).
    """

    two_tower: Artifact
    ranker: Artifact
    sasrec: Artifact | None
    sequencer: Artifact | None


def scoring_models(ctx: ScoreContext, items: D.ItemTable) -> ScoringModels:
    """Every artifact of fused scoring: the members of the run's model bundle. The bundle's
    SASRec (when it has one) is both a candidate source and the ranker's sequence input, as in
    :func:`step_retrieve` and :func:`step_rank`."""
    tt = resolve(ctx, "two_tower", ctx.two_tower_version, items)
    rk = resolve(ctx, "ranker", ctx.ranker_version, items)
    sas = None
    if ctx.bundle.sasrec is not None:
        sas = resolve(ctx, "sasrec", ctx.sasrec_version, items)
    else:
        log.warning("bundle %s has no SASRec: no SASRec candidates", ctx.bundle.bundle_id)
    return ScoringModels(two_tower=tt, ranker=rk, sasrec=sas, sequencer=sas)


def popularity_set(ctx: ScoreContext, users: DataFrame, n: int) -> DataFrame:
    """Most popular unseen items per user: ``score`` = train interactions / the maximum."""
    top = ctx.split(FEATURES_ITEM_FEATURES).agg(F.max(Col.N_INTERACTIONS)).first()
    peak = float(max(1, int(top[0] or 0))) if top is not None else 1.0
    ones = users.select(Col.USER_ID, F.array(F.lit(1.0).cast("float")).alias(Col.EMBEDDING))
    rec = retrieve_spark(ones, popularity_items(ctx), n, seen_pairs(ctx))
    return rec.select(
        Col.USER_ID,
        F.col(Col.CANDIDATE_RANK).alias(Col.RANK),
        Col.ITEM_ID,
        (F.col(Col.RETRIEVAL_SCORE) / F.lit(peak)).cast("float").alias(Col.SCORE),
        F.lit(POPULAR).alias(Col.SOURCE),
        F.lit(0).cast("long").alias(BECAUSE),
        F.lit(RecSet.POPULARITY).alias(Col.REC_SET),
        F.lit("popularity-" + ctx.ds.isoformat()).alias(Col.MODEL_VERSION),
    )


def step_publish(ctx: ScoreContext) -> dict[str, int]:
    """Copy day ds of ``serve.ranked`` to ``serve.recommendations`` in one Delta commit, then
    record the day as complete (``ops.completed_runs``, pipeline ``recsys_daily``): the last
    write of a daily run, so apps and consumers that read only completed days see it from then
    on. In ``recsys_daily`` this runs only after the staged day passed the data-quality checks.
    """
    from recsys.warehouse.completion import RECSYS_DAILY_TABLES, Pipeline, record_completion

    staged = ctx.day(SERVE_RANKED)
    if staged.limit(1).count() == 0:
        raise ValueError(f"{SERVE_RANKED}: no rows for ds={ctx.ds}: run the rank step")
    schema = ctx.spark.table(SERVE_RECOMMENDATIONS.qualified_name).schema
    started = time.perf_counter()
    replace_partition(
        staged.select(*[f.name for f in schema.fields]), SERVE_RECOMMENDATIONS, ctx.ds
    )
    rows = ctx.day(SERVE_RECOMMENDATIONS).count()
    log.info(
        "%s: %d rows for ds=%s in %.1f s",
        SERVE_RECOMMENDATIONS,
        rows,
        ctx.ds,
        time.perf_counter() - started,
    )
    record_completion(ctx.spark, Pipeline.RECSYS_DAILY, ctx.ds, ctx.run_id, RECSYS_DAILY_TABLES)
    return {str(SERVE_RECOMMENDATIONS): rows}


def counts_summary(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items())
