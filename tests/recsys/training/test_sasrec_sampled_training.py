"""train_sasrec with the sampled softmax: popularity Q from Spark counts, learning, and budget."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch
from torch import Tensor

from recsys.models import sasrec as sasrec_module
from recsys.models.sasrec import SASRecConfig
from recsys.training.loops import NDCG10, TrainConfig
from recsys.training.trainers import SplitData, train_sasrec
from tests.helpers.tiny_features import tiny_split

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.slow]

DS = date(2026, 1, 5)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def split(spark: SparkSession) -> SplitData:
    return tiny_split(spark, DS)


def test_sampled_sasrec_trains_with_popularity_q_from_train_counts(
    spark: SparkSession, split: SplitData, tmp_path: Path, monkeypatch: Any
) -> None:
    seen: list[Tensor] = []
    real = sasrec_module.sampled_softmax_loss

    def spy(hidden: Tensor, targets: Tensor, weight: Tensor, negatives: Tensor, log_q: Tensor):  # type: ignore[no-untyped-def]
        seen.append(log_q.detach().clone())
        return real(hidden, targets, weight, negatives, log_q)

    monkeypatch.setattr(sasrec_module, "sampled_softmax_loss", spy)
    n = split.items.n_items
    mc = SASRecConfig(n_items=n, max_len=8, dropout=0.2, loss="sampled", n_negatives=8)
    cfg = TrainConfig(epochs=6, patience=6, batch_size=16, lr=1e-2, max_len=8)
    t = train_sasrec(spark, split, cfg, str(tmp_path), CPU, model_config=mc)
    hist = t.result.history
    assert hist[-1].loss < hist[0].loss
    assert t.result.metrics[NDCG10] > t.result.initial[NDCG10]
    assert t.config["loss"] == "sampled"
    # Q is the popularity of the train events, not uniform: it varies across items.
    assert seen
    q = seen[0].exp()
    assert torch.isneginf(seen[0][0])
    torch.testing.assert_close(float(q[1:].sum()), 1.0, rtol=1e-5, atol=1e-5)
    assert float(q[1:].max()) > 1.5 * float(q[1:].min())


def test_uniform_negatives_pass_no_q_and_the_budget_stops_training(
    spark: SparkSession, split: SplitData, tmp_path: Path, monkeypatch: Any
) -> None:
    given: list[object] = []
    real = sasrec_module.SequentialRecommender.loss

    def spy(self: Any, seq: Tensor, targets: Tensor, log_q: Tensor | None = None) -> Tensor:
        given.append(log_q)
        return real(self, seq, targets, log_q)

    monkeypatch.setattr(sasrec_module.SequentialRecommender, "loss", spy)
    n = split.items.n_items
    mc = SASRecConfig(n_items=n, max_len=8, loss="sampled", n_negatives=8, negatives="uniform")
    cfg = TrainConfig(epochs=50, patience=50, batch_size=4, lr=1e-2, max_len=8, max_seconds=1e-3)
    t = train_sasrec(spark, split, cfg, str(tmp_path), CPU, model_config=mc)
    assert given
    assert all(q is None for q in given)
    assert t.result.stopped == "budget"
    assert len(t.result.history) == 1
