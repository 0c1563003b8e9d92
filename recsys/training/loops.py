"""Seeded training loops with per-epoch validation NDCG@10 and early stopping.

:func:`fit` is the shared loop: one optimiser step per batch, one log line per epoch (mean loss,
validation NDCG@10, seconds), and early stopping after ``patience`` epochs without a better
validation NDCG@10; the best epoch's weights are restored. The three model-specific trainers
(:mod:`recsys.training.trainers`) feed it petastorm batches and a validation function.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from recsys.models.ranker import InteractionRanker, RankerConfig
from recsys.models.sasrec import SASRecConfig, SequentialRecommender
from recsys.models.two_tower import TwoTower, TwoTowerConfig
from recsys.validation import check_ints

if TYPE_CHECKING:
    from recsys.training.artifacts import Artifact

log = logging.getLogger(__name__)

ModelName = Literal["two_tower", "sasrec", "ranker"]
MODEL_NAMES: tuple[ModelName, ...] = ("two_tower", "sasrec", "ranker")
NDCG10 = "ndcg@10"
ModuleT = TypeVar("ModuleT", bound=nn.Module)


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Training knobs shared by the three models, validated at construction.

    Attributes:
        epochs: Maximum epochs, >= 1.
        patience: Stop after this many epochs without a better validation NDCG@10, >= 1.
        seed: Seeds python, numpy and torch, and the data order.
        lr: Adam learning rate, > 0.
        weight_decay: AdamW weight decay, >= 0.
        batch_size: Rows per batch; None for :func:`recsys.models.device.batch_size_for`.
        history_len: Two-tower history items per user, >= 1.
        max_len: SASRec sequence length, >= 2.
        candidates: Two-tower candidates the ranker re-ranks in validation, >= 10.
        dropout: SASRec dropout, in [0, 1).
        positives_only: SASRec input events: positives only, or every interaction (see
            :class:`recsys.models.sasrec.SASRecConfig`).
        positive_targets: SASRec targets: only positive next events teach (the others are
            still inputs when ``positives_only`` is False), or every next event.
        max_seconds: Wall-clock budget of :func:`fit` in seconds (> 0), counted from its
            start, validation included; None for no budget. The batch that crosses it is the
            last one: that (possibly partial) epoch is validated and training stops.
        train_users: Two-tower and SASRec train on the rows of a seeded sample of this many
            users (:func:`recsys.training.samples.training_users`, an int >= 1); None trains
            on every user. The ranker ignores it: it trains on the validation sample.
    """

    epochs: int = 20
    patience: int = 3
    seed: int = 0
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int | None = None
    history_len: int = 50
    max_len: int = 50
    candidates: int = 200
    dropout: float = 0.2
    positives_only: bool = True
    positive_targets: bool = False
    max_seconds: float | None = None
    train_users: int | None = None

    def __post_init__(self) -> None:
        check_ints(
            self, {"epochs": 1, "patience": 1, "history_len": 1, "max_len": 2, "candidates": 10}
        )
        if self.batch_size is not None and (
            not isinstance(self.batch_size, int) or self.batch_size < 1
        ):
            raise ValueError(f"batch_size: must be None or an int >= 1, got {self.batch_size!r}")
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr: must be a finite float > 0, got {self.lr!r}")
        if not (isinstance(self.weight_decay, int | float) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay!r}")
        if not (isinstance(self.dropout, int | float) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout: must be in [0, 1), got {self.dropout!r}")
        for flag in ("positives_only", "positive_targets"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag}: must be a bool, got {getattr(self, flag)!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed: must be an int, got {self.seed!r}")
        budget = self.max_seconds
        if budget is not None and not (
            isinstance(budget, int | float)
            and not isinstance(budget, bool)
            and math.isfinite(budget)
            and budget > 0
        ):
            raise ValueError(f"max_seconds: must be None or a finite number > 0, got {budget!r}")
        users = self.train_users
        if users is not None and (
            not isinstance(users, int) or isinstance(users, bool) or users < 1
        ):
            raise ValueError(f"train_users: must be None or an int >= 1, got {users!r}")


@dataclass(frozen=True)
class EpochLog:
    """One epoch: mean training loss, validation metrics and wall seconds."""

    epoch: int
    loss: float
    metrics: Mapping[str, float]
    seconds: float


StopReason = Literal["epochs", "early_stop", "budget"]


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns: the best epoch, its validation metrics and every epoch's log.

    ``stopped`` says why training ended: ``"epochs"`` (all ran), ``"early_stop"`` (patience
    ran out) or ``"budget"`` (``TrainConfig.max_seconds`` was crossed; the last epoch of
    ``history`` may be partial).
    """

    best_epoch: int
    metrics: Mapping[str, float]
    history: list[EpochLog] = field(default_factory=list)
    initial: Mapping[str, float] = field(default_factory=dict)  #: before any training
    stopped: StopReason = "epochs"

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.history)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fit(
    model: nn.Module,
    batches: Callable[[], Iterator[dict[str, Tensor]]],
    loss_fn: Callable[[dict[str, Tensor]], Tensor],
    validate: Callable[[], dict[str, float]],
    config: TrainConfig,
    name: str,
    clock: Callable[[], float] = time.perf_counter,
) -> FitResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch.

    The untrained weights count as epoch 0: an epoch must beat them to be kept (for a ranker
    that starts as its base score's order, training that does not help leaves that order).
    With ``config.max_seconds``, the batch during which the budget (counted from the call,
    initial validation included) runs out ends the epoch: it is validated, kept if best, and
    training stops with ``stopped="budget"``.

    Args:
        model: The module (already on its device).
        batches: Returns one epoch's batches (called once per epoch).
        loss_fn: Scalar loss of one batch (model in train mode).
        validate: Validation metrics, including ``"ndcg@10"`` (model set to eval by it).
        config: Epochs, patience, learning rate.
        name: Model name in log lines.
        clock: Seconds, monotonic (tests pass a fake one).
    """
    start = clock()
    budget = config.max_seconds

    def over_budget() -> bool:
        return budget is not None and clock() - start >= budget

    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best_state: dict[str, Tensor] = copy.deepcopy(model.state_dict())
    initial = validate()
    best = initial[NDCG10]
    best_epoch, best_metrics, bad = 0, initial, 0
    log.info("%s epoch 0: val %s=%.4f (untrained)", name, NDCG10, initial[NDCG10])
    history: list[EpochLog] = []
    stopped: StopReason = "epochs"
    for epoch in range(1, config.epochs + 1):
        started = clock()
        model.train()
        total, n = 0.0, 0
        epoch_batches = batches()
        try:
            for batch in epoch_batches:
                loss = loss_fn(batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                total += float(loss.detach())
                n += 1
                if over_budget():
                    stopped = "budget"
                    break
        finally:
            close = getattr(epoch_batches, "close", None)
            if callable(close):
                close()  # a generator's readers are released now, not at garbage collection
        metrics = validate()
        seconds = clock() - started
        history.append(EpochLog(epoch, total / max(n, 1), metrics, seconds))
        log.info(
            "%s epoch %d: loss %.4f, val %s %.4f, %.1f s",
            name,
            epoch,
            total / max(n, 1),
            NDCG10,
            metrics[NDCG10],
            seconds,
        )
        if metrics[NDCG10] > best:
            best, best_epoch, best_metrics, bad = metrics[NDCG10], epoch, metrics, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if bad >= config.patience and stopped != "budget":
                stopped = "early_stop"
                log.info("%s: early stop after epoch %d (best %d)", name, epoch, best_epoch)
                break
        if stopped == "budget" or (epoch < config.epochs and over_budget()):
            stopped = "budget"
            log.info(
                "%s: time budget of %.0f s spent after %d batches of epoch %d (best %d)",
                name,
                budget,
                n,
                epoch,
                best_epoch,
            )
            break
    model.load_state_dict(best_state)
    return FitResult(best_epoch, dict(best_metrics), history, dict(initial), stopped)


def config_dict(config: Any) -> dict[str, Any]:
    """A model config dataclass as JSON-able dict (tuples become lists)."""
    out: dict[str, Any] = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def as_module(model: nn.Module, kind: type[ModuleT], what: str) -> ModuleT:
    """``model`` typed as ``kind``; ``TypeError`` naming ``what`` (e.g. the artifact) if not."""
    if not isinstance(model, kind):
        raise TypeError(f"{what}: not a {kind.__name__} but a {type(model).__name__}")
    return model


def build_model(name: ModelName, config: Mapping[str, Any]) -> nn.Module:
    """Rebuild a model from its artifact config."""
    kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    if name == "two_tower":
        return TwoTower(TwoTowerConfig(**kw))
    if name == "sasrec":
        return SequentialRecommender(SASRecConfig(**kw))
    if name == "ranker":
        return InteractionRanker(RankerConfig(**kw))
    raise ValueError(f"name: expected one of {MODEL_NAMES}, got {name!r}")


class HasFeatureSpec(Protocol):
    """What a model is loaded against (e.g. :class:`recsys.training.trainers.SplitData`)."""

    def feature_spec(self) -> dict[str, Any]: ...


def load_model(artifact: Artifact, split: HasFeatureSpec) -> nn.Module:
    """Rebuild an artifact's module in eval mode after checking its feature spec against
    ``split`` (:class:`recsys.training.artifacts.FeatureSpecMismatchError` on a mismatch)."""
    from recsys.training.artifacts import check_feature_spec

    check_feature_spec(artifact, split.feature_spec())
    name: ModelName = artifact.model_name  # type: ignore[assignment]
    model = build_model(name, artifact.config)
    model.load_state_dict(artifact.load_state_dict())
    model.eval()
    return model


def load_model_as(artifact: Artifact, split: HasFeatureSpec, kind: type[ModuleT]) -> ModuleT:
    """:func:`load_model`, refusing an artifact whose module is not a ``kind`` (``TypeError``)."""
    what = f"{artifact.model_name} artifact {artifact.version}"
    return as_module(load_model(artifact, split), kind, what)
