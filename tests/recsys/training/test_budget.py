"""fit's wall-clock budget (TrainConfig.max_seconds) on a fake loop with a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor, nn

from recsys.training.loops import NDCG10, FitResult, TrainConfig, fit


class FakeClock:
    """Seconds that move only when the fake loop says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeLoop:
    """A one-weight model; each batch costs ``batch_s``, each validation ``validate_s``.

    ``scores`` are the validation NDCG@10 values returned in order (initial one first).
    """

    def __init__(
        self,
        scores: list[float],
        *,
        n_batches: int = 5,
        batch_s: float = 1.0,
        validate_s: float = 0.0,
    ) -> None:
        torch.manual_seed(0)
        self.model = nn.Linear(1, 1, bias=False)
        self.clock = FakeClock()
        self.scores = list(scores)
        self.n_batches, self.batch_s, self.validate_s = n_batches, batch_s, validate_s
        self.drawn: list[int] = []  # batches drawn per epoch
        self.closed = 0  # epochs whose batch generator was closed
        self.weights: list[float] = []  # weight after each validation

    def batches(self) -> Iterator[dict[str, Tensor]]:
        self.drawn.append(0)
        try:
            for _ in range(self.n_batches):
                self.drawn[-1] += 1
                yield {"x": torch.ones(4, 1)}
        finally:
            self.closed += 1

    def loss_fn(self, batch: dict[str, Tensor]) -> Tensor:
        self.clock.now += self.batch_s
        out: Tensor = (self.model(batch["x"]) - 3.0).pow(2).mean()
        return out

    def validate(self) -> dict[str, float]:
        self.clock.now += self.validate_s
        self.weights.append(float(self.model.weight.detach()))
        return {NDCG10: self.scores.pop(0)}

    def fit(self, config: TrainConfig) -> FitResult:
        return fit(
            self.model, self.batches, self.loss_fn, self.validate, config, "fake", self.clock
        )


def test_budget_crossed_mid_epoch_ends_that_epoch_after_the_crossing_batch() -> None:
    loop = FakeLoop([0.0, 0.1, 0.2, 0.3])
    res = loop.fit(TrainConfig(epochs=10, patience=5, lr=0.1, max_seconds=7.5))
    # Epoch 1: batches end at t = 1..5; epoch 2: t = 6, 7, 8 -> 8 >= 7.5 is the last batch.
    assert loop.drawn == [5, 3]
    assert loop.closed == 2  # the cut epoch's reader was released
    assert res.stopped == "budget"
    assert [e.epoch for e in res.history] == [1, 2]  # the partial epoch was validated
    assert res.best_epoch == 2
    assert res.metrics[NDCG10] == 0.2


def test_budget_keeps_the_best_checkpoint_so_far() -> None:
    loop = FakeLoop([0.0, 0.5, 0.1])
    res = loop.fit(TrainConfig(epochs=10, patience=5, lr=0.1, max_seconds=6.0))
    assert res.stopped == "budget"
    assert loop.drawn == [5, 1]
    assert res.best_epoch == 1
    assert res.metrics[NDCG10] == 0.5
    # Weights are epoch 1's, not those of the later (worse) partial epoch.
    assert float(loop.model.weight.detach()) == loop.weights[1]
    assert loop.weights[2] != loop.weights[1]


def test_budget_crossed_in_validation_stops_before_the_next_epoch() -> None:
    loop = FakeLoop([0.0, 0.1, 0.2], n_batches=2, batch_s=1.0, validate_s=10.0)
    res = loop.fit(TrainConfig(epochs=10, patience=5, lr=0.1, max_seconds=15.0))
    # t: initial validation 10, batches 11, 12 (under 15), validation 22 >= 15 -> stop.
    assert loop.drawn == [2]
    assert res.stopped == "budget"
    assert len(res.history) == 1
    assert res.best_epoch == 1


def test_budget_counts_from_the_call_including_the_initial_validation() -> None:
    loop = FakeLoop([0.0, 0.1], validate_s=20.0)
    res = loop.fit(TrainConfig(epochs=10, patience=5, lr=0.1, max_seconds=5.0))
    assert loop.drawn == [1]  # at least one batch, then the budget (already spent) ends it
    assert res.stopped == "budget"


def test_no_budget_runs_every_epoch_or_stops_early() -> None:
    loop = FakeLoop([0.0, 0.1, 0.2, 0.3])
    res = loop.fit(TrainConfig(epochs=3, patience=5, lr=0.1))
    assert loop.drawn == [5, 5, 5]
    assert res.stopped == "epochs"
    loop = FakeLoop([0.5, 0.1, 0.1, 0.1])
    res = loop.fit(TrainConfig(epochs=10, patience=2, lr=0.1))
    assert loop.drawn == [5, 5]
    assert res.stopped == "early_stop"
    assert res.best_epoch == 0


def test_a_budget_larger_than_the_run_changes_nothing() -> None:
    runs = []
    for budget in (None, 1e6):
        loop = FakeLoop([0.0, 0.1, 0.2, 0.3])
        res = loop.fit(TrainConfig(epochs=3, patience=5, lr=0.1, max_seconds=budget))
        runs.append((loop.drawn, res.stopped, res.best_epoch, loop.weights))
    assert runs[0] == runs[1]
    assert runs[0][1] == "epochs"


def test_the_last_epoch_reports_budget_only_when_its_batches_cross_it() -> None:
    loop = FakeLoop([0.0, 0.1, 0.2], validate_s=10.0)
    res = loop.fit(TrainConfig(epochs=2, patience=5, lr=0.1, max_seconds=29.5))
    # t: 10, batches to 15, validation 25, batches to 30 (crosses at the last batch) -> budget.
    assert loop.drawn == [5, 5]
    assert res.stopped == "budget"
    loop = FakeLoop([0.0, 0.1, 0.2], validate_s=10.0)
    res = loop.fit(TrainConfig(epochs=2, patience=5, lr=0.1, max_seconds=31.0))
    # Only the final validation (to 40) crosses it: every epoch ran.
    assert loop.drawn == [5, 5]
    assert res.stopped == "epochs"


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), "60", True])
def test_max_seconds_is_validated(value: object) -> None:
    with pytest.raises(ValueError, match=r"^max_seconds: .*"):
        TrainConfig(max_seconds=value)  # type: ignore[arg-type]


def test_max_seconds_accepts_none_and_positive_numbers() -> None:
    assert TrainConfig().max_seconds is None
    assert TrainConfig(max_seconds=60).max_seconds == 60
    assert TrainConfig(max_seconds=0.5).max_seconds == 0.5


def test_train_job_flag_sets_the_budget() -> None:
    from jobs.train import main, parse_args

    cfg = parse_args(["--model", "sasrec", "--ds", "2026-11-28", "--max-seconds", "900"])
    assert cfg.train.max_seconds == 900.0
    assert parse_args(["--model", "sasrec", "--ds", "2026-11-28"]).train.max_seconds is None
    with pytest.raises(ValueError, match=r"^max_seconds:"):
        parse_args(["--model", "sasrec", "--ds", "2026-11-28", "--max-seconds", "0"])
    assert main(["--model", "ranker", "--ds", "2026-11-28", "--max-seconds", "-5"]) == 2
