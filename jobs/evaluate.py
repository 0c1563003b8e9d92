"""Offline full-ranking evaluation of baselines and trained models on one split's test role.

Usage::

    python -m jobs.evaluate --ds 2026-11-28 [--split-id leave_last_out]
        [--models popularity,als,two_tower,sasrec,two_tower+ranker] [--artifacts-dir DIR]
        [--als-max-iter 10] [--als-grid full|one] [--eval-users 100000] [--bundle ID]

Evaluation reads a seeded sample of ``--eval-users`` users (the smallest ``xxhash64`` of the user
id: the same users on every run; every user when the split has fewer, as ml-latest-small does;
:mod:`recsys.training.samples`). For every sampled test user, each model scores the whole
catalogue in blocks of users, the user's known items (train and validation interactions) are
removed and the top 100 kept. Metrics come from
:func:`recsys.evaluation.evaluate` overall and on three slices (``cold_items``: test positives
that are cold items; ``light_users`` / ``heavy_users``: train interactions at most / above the
median). Rows replace those of the same ``ds``, split and models in ``eval.offline_metrics`` in
one Delta commit (other models' rows stay), and the summary table is printed. Popularity and
ALS are fitted here (ALS tuned on validation NDCG@10); neural models are the members of one
model bundle (:mod:`recsys.training.bundle`) under ``--artifacts-dir`` (default
``<warehouse_root>/_models``): ``--bundle``, else the newest (the last ranker training's), loaded
once per run; refused when their feature spec differs or the bundle does not hold together.
``two_tower+ranker`` is the bundle as it serves (its ``model_version`` is the bundle id, which
``jobs/promote.py`` promotes): the bundle's two-tower; with a SASRec, the two-tower and SASRec
top candidates merged and SASRec's score as an input; with co-visitation settings, the
co-visitation score as an input. Before any ranker is trained, ``two_tower`` and ``sasrec`` are
the latest artifacts.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import common
from recsys.evaluation import ItemSlice, MetricRow, UserSlice, evaluate, ndcg_per_user
from recsys.evaluation.uncertainty import paired_ratio, standard_error
from recsys.models.device import pick_device
from recsys.models.ranker import InteractionRanker
from recsys.models.sasrec import SequentialRecommender
from recsys.models.two_tower import TwoTower
from recsys.scoring.ranking import COLD_SLOTS
from recsys.settings import load_settings
from recsys.training import data as D
from recsys.training import samples as S
from recsys.training.artifacts import Artifact, latest_artifact
from recsys.training.baselines import ALS_GRID, als_train_positives, tune_als
from recsys.training.blocks import EvalTask, drop_known, in_blocks, ranked, top_k_fast, user_block
from recsys.training.bundle import ModelBundle, check_bundle_id
from recsys.training.inference import (
    covisit_scores_spark,
    merged_pool,
    ndcg_at,
    recs_frame,
    rerank,
    reserve_cold,
    sasrec_scores,
    sequence_scores,
    two_tower_scorer,
)
from recsys.training.loops import load_model_as
from recsys.training.registry import artifacts_root
from recsys.training.trainers import SplitData, load_split
from recsys.warehouse.io import replace_rows
from recsys.warehouse.session import build_spark
from recsys.warehouse.tables import EVAL_OFFLINE_METRICS, Col

log = logging.getLogger("jobs.evaluate")

MODELS = ("popularity", "als", "two_tower", "sasrec", "two_tower+ranker")
#: The models whose versions come from the judged model bundle.
BUNDLE_MODELS = ("two_tower", "sasrec", "two_tower+ranker")
TOP_K = 100
RERANK_POOL = 200
#: (column title, metric, k, slice) of the printed table.
SUMMARY = (
    ("NDCG@10", "ndcg", 10, "all"),
    ("Recall@10", "recall", 10, "all"),
    ("Recall@100", "recall", 100, "all"),
    ("MAP@10", "map", 10, "all"),
    ("HitRate@10", "hit_rate", 10, "all"),
    ("MRR", "mrr", 100, "all"),
    ("cov@100", "catalog_coverage", 100, "all"),
    ("novelty@10", "novelty", 10, "all"),
    ("gini@100", "gini", 100, "all"),
    ("coldR@100", "recall", 100, "cold_items"),
)
#: Baselines every model's NDCG@10 is divided by in the printed table (when evaluated).
BASELINES = ("als", "popularity")


@dataclass(frozen=True, slots=True)
class EvalJobConfig:
    """One evaluation run, validated at the edge."""

    ds: date
    split_id: str
    models: tuple[str, ...]
    artifacts_dir: Path | None = None
    als_max_iter: int = 10
    als_grid: str = "full"
    eval_users: int = S.EVAL_USERS
    bundle: str | None = None

    def __post_init__(self) -> None:
        S.check_sample_size("eval_users", self.eval_users)
        if self.bundle is not None:
            check_bundle_id("bundle", self.bundle)
        bad = [m for m in self.models if m not in MODELS]
        if bad or not self.models:
            raise ValueError(f"models: expected a subset of {MODELS}, got {self.models!r}")
        if self.als_grid not in ("full", "one"):
            raise ValueError(f"als_grid: expected 'full' or 'one', got {self.als_grid!r}")
        if self.als_max_iter < 1:
            raise ValueError(f"als_max_iter: must be >= 1, got {self.als_max_iter!r}")


def parse_args(argv: Sequence[str] | None) -> EvalJobConfig:
    """Command line -> :class:`EvalJobConfig` (ValueError on bad values)."""
    p = common.job_parser("jobs.evaluate", __doc__)
    common.add_ds(p)
    p.add_argument("--split-id", default="leave_last_out")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--artifacts-dir", type=Path, default=None)
    common.add_fields(
        p,
        EvalJobConfig,
        {
            "als_max_iter": None,
            "als_grid": "full (8 points) or one (rank 64 only)",
            "eval_users": "users in the seeded evaluation sample (every user when the split has "
            "fewer)",
        },
    )
    p.add_argument(
        "--bundle",
        default=None,
        help="model bundle id to judge (default: the newest, written by the last ranker training)",
    )
    a = p.parse_args(argv)
    models = tuple(m.strip() for m in a.models.split(",") if m.strip())
    return common.config_from(a, EvalJobConfig, models=models)


def popularity_vector(spark: SparkSession, split: SplitData) -> torch.Tensor:
    """``(n_items + 1,)`` float64 popularity scores (distinct train users per item, counted in
    Spark; as :func:`recsys.training.baselines.popularity_scores`), column 0 ``-inf``."""
    counts = S.train_item_counts(
        spark, split.ds, split.split_id, positives_only=True, distinct_users=True
    )
    scores = torch.zeros(split.items.n_items + 1, dtype=torch.float64)
    for item, n in zip(counts[Col.ITEM_ID], counts[Col.N_INTERACTIONS], strict=True):
        if int(item) in split.index_of:
            scores[split.index_of[int(item)]] = float(n)
    scores[0] = float("-inf")
    return scores


def _model_scores(
    name: str,
    split: SplitData,
    task: EvalTask,
    config: EvalJobConfig,
    root: Path,
    spark: SparkSession,
    bundle: ModelBundle | None = None,
) -> tuple[torch.Tensor, str]:
    """Top-K item indices ``(U, K)`` of one model (known items removed: 0 entries), scored in
    blocks of users, and its version string (the bundle id for ``two_tower+ranker``).

    ``bundle``: the challenger bundle whose members are judged (:func:`challenger_bundle`);
    without one (no ranker trained yet) ``two_tower`` and ``sasrec`` are the latest artifacts.
    """
    device = pick_device()
    n_items = split.items.n_items

    @functools.cache
    def test_input(positives_only: bool) -> dict[int, list[int]]:
        """Each sampled user's train + validation events, oldest first: what the test role
        reads."""
        return D.event_sequences(
            split.sample_pairs, (D.TRAIN, D.VALIDATION), split.index_of, positives_only
        )

    if name == "popularity":
        pop = popularity_vector(spark, split).float()
        top = ranked(task, n_items, lambda ids: pop.expand(len(ids), -1), TOP_K)
        return top, f"popularity-{split.ds}"
    if name == "als":
        # Fitted in Spark on every train positive; only the sample's and the items' factors
        # are collected, and the sample is ranked in blocks like every other model.
        val = split.eval_task(D.VALIDATION)
        grid = ALS_GRID if config.als_grid == "full" else ((64, 0.1, 40.0),)
        best, _ = tune_als(
            als_train_positives(spark, split.ds, split.split_id),
            n_items,
            split.sample.frame,
            lambda f: ndcg_at(ranked(val, n_items, f.scores, 10), val.targets),
            grid=grid,
            max_iter=config.als_max_iter,
        )
        c = best.config
        version = f"als-r{c.rank}-reg{c.reg_param:g}-a{c.alpha:g}-{split.ds}"
        return ranked(task, n_items, best.scores, TOP_K), version
    if name == "sasrec":
        art = _member(root, bundle, "sasrec")
        model = load_model_as(art, split, SequentialRecommender).to(device)
        seqs = test_input(model.config.positives_only)
        top = ranked(task, n_items, lambda ids: sasrec_scores(model, seqs, ids, device), TOP_K)
        return top, art.version
    # The pipeline is the bundle's: its ranker with the two-tower and SASRec it was trained with.
    tower_art = _member(root, bundle, "two_tower")
    tower = load_model_as(tower_art, split, TwoTower).to(device)
    tower_scores = two_tower_scorer(tower, split.users, split.items, device)
    if name == "two_tower":
        return ranked(task, n_items, tower_scores, TOP_K), tower_art.version
    if bundle is None:
        raise FileNotFoundError(f"no ranker artifact under {root}: no model bundle to judge")
    rank_art = bundle.artifact(root, "ranker")
    ranker = load_model_as(rank_art, split, InteractionRanker).to(device)
    seq_version = bundle.sasrec
    cov = None
    if bundle.covisit is not None:
        # The stored matrix (features.covisit, as training and serving read it); votes from
        # the evaluated users' last train + validation events, collected for them only.
        config_c = bundle.covisit
        cov = covisit_scores_spark(
            spark,
            split.ds,
            split.split_id,
            split.items,
            split.users,
            (D.TRAIN, D.VALIDATION),
            config_c,
            task.users,
        )
    seq = None
    version = bundle.bundle_id
    if seq_version is not None:
        # A ranker trained with SASRec ranks what serving gives it: both retrievers'
        # candidates, with SASRec's next-item log-probability (of the train + validation
        # sequence) as input.
        seq_art = bundle.artifact(root, "sasrec")
        seq_model = load_model_as(seq_art, split, SequentialRecommender)
        seq_input = test_input(seq_model.config.positives_only)
        seq = sequence_scores(seq_model.to(device), seq_input, split.users, device)

    def pipeline(start: int, stop: int) -> tuple[torch.Tensor, ...]:
        ids, mask = task.users[start:stop], task.mask(start, stop, n_items)
        retrieval = tower_scores(ids)
        if seq is None:
            pool = top_k_fast(retrieval, mask, RERANK_POOL)
        else:
            rows = split.users.row_of(np.asarray(ids))
            pool = merged_pool(retrieval, seq.matrix(rows), mask, RERANK_POOL)
        ordered = rerank(
            ranker,
            split.users,
            split.items,
            ids,
            pool,
            retrieval.gather(1, pool),
            device,
            seq,
            cov,
        )
        top = reserve_cold(ordered, split.items.is_cold, TOP_K, COLD_SLOTS)
        return (drop_known(top, mask),)

    return in_blocks(len(task.users), user_block(n_items), pipeline)[0], version


def _member(root: Path, bundle: ModelBundle | None, name: str) -> Artifact:
    """The bundle's ``name`` artifact; the latest one when there is no bundle or it has no
    such member (a SASRec evaluated alone beside a bundle without SASRec)."""
    if bundle is not None and bundle.version_of(name) is not None:
        return bundle.artifact(root, name)
    art = latest_artifact(root, name)
    if art is None:
        raise FileNotFoundError(f"no {name} artifact under {root}")
    return art


def challenger_bundle(root: Path, bundle_id: str | None) -> ModelBundle | None:
    """The bundle to judge: ``bundle_id``, else the newest (the one the last ranker training
    wrote); None when no ranker was trained yet. Loaded once per run, so every row of the run
    judges the same versions.

    Raises:
        FileNotFoundError, BundleMismatchError: ``bundle_id`` is missing or does not hold
            together; the newest bundle does not hold together.
    """
    if bundle_id is not None:
        return ModelBundle.load(root, bundle_id)
    if latest_artifact(root, "ranker") is None:
        return None
    return ModelBundle.latest(root)


def evaluation_inputs(spark: SparkSession, split: SplitData) -> dict[str, object]:
    """Catalogue, train counts (distinct users per item), train user count and the slices.

    Counts and the median train interactions per user are aggregated over the whole split in
    Spark; the light/heavy slices hold the sampled users on either side of that median.
    """
    counts = S.train_item_counts(
        spark, split.ds, split.split_id, positives_only=False, distinct_users=True
    )
    stats = S.train_user_stats(spark, split.ds, split.split_id)
    train = split.sample_pairs[split.sample_pairs[Col.ROLE] == D.TRAIN]
    per_user = train.groupby(Col.USER_ID).size()
    cold = split.items.item_ids[split.items.is_cold].tolist()
    return {
        "catalog": pd.DataFrame({Col.ITEM_ID: split.items.item_ids[1:].numpy()}),
        "train_counts": counts,
        "n_train_users": max(1, stats.n_users),
        "slices": {
            "cold_items": ItemSlice(set(cold)),
            "light_users": UserSlice(set(per_user[per_user <= stats.median].index.tolist())),
            "heavy_users": UserSlice(set(per_user[per_user > stats.median].index.tolist())),
        },
    }


def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows = models, columns = :data:`SUMMARY` metrics."""
    out = {}
    for title, metric, k, sl in SUMMARY:
        sel = rows[(rows[Col.METRIC] == metric) & (rows[Col.K] == k) & (rows[Col.SLICE] == sl)]
        out[title] = sel.set_index(Col.MODEL_NAME)[Col.VALUE]
    return pd.DataFrame(out).reindex(list(dict.fromkeys(rows[Col.MODEL_NAME])))


def comparison_table(per_user: Mapping[str, npt.NDArray[np.float64]]) -> pd.DataFrame:
    """Rows = models: NDCG@10's standard error and its ratio to each evaluated baseline with a
    95% paired bootstrap interval (``x als``, ``lo``, ``hi``; users resampled in pairs, seeded).

    ``per_user``: per model, NDCG@10 of every test user, the same users in the same order.
    """
    out: dict[str, dict[str, float]] = {}
    for name, values in per_user.items():
        row = {"NDCG@10 se": standard_error(values)}
        for base in BASELINES:
            if base in per_user and base != name:
                r = paired_ratio(values, per_user[base])
                row |= {f"x {base}": r.ratio, f"x {base} lo": r.low, f"x {base} hi": r.high}
        out[name] = row
    return pd.DataFrame.from_dict(out, orient="index")


def run(config: EvalJobConfig, warehouse_root: str) -> pd.DataFrame:
    """Evaluate, write the rows, return the summary table."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    spark = build_spark(app_name="evaluate")
    split = load_split(
        spark, config.ds, config.split_id, history_len=50, sample_size=config.eval_users
    )
    root = artifacts_root(config.artifacts_dir, warehouse_root)
    task = split.eval_task(D.TEST)
    users, truth = task.users, task.truth
    inputs = evaluation_inputs(spark, split)
    run_id, now = str(uuid.uuid4()), datetime.now(UTC).replace(tzinfo=None)
    data_version = json.dumps(split.versions, sort_keys=True)
    records: list[dict[str, object]] = []
    per_user: dict[str, npt.NDArray[np.float64]] = {}
    bundle = None
    if set(config.models) & set(BUNDLE_MODELS):
        bundle = challenger_bundle(root, config.bundle)
        if bundle is not None:
            log.info("judging model bundle %s", bundle.bundle_id)
    for name in config.models:
        started = time.perf_counter()
        top, version = _model_scores(name, split, task, config, root, spark, bundle)
        recs = recs_frame(users, top, split.items)
        metric_rows: list[MetricRow] = evaluate(recs, truth, ks=(10, TOP_K), **inputs)  # type: ignore[arg-type]
        per_user[name] = ndcg_per_user(recs, truth, 10).to_numpy()
        for r in metric_rows:
            records.append(
                {
                    Col.MODEL_NAME: name,
                    Col.MODEL_VERSION: version,
                    Col.SPLIT_ID: config.split_id,
                    Col.DATA_VERSION: data_version,
                    Col.SLICE: r.slice,
                    Col.METRIC: str(r.metric.value),
                    Col.K: int(r.k),
                    Col.VALUE: float(r.value),
                    Col.N_USERS: int(r.n_users),
                    Col.RUN_ID: run_id,
                    Col.EVALUATED_AT: now,
                    Col.DS: config.ds,
                }
            )
        log.info(
            "%s (%s): %d sampled test users (of %d users) in %.1f s",
            name,
            version,
            len(users),
            split.n_users,
            time.perf_counter() - started,
        )
    rows = pd.DataFrame.from_records(records)
    schema = spark.table(EVAL_OFFLINE_METRICS.qualified_name).schema
    df = spark.createDataFrame(rows)
    df = df.select(*[F.col(f.name).cast(f.dataType) for f in schema.fields])
    # Only this run's models of (ds, split): evaluating one model keeps the others' rows.
    replace_rows(
        df,
        EVAL_OFFLINE_METRICS,
        (F.col(Col.DS) == F.lit(config.ds))
        & (F.col(Col.SPLIT_ID) == F.lit(config.split_id))
        & F.col(Col.MODEL_NAME).isin(list(config.models)),
    )
    log.info("%s: %d rows for ds=%s (run %s)", EVAL_OFFLINE_METRICS, len(rows), config.ds, run_id)
    return summary_table(rows).join(comparison_table(per_user))


def _evaluate(job: common.Job[EvalJobConfig]) -> int:
    table = run(job.config, load_settings().warehouse_root)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(4).to_string())
    return 0


main = common.job_main(
    "evaluate", parse_args, _evaluate, exits=(((FileNotFoundError, ValueError), 2),)
)


if __name__ == "__main__":
    sys.exit(main())
