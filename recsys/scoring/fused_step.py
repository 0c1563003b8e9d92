"""The fused scoring step of one ds: retrieval and ranking in one pass -> ``serve.ranked``.

``jobs.score retrieve-rank`` (the ``scoring`` task of ``recsys_daily``): every user's two-tower
and SASRec candidates (fallbacks for users without history) are merged and ranked inside one
``mapInArrow`` (:mod:`recsys.scoring.fused_spark`), and only the top ``n`` of the model set and
of the popularity set are written. ``serve.candidates`` gets the merged candidates of a seeded
sample of users only (:func:`recsys.training.samples.sample_users`, ``candidates_sample`` users;
0 writes none), for debugging and analysis. The result equals ``retrieve`` then ``rank`` of
:mod:`recsys.scoring.pipeline` (the two-step path, kept as the reference).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from pyspark.sql import functions as F

from recsys.models.sasrec import SequentialRecommender
from recsys.scoring import pipeline as P
from recsys.scoring.explain import item_labels, with_explanations
from recsys.scoring.fused import SEQUENCE_ALL, SEQUENCE_POSITIVES, SOURCE_CODE, FusedItems
from recsys.scoring.fused_spark import fused_input, fused_spark
from recsys.scoring.rank_inputs import ItemArrays, user_dense_dim
from recsys.scoring.retrieval import collect_items
from recsys.scoring.runtime import ModelPayload, shuffle_slots
from recsys.training import data as D
from recsys.training.artifacts import Artifact
from recsys.training.inference import sasrec_item_vectors, serving_covisit_matrix
from recsys.training.loops import as_module
from recsys.training.samples import sample_users
from recsys.warehouse.tables import (
    FEATURES_INTERACTIONS_SPLIT,
    FEATURES_USER_FEATURES,
    SERVE_CANDIDATES,
    SERVE_RANKED,
    SERVE_USER_EMBEDDINGS,
    Col,
    RecSet,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def check_candidates_sample(value: object) -> int:
    """``value`` as a candidates sample size (an int >= 0); ValueError naming it otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"candidates_sample: must be an int >= 0, got {value!r}")
    return value


def _sequence_column(art: Artifact) -> str:
    # The input the model was trained on (see pipeline.sasrec_sequences).
    return SEQUENCE_POSITIVES if bool(art.config.get("positives_only", True)) else SEQUENCE_ALL


def _items(ctx: P.ScoreContext, arrays: ItemArrays) -> tuple[FusedItems, str]:
    """The fused item inputs and the fallback list's model version."""
    fb_items, fb_source, fb_version = P.fallback_items(ctx)
    # Both lists are bounded by the catalogue: (item_id, [score]) on the driver, broadcast.
    fb_ids, fb_scores = collect_items(fb_items)
    pop_ids, pop_scores = collect_items(P.popularity_items(ctx))
    peak = float(max(1, int(pop_scores.max()))) if len(pop_scores) else 1.0
    fused = FusedItems(
        arrays=arrays,
        fallback_ids=fb_ids,
        fallback_scores=fb_scores,
        fallback_source=SOURCE_CODE[fb_source],
        popularity_ids=pop_ids,
        popularity_scores=pop_scores,
        popularity_peak=peak,
    )
    return fused, fb_version


def step_score(ctx: P.ScoreContext, k: int, n: int, candidates_sample: int) -> dict[str, int]:
    """Ranker top ``n`` (rec_set model) and popularity top ``n`` (rec_set popularity) of every
    user from one pass, plus the merged candidates of ``candidates_sample`` sampled users."""
    candidates_sample = check_candidates_sample(candidates_sample)
    items = D.load_items(ctx.spark, ctx.ds, ctx.split_id)
    models = P.scoring_models(ctx, items)
    tt, rk, sas, seq = models.two_tower, models.ranker, models.sasrec, models.sequencer
    user_emb = P._embeddings(ctx, SERVE_USER_EMBEDDINGS, tt.version)
    arrays = P.item_arrays(ctx, items, tt.version)
    # The bundle id: the two-tower, SASRec and ranker versions that serve together.
    version = ctx.bundle.bundle_id
    sequencer = None
    if seq is not None:
        payload = ModelPayload.from_artifact(seq)
        module = as_module(
            payload.build(torch.device("cpu")), SequentialRecommender, f"sasrec {seq.version}"
        )
        arrays = replace(arrays, sequence=sasrec_item_vectors(module)[1:].numpy())
        sequencer = (payload, _sequence_column(seq))
    cov_config = ctx.bundle.covisit
    if cov_config is not None:
        matrix = serving_covisit_matrix(ctx.spark, ctx.ds, ctx.split_id, items, cov_config)
        arrays = replace(arrays, covisit_matrix=matrix, covisit_config=cov_config)
    retriever = None if sas is None else (ModelPayload.from_artifact(sas), _sequence_column(sas))
    fused_items, fb_version = _items(ctx, arrays)
    ranker = ModelPayload.from_artifact(rk)

    feats = ctx.split(FEATURES_USER_FEATURES)
    everyone = (
        ctx.split(FEATURES_INTERACTIONS_SPLIT)
        .select(Col.USER_ID)
        .unionByName(feats.select(Col.USER_ID))
    )
    columns = {model[1] for model in (retriever, sequencer) if model is not None}
    if cov_config is not None:  # the co-visitation votes: the last events of every kind
        columns.add(SEQUENCE_ALL)

    def frame(users: DataFrame, restrict: bool) -> DataFrame:
        seqs = {
            c: P.event_sequences(ctx, users if restrict else None, c == SEQUENCE_POSITIVES)
            for c in sorted(columns)
        }
        return fused_input(
            users,
            feats.select(Col.USER_ID, Col.DENSE, Col.GENRE_AFFINITY, Col.HISTORY),
            user_emb.select(Col.USER_ID, Col.EMBEDDING),
            P.seen_pairs(ctx),
            seqs,
            dense_dim=user_dense_dim(int(ranker.config["n_dense"]), arrays),
            n_genres=int(arrays.genres.shape[1]),
            dim=int(arrays.embedding.shape[1]),
            partitions=shuffle_slots(ctx.spark),
            restrict=restrict,
        )

    ranked = fused_spark(
        frame(everyone, False), fused_items, ranker, k, n, retriever=retriever, sequencer=sequencer
    )
    pop_version = "popularity-" + ctx.ds.isoformat()
    ranked = ranked.withColumn(
        Col.MODEL_VERSION,
        F.when(F.col(Col.REC_SET) == F.lit(RecSet.MODEL), F.lit(version)).otherwise(
            F.lit(pop_version)
        ),
    )
    ranked = with_explanations(ranked, item_labels(ctx.spark, ctx.ds, ctx.split_id))
    counts = {str(SERVE_RANKED): P._write(ctx, ranked, SERVE_RANKED)}

    if candidates_sample == 0:  # the day holds no candidates of an earlier run either
        cands = ctx.spark.table(SERVE_CANDIDATES.qualified_name).where(F.lit(False))
    else:
        sample = sample_users(everyone, candidates_sample)
        cands = fused_spark(
            frame(sample, True),
            fused_items,
            ranker,
            k,
            n,
            retriever=retriever,
            sequencer=sequencer,
            candidates=True,
        )
        model_version = F.when(F.col(Col.SOURCE) == F.lit("two_tower"), F.lit(tt.version))
        if sas is not None:
            model_version = model_version.when(
                F.col(Col.SOURCE) == F.lit("sasrec"), F.lit(sas.version)
            )
        cands = cands.withColumn(Col.MODEL_VERSION, model_version.otherwise(F.lit(fb_version)))
    counts[str(SERVE_CANDIDATES)] = P._write(ctx, cands, SERVE_CANDIDATES)
    return counts
