"""DCN-v2 ranker scoring (user, candidate item) pairs with a click/like logit.

Deep & Cross Network v2 (Wang et al., "DCN V2: Improved Deep & Cross Network and Practical
Lessons for Web-scale Learning to Rank Systems", WWW 2021): the input ``x0`` is the
concatenation of hashed user/item id embeddings and a dense feature vector; cross layers model
explicit bounded-degree feature interactions, a ReLU MLP the implicit ones, and the two are
either stacked (cross then deep) or run in parallel on ``x0`` and concatenated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recsys.models.two_tower import HashedEmbedding, mlp
from recsys.validation import check_dims, check_int, check_ints, check_prob

Structure = Literal["stacked", "parallel"]


@dataclass(frozen=True, slots=True)
class RankerConfig:
    """Sizes of :class:`InteractionRanker`.

    Attributes:
        n_user_buckets: Hash buckets of the user id table, >= 1.
        n_item_buckets: Hash buckets of the item id table, >= 1.
        id_dim: Width of each id embedding, >= 0; 0 for none (dense features only: with few
            labelled users, id embeddings memorise them instead of generalising).
        n_dense: Width of the dense feature vector (user, item, cross features and the retrieval
            score, standardised upstream), >= 0.
        n_cross_layers: Number of cross layers, >= 0.
        cross_rank: None for full-rank cross weights ``W`` (d x d), else the rank r >= 1 of the
            low-rank factorisation ``W = U V^T`` (2 d r weights instead of d^2).
        structure: ``"stacked"`` (cross network feeds the MLP) or ``"parallel"`` (both read
            ``x0``; outputs concatenated).
        deep_dims: Hidden widths of the MLP (may be empty, unless ``n_cross_layers`` is 0).
        dropout: Dropout after each MLP hidden layer, in [0, 1).
        base_score_column: None, or the index in ``[0, n_dense)`` of a dense column (e.g. the
            retrieval score) added to the logit with a learned weight that starts at 1 while the
            network's output layer starts at zero: the untrained ranker then orders candidates
            exactly by that column and training learns corrections to it, so an undertrained
            ranker cannot do much worse than the order it re-ranks.
        linear_columns: Indices in ``[0, n_dense)`` of further dense columns (e.g. a second
            retriever's score) added to the logit, each with its own learned weight that starts
            at 0: a straight path for scores whose effect is close to linear, which the stacked
            network would otherwise have to learn through its ReLUs from few labels.
    """

    n_user_buckets: int = 100_000
    n_item_buckets: int = 100_000
    id_dim: int = 32
    n_dense: int = 32
    n_cross_layers: int = 3
    cross_rank: int | None = None
    structure: Structure = "stacked"
    deep_dims: tuple[int, ...] = (256, 128)
    dropout: float = 0.1
    base_score_column: int | None = None
    linear_columns: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check_ints(self, {"n_user_buckets": 1, "n_item_buckets": 1, "id_dim": 0, "n_dense": 0})
        if self.id_dim == 0 and self.n_dense == 0:
            raise ValueError("id_dim: 0 with n_dense 0 leaves no input, got 0")
        check_int("n_cross_layers", self.n_cross_layers, 0)
        if self.cross_rank is not None:
            check_int("cross_rank", self.cross_rank, 1)
        if self.structure not in ("stacked", "parallel"):
            raise ValueError(f"structure: expected 'stacked' or 'parallel', got {self.structure!r}")
        check_dims("deep_dims", self.deep_dims)
        if self.n_cross_layers == 0 and not self.deep_dims:
            raise ValueError("n_cross_layers: 0 with empty deep_dims leaves no network, got 0")
        check_prob("dropout", self.dropout, allow_one=False)
        col = self.base_score_column
        if col is not None and (
            not isinstance(col, int) or isinstance(col, bool) or not 0 <= col < self.n_dense
        ):
            raise ValueError(
                f"base_score_column: must be None or an int in [0, {self.n_dense}), got {col!r}"
            )

        cols = self.linear_columns
        if not isinstance(cols, tuple) or any(
            not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < self.n_dense for c in cols
        ):
            raise ValueError(
                f"linear_columns: must be a tuple of ints in [0, {self.n_dense}), got {cols!r}"
            )
        if len(set(cols)) != len(cols) or (col is not None and col in cols):
            raise ValueError(
                f"linear_columns: must be distinct and exclude base_score_column, got {cols!r}"
            )

    @property
    def input_dim(self) -> int:
        """Width d of ``x0``: two id embeddings (if any) plus the dense features."""
        return 2 * self.id_dim + self.n_dense


class CrossLayer(nn.Module):
    """One DCN-v2 cross layer: ``x_{l+1} = x0 ⊙ (W x_l + b) + x_l`` (Wang et al. 2021, eq. 1).

    Inputs ``x0, x`` are ``(B, d)``; output ``(B, d)``. With ``rank`` set, ``W = U V^T``
    (eq. 2, without the mixture of experts).
    """

    def __init__(self, dim: int, rank: int | None) -> None:
        super().__init__()
        self.proj: nn.Module
        if rank is None:
            self.proj = nn.Linear(dim, dim)
        else:
            self.proj = nn.Sequential(nn.Linear(dim, rank, bias=False), nn.Linear(rank, dim))

    def forward(self, x0: Tensor, x: Tensor) -> Tensor:
        out: Tensor = x0 * self.proj(x) + x
        return out


class InteractionRanker(nn.Module):
    """DCN-v2 over hashed ids and dense features; outputs one logit per (user, item) row."""

    def __init__(self, config: RankerConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.user_ids = HashedEmbedding(c.n_user_buckets, c.id_dim) if c.id_dim else None
        self.item_ids = HashedEmbedding(c.n_item_buckets, c.id_dim) if c.id_dim else None
        d = c.input_dim
        self.cross = nn.ModuleList(CrossLayer(d, c.cross_rank) for _ in range(c.n_cross_layers))
        deep_in = d
        self.deep = mlp(deep_in, c.deep_dims, None, c.dropout)
        deep_out = c.deep_dims[-1] if c.deep_dims else d
        if c.structure == "stacked":
            head_in = deep_out
        else:
            head_in = (d if c.n_cross_layers else 0) + (deep_out if c.deep_dims else 0)
        self.head = nn.Linear(head_in, 1)
        self.base_weight: nn.Parameter | None = None
        if c.base_score_column is not None:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
            self.base_weight = nn.Parameter(torch.ones(()))
        self.linear_weight: nn.Parameter | None = None
        if c.linear_columns:
            self.linear_weight = nn.Parameter(torch.zeros(len(c.linear_columns)))

    def _cross(self, x0: Tensor) -> Tensor:
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        return x

    def forward(self, user_ids: Tensor, item_ids: Tensor, dense: Tensor) -> Tensor:
        """Logits of B (user, item) pairs.

        Args:
            user_ids: ``(B,)`` int64 raw user ids (0 = unknown, zero embedding).
            item_ids: ``(B,)`` int64 raw item ids (0 = unknown, zero embedding).
            dense: ``(B, n_dense)`` float32 standardised features.

        Returns:
            ``(B,)`` float logits (apply a sigmoid for probabilities).
        """
        if self.user_ids is None or self.item_ids is None:
            x0 = dense
        else:
            x0 = torch.cat([self.user_ids(user_ids), self.item_ids(item_ids), dense], dim=-1)
        c = self.config
        if c.structure == "stacked":
            h: Tensor = self.deep(self._cross(x0))
        else:
            parts = []
            if c.n_cross_layers:
                parts.append(self._cross(x0))
            if c.deep_dims:
                parts.append(self.deep(x0))
            h = torch.cat(parts, dim=-1)
        logits: Tensor = self.head(h).squeeze(-1)
        if self.base_weight is not None and c.base_score_column is not None:
            logits = logits + self.base_weight * dense[:, c.base_score_column]
        if self.linear_weight is not None:
            logits = logits + dense[:, list(c.linear_columns)] @ self.linear_weight
        return logits


def bce_loss(logits: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean binary cross-entropy with logits; ``()`` float.

    Args:
        logits: ``(B,)`` float, from :class:`InteractionRanker`.
        labels: ``(B,)`` targets in [0, 1] (any float/int/bool dtype; cast to ``logits``' dtype).
        weight: Optional ``(B,)`` non-negative per-row weights.
    """
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), weight=weight)
