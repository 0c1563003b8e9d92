"""Torch models of the platform: two-tower retrieval, DCN-v2 ranker and SASRec, with their losses.

Only ``nn.Module``s, their configs and loss functions live here; training loops, data loading
and Spark live elsewhere.
"""

from __future__ import annotations

from recsys.models.device import batch_size_for, choose_batch_size, pick_device
from recsys.models.ranker import CrossLayer, InteractionRanker, RankerConfig, bce_loss
from recsys.models.sasrec import SASRecConfig, SequentialRecommender, full_softmax_loss
from recsys.models.two_tower import (
    HashedEmbedding,
    TwoTower,
    TwoTowerConfig,
    TwoTowerOutput,
    hash_ids,
    in_batch_logits,
    in_batch_softmax_loss,
)

__all__ = [
    "CrossLayer",
    "HashedEmbedding",
    "InteractionRanker",
    "RankerConfig",
    "SASRecConfig",
    "SequentialRecommender",
    "TwoTower",
    "TwoTowerConfig",
    "TwoTowerOutput",
    "batch_size_for",
    "bce_loss",
    "choose_batch_size",
    "full_softmax_loss",
    "hash_ids",
    "in_batch_logits",
    "in_batch_softmax_loss",
    "pick_device",
]
