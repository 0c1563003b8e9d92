"""Train one model on the feature tables of one (ds, split_id) and save it as an artifact.

Usage::

    python -m jobs.train --model two_tower|sasrec|ranker --ds 2026-11-28
        [--split-id leave_last_out] [--epochs N] [--patience P] [--seed S] [--lr LR]
        [--batch-size B] [--artifacts-dir DIR]
        [--max-len L] [--dropout P] [--sasrec-events all|positive]
        [--sasrec-targets all|positive]   # SASRec only
        [--ranker-sasrec on|off] [--ranker-covisit on|off]   # ranker only
        [--validation-users 10000]
        [--max-seconds S]   # wall-clock training budget; stops after the batch that crosses it
        [--train-users N]   # two-tower, SASRec: train on a seeded sample of N users

Reads ``features.*`` of ``(ds, split_id)``, streams training rows through petastorm, trains on
CUDA when present (else CPU) with early stopping on the validation NDCG@10 of a seeded sample of
``--validation-users`` users (:mod:`recsys.training.samples`; the ranker also trains on that
sample's validation labels; ``--train-users`` streams only a seeded training sample's rows to
the two-tower model and SASRec, drawn independently of the validation sample), and writes
``<artifacts-dir>/<model>/<version>/`` (default ``<warehouse_root>/_models``). The ranker needs a
two-tower artifact of the same features (its retrieval score is a ranker input): train
``two_tower`` first; with ``--ranker-sasrec on`` it also reads the latest SASRec artifact (its
candidates join the pool and its next-item log-probability is an input); ``--ranker-covisit on``
adds the co-visitation score (:mod:`recsys.training.covisit`) as an input. A trained ranker also
writes its model bundle (``bundles/<id>.json``, :mod:`recsys.training.bundle`): the two-tower,
SASRec and co-visitation settings it was trained against, the unit that evaluation judges, the
gate promotes and scoring serves. Exits 2 on bad arguments or missing inputs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import torch

from jobs import common
from recsys.models.device import pick_device
from recsys.models.sasrec import SequentialRecommender
from recsys.models.two_tower import TwoTower
from recsys.training import samples as S
from recsys.training.artifacts import Artifact, latest_artifact, save_artifact
from recsys.training.bundle import ModelBundle, RankerInputs
from recsys.training.covisit import CovisitConfig
from recsys.training.covisit_spark import stored_settings
from recsys.training.loops import (
    MODEL_NAMES,
    ModelName,
    TrainConfig,
    load_model_as,
)
from recsys.training.registry import artifacts_root
from recsys.training.trainers import (
    Trained,
    load_split,
    train_ranker,
    train_sasrec,
    train_two_tower,
)
from recsys.warehouse.session import build_spark

log = logging.getLogger("jobs.train")

#: Per model: (max epochs, early-stopping patience, learning rate). SASRec with full softmax
#: needs many epochs on small data (Klenitskiy & Vasilev, RecSys 2023); early stopping on
#: validation NDCG@10 ends it, and its validation is noisy enough to want a long patience.
DEFAULTS: dict[str, tuple[int, int, float]] = {
    "two_tower": (20, 3, 1e-3),
    "sasrec": (200, 10, 2e-3),
    "ranker": (60, 8, 1e-3),
}
SASREC_MAX_LEN = 200
SASREC_DROPOUT = 0.4
SASREC_EVENTS = "all"
SASREC_TARGETS = "all"
RANKER_SASREC = "on"
RANKER_COVISIT = "on"


@dataclass(frozen=True, slots=True)
class TrainJobConfig:
    """One training run, validated at the edge."""

    model: ModelName
    ds: date
    split_id: str
    train: TrainConfig
    artifacts_dir: Path | None
    ranker_sasrec: bool = False
    ranker_covisit: bool = False
    validation_users: int = S.VALIDATION_USERS

    def __post_init__(self) -> None:
        S.check_sample_size("validation_users", self.validation_users)
        if self.model not in MODEL_NAMES:
            raise ValueError(f"model: expected one of {MODEL_NAMES}, got {self.model!r}")
        if not self.split_id or not self.split_id.replace("_", "").isalnum():
            raise ValueError(f"split_id: expected an identifier, got {self.split_id!r}")


def parse_args(argv: Sequence[str] | None) -> TrainJobConfig:
    """Command line -> :class:`TrainJobConfig` (ValueError on bad values)."""
    p = argparse.ArgumentParser(prog="jobs.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, choices=MODEL_NAMES)
    p.add_argument("--ds", type=date.fromisoformat, default=datetime.now(UTC).date())
    p.add_argument("--split-id", default="leave_last_out")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--patience", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--artifacts-dir", type=Path, default=None)
    p.add_argument("--max-len", type=int, default=SASREC_MAX_LEN, help="SASRec window")
    p.add_argument("--dropout", type=float, default=SASREC_DROPOUT, help="SASRec dropout")
    switches = (  # (flag, its two values, default, help)
        ("--sasrec-events", ("all", "positive"), SASREC_EVENTS, "SASRec input sequences: "
         "every interaction, or positives only"),
        ("--sasrec-targets", ("all", "positive"), SASREC_TARGETS, "SASRec training targets: "
         "every next event, or positive next events only"),
        ("--ranker-sasrec", ("on", "off"), RANKER_SASREC, "ranker: also rank SASRec's "
         "candidates, with its score as an input"),
        ("--ranker-covisit", ("on", "off"), RANKER_COVISIT, "ranker: the co-visitation score "
         "of the user's recent events as an input"),
    )  # fmt: skip
    for flag, choices, default, text in switches:
        p.add_argument(flag, choices=choices, default=default, help=text)
    p.add_argument(
        "--validation-users",
        type=int,
        default=S.VALIDATION_USERS,
        help="users in the seeded validation sample (early stopping; the ranker's training "
        "users); every user when the split has fewer",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="wall-clock training budget in seconds: the batch that crosses it ends training "
        "(best validation epoch kept; the artifact records stopped=budget)",
    )
    p.add_argument(
        "--train-users",
        type=int,
        default=None,
        help="two-tower, SASRec: train on the rows of a seeded sample of this many users "
        "(default: every user; the ranker trains on the validation sample)",
    )
    a = p.parse_args(argv)
    epochs, patience, lr = DEFAULTS[a.model]
    train = TrainConfig(
        epochs=epochs if a.epochs is None else a.epochs,
        patience=patience if a.patience is None else a.patience,
        seed=a.seed,
        lr=a.lr or lr,
        batch_size=a.batch_size,
        max_len=a.max_len,
        dropout=a.dropout,
        positives_only=a.sasrec_events == "positive",
        positive_targets=a.sasrec_targets == "positive",
        max_seconds=a.max_seconds,
        train_users=a.train_users,
    )
    return TrainJobConfig(
        a.model,
        a.ds,
        a.split_id,
        train,
        a.artifacts_dir,
        a.ranker_sasrec == "on",
        a.ranker_covisit == "on",
        a.validation_users,
    )


def run(config: TrainJobConfig, warehouse_root: str) -> Artifact:
    """Train and save; returns the new artifact."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    root = artifacts_root(config.artifacts_dir, warehouse_root)
    device = pick_device()
    spark = build_spark(app_name="train-" + config.model)
    split = load_split(
        spark,
        config.ds,
        config.split_id,
        config.train.history_len,
        sample_size=config.validation_users,
    )
    log.info(
        "%s on %s: %d items, %d users (%d in the validation sample), ds=%s split_id=%s",
        config.model,
        device,
        split.items.n_items,
        split.n_users,
        len(split.sample.ids),
        config.ds,
        config.split_id,
    )
    trained: Trained
    extra: dict[str, object] = {}
    if config.model == "two_tower":
        trained = train_two_tower(spark, split, config.train, warehouse_root, device)
    elif config.model == "sasrec":
        trained = train_sasrec(spark, split, config.train, warehouse_root, device)
    else:
        art = latest_artifact(root, "two_tower")
        if art is None:
            raise FileNotFoundError(f"no two_tower artifact under {root}: train it first")
        retriever = load_model_as(art, split, TwoTower)
        sequencer: SequentialRecommender | None = None
        seq_version: str | None = None
        if config.ranker_sasrec:
            seq_art = latest_artifact(root, "sasrec")
            if seq_art is None:
                raise FileNotFoundError(f"no sasrec artifact under {root}: train it first")
            sequencer = load_model_as(seq_art, split, SequentialRecommender)
            seq_version = seq_art.version
        covisit = None
        if config.ranker_covisit:
            # The top_n the features job stored features.covisit with (the default without it).
            stored = stored_settings(spark, config.ds, config.split_id)
            covisit = CovisitConfig() if stored is None else CovisitConfig(top_n=stored[2])
        # What the ranker is trained against: recorded in its manifest, and its bundle's members.
        extra.update(RankerInputs(art.version, seq_version, covisit).as_extra())
        trained = train_ranker(
            spark,
            split,
            config.train,
            warehouse_root,
            device,
            retriever,
            sequencer=sequencer,
            covisit=covisit,
        )
    res = trained.result
    extra.update(
        seed=config.train.seed,
        best_epoch=res.best_epoch,
        epochs_run=len(res.history),
        stopped=res.stopped,
        train_seconds=round(res.seconds, 1),
        device=str(device),
        train_config={k: getattr(config.train, k) for k in config.train.__dataclass_fields__},
        history=[{"epoch": e.epoch, "loss": e.loss, **e.metrics} for e in res.history],
    )
    artifact = save_artifact(
        root,
        trained.name,
        {k: v.detach().cpu() for k, v in trained.model.state_dict().items()},
        config=trained.config,
        feature_spec=split.feature_spec(),
        metrics=res.metrics,
        data_versions=split.versions,
        extra=extra,
    )
    if artifact.model_name == "ranker":
        # The promotable unit: this ranker with the two-tower, SASRec and co-visitation settings
        # it was trained against (evaluated, promoted and served together).
        bundle = ModelBundle.from_ranker(root, artifact)
        log.info("model bundle %s -> %s", bundle.bundle_id, bundle.save(root))
    log.info(
        "%s: best epoch %d, val %s, %.1f s -> %s",
        trained.name,
        res.best_epoch,
        dict(res.metrics),
        res.seconds,
        artifact.path,
    )
    return artifact


main = common.job_main(
    "train",
    parse_args,
    common.on_warehouse(run),
    exits=(((FileNotFoundError, ValueError), 2),),
    log_done=True,
)


if __name__ == "__main__":
    sys.exit(main())
