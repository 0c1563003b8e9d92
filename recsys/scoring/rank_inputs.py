"""Inputs of the ranking kernel: item-side arrays (broadcast once) and one batch of users.

Shared by :func:`recsys.scoring.ranking.rank_local` and :func:`recsys.scoring.ranking.rank_spark`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from recsys.kernels import NDArray
from recsys.training.covisit import CovisitConfig
from recsys.training.data import ItemTable


@dataclass(frozen=True)
class ItemArrays:
    """Item-side ranking inputs in ascending ``item_id`` order (row i = item_index i + 1).

    Attributes:
        item_ids: ``(N,)`` int64 ascending, distinct.
        genres: ``(N, n_genres)`` float32 multi-hot.
        log_count: ``(N,)`` float32 ``ln(1 + train interactions)``.
        is_cold: ``(N,)`` bool.
        embedding: ``(N, d)`` float32 two-tower item vectors (unit norm).
        sequence: None, or ``(N, d_s + 1)`` float32 SASRec item vectors ``[e_i, 1]`` for a
            ranker trained with SASRec's score.
        covisit_matrix: None, or the co-visitation matrix ``(N + 1, N + 1)`` over item indices
            (row 0 padding; row = preceding item) for a ranker trained with co-visitation, with
            its ``covisit_config``. Truncated to ``top_n`` entries per row
            (:mod:`recsys.training.covisit`), it holds at most ``N · top_n`` non-zeros, bounded
            by the catalogue (capped at 100k items in this product) and never by users: that is
            why it may be collected to the driver and broadcast with the other item arrays.
    """

    item_ids: NDArray
    genres: NDArray
    log_count: NDArray
    is_cold: NDArray
    embedding: NDArray
    sequence: NDArray | None = None
    covisit_matrix: sp.csr_matrix | None = None
    covisit_config: CovisitConfig | None = None

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        if (self.covisit_matrix is None) != (self.covisit_config is None):
            raise ValueError("covisit_matrix: the matrix and covisit_config come together")
        if self.covisit_matrix is not None and self.covisit_matrix.shape != (n + 1, n + 1):
            raise ValueError(
                f"covisit_matrix: expected {(n + 1, n + 1)}, got {self.covisit_matrix.shape}"
            )
        for name in ("genres", "log_count", "is_cold", "embedding", "sequence"):
            if getattr(self, name) is not None and len(getattr(self, name)) != n:
                raise ValueError(f"{name}: expected {n} rows, got {len(getattr(self, name))}")
        if n > 1 and not bool((np.diff(self.item_ids) > 0).all()):
            raise ValueError("item_ids: must be ascending and distinct")

    def item_table(self) -> ItemTable:
        """As a :class:`ItemTable` (row 0 padding) for :func:`ranker_dense`."""

        def pad(a: NDArray) -> torch.Tensor:
            return torch.from_numpy(np.concatenate([np.zeros_like(a[:1]), a]))

        n = len(self.item_ids)
        return ItemTable(
            item_ids=pad(self.item_ids.astype(np.int64)),
            genres=pad(self.genres.astype(np.float32)),
            year=torch.zeros(n + 1),
            content=torch.zeros(n + 1, 0),
            is_cold=pad(self.is_cold.astype(bool)),
            log_count=pad(self.log_count.astype(np.float32)),
        )

    def padded_embedding(self) -> torch.Tensor:
        """``(N + 1, d)`` item vectors, row 0 zero."""
        e = self.embedding.astype(np.float32)
        return torch.from_numpy(np.concatenate([np.zeros_like(e[:1]), e]))

    def padded_sequence(self) -> torch.Tensor | None:
        """``(N + 1, d_s + 1)`` SASRec item vectors, row 0 zero; None without them."""
        if self.sequence is None:
            return None
        e = self.sequence.astype(np.float32)
        return torch.from_numpy(np.concatenate([np.zeros_like(e[:1]), e]))

    def covisit(self) -> tuple[sp.csr_matrix, CovisitConfig] | None:
        """``(covisit_matrix, covisit_config)``, or None without them."""
        if self.covisit_matrix is None or self.covisit_config is None:
            return None
        return self.covisit_matrix, self.covisit_config

    @property
    def sequence_dim(self) -> int:
        """Width of the SASRec vectors (0 without them)."""
        return 0 if self.sequence is None else int(self.sequence.shape[1])


@dataclass(frozen=True)
class UserBatch:
    """Per-user ranking inputs of one batch (row b = one user)."""

    user_ids: NDArray  #: (B,) int64
    feature_user_ids: NDArray  #: (B,) int64, 0 for users without features
    dense: NDArray  #: (B, dense_dim) float32
    affinity: NDArray  #: (B, n_genres) float32
    embedding: NDArray  #: (B, d) float32
    history: NDArray  #: (B, H) int64 raw item ids, 0-padded at the front
    cand_rows: NDArray  #: (M,) int64 user row of each candidate
    cand_items: NDArray  #: (M,) int64 raw item id
    cand_sources: NDArray  #: (M,) int64 code in SOURCES
    sequence: NDArray | None = None  #: (B, d_s + 1) float32 SASRec user vectors, or None
    recent: NDArray | None = None  #: (B, L) int64 recent item indices, 0-padded in front


def user_dense_dim(n_dense: int, items: ItemArrays) -> int:
    """Width of the user ``dense`` feature of a ranker with ``n_dense`` inputs: the four item and
    cross features, the SASRec score (when ``items.sequence`` is given) and the co-visitation
    score (when ``items.covisit_matrix`` is) are the rest."""
    width = n_dense - 4 - int(items.sequence is not None) - int(items.covisit_matrix is not None)
    if width < 0:
        raise ValueError(f"n_dense: {n_dense} leaves no room for the user features")
    return width


def uniform_sequence_vector(items: ItemArrays) -> NDArray:
    """SASRec user vector of a user without one: ``[0, ..., 0, -log N]``, every item ``1/N``."""
    out = np.zeros(items.sequence_dim, dtype=np.float32)
    out[-1] = -np.log(len(items.item_ids))
    return out
