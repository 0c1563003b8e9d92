"""SASRec: a causal Transformer over a user's item sequence, trained with full softmax.

Architecture after Kang & McAuley, "Self-Attentive Sequential Recommendation" (ICDM 2018): item
embeddings (scaled by sqrt(d)) plus learned positional embeddings, a pre-LN
``nn.TransformerEncoder`` under a causal mask, and output scores ``h_t · e_j`` against the same
(tied) item embedding table. Training follows Klenitskiy & Vasilev, "Turning Dross Into Gold
Loss: is BERT4Rec really better than SASRec?" (RecSys 2023): cross-entropy over *all* items at
every position, instead of the original one-negative binary loss.

Items are dense indices ``1..n_items`` (the pipeline maps raw ids to them); ``0`` is padding.
Positions are counted backwards from each row's most recent item (0 = most recent), so a
sequence's hidden states do not depend on how much padding it has or on which side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recsys.models.two_tower import _check_int, _check_prob


@dataclass(frozen=True, slots=True)
class SASRecConfig:
    """Sizes of :class:`SequentialRecommender`.

    Attributes:
        n_items: Number of items; valid ids are ``1..n_items``, >= 1.
        max_len: Longest input sequence, >= 1.
        d_model: Hidden width, >= 1 and divisible by ``n_heads``.
        n_heads: Attention heads, >= 1.
        n_layers: Transformer blocks, >= 1.
        dim_feedforward: Width of each block's feed-forward layer, >= 1.
        dropout: Dropout on embeddings, attention and feed-forward, in [0, 1).
        positives_only: Which events the input sequences hold (the module does not read it;
            trainers and scorers do): True, the user's positives; False, every interaction,
            positive or not, oldest first.
        positive_targets: Which next events teach in training (the module does not read it
            either): True, only positive ones; False, every next event in the sequence.
    """

    n_items: int
    max_len: int = 200
    d_model: int = 64
    n_heads: int = 2
    n_layers: int = 2
    dim_feedforward: int = 256
    dropout: float = 0.2
    positives_only: bool = True
    positive_targets: bool = False

    def __post_init__(self) -> None:
        _check_int("n_items", self.n_items, 1)
        _check_int("max_len", self.max_len, 1)
        _check_int("d_model", self.d_model, 1)
        _check_int("n_heads", self.n_heads, 1)
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model: must be divisible by n_heads={self.n_heads}, got {self.d_model!r}"
            )
        _check_int("n_layers", self.n_layers, 1)
        _check_int("dim_feedforward", self.dim_feedforward, 1)
        _check_prob("dropout", self.dropout, allow_one=False)
        for flag in ("positives_only", "positive_targets"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag}: must be a bool, got {getattr(self, flag)!r}")


def full_softmax_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy over the whole catalogue, ignoring padding; ``()`` float.

    Args:
        logits: ``(N, n_items + 1)`` float scores; column 0 (padding) is excluded from the
            softmax whatever its value.
        targets: ``(N,)`` int64 item ids in ``[0, n_items]``; rows with target 0 are ignored.

    Returns:
        The mean over non-ignored rows (0.0, still differentiable, when every row is ignored).
    """
    logits = logits.clone()
    logits[:, 0] = float("-inf")
    valid = targets != 0
    if not bool(valid.any()):
        return logits[:, 1:].sum() * 0.0
    return F.cross_entropy(logits[valid], targets[valid])


class SequentialRecommender(nn.Module):
    """SASRec with tied item embeddings; see the module docstring."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.item_emb = nn.Embedding(c.n_items + 1, c.d_model, padding_idx=0)
        self.pos_emb = nn.Embedding(c.max_len, c.d_model)
        # Scaled by sqrt(d) at input, so N(0, 1/d) rows enter the encoder at unit scale while the
        # tied output logits h · e_j start near unit variance.
        for emb in (self.item_emb, self.pos_emb):
            nn.init.normal_(emb.weight, std=c.d_model**-0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        self.emb_dropout = nn.Dropout(c.dropout)
        layer = nn.TransformerEncoderLayer(
            c.d_model,
            c.n_heads,
            c.dim_feedforward,
            c.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, c.n_layers, norm=nn.LayerNorm(c.d_model), enable_nested_tensor=False
        )

    def _check_seq(self, seq: Tensor) -> None:
        if seq.dim() != 2 or seq.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"seq: expected a (B, L) integer tensor, got {seq.dtype} {seq.shape}")
        if seq.shape[1] > self.config.max_len:
            raise ValueError(f"seq: length {seq.shape[1]} exceeds max_len={self.config.max_len}")

    def _attention_mask(self, real: Tensor) -> Tensor:
        # True = may not attend. Causal (no key after the query) plus key padding. Every position
        # may attend to itself: a left-padding query would otherwise have no key at all, and a
        # fully masked softmax row is NaN on some attention kernels, which then leaks into real
        # positions through 0 * NaN in the next layer. Padding outputs are discarded anyway.
        length = real.shape[1]
        ones = torch.ones(length, length, dtype=torch.bool, device=real.device)
        causal = ones.triu(1)
        blocked = causal.unsqueeze(0) | ~real.unsqueeze(1)  # (B, L, L)
        blocked = blocked & ~torch.eye(length, dtype=torch.bool, device=real.device)
        return blocked.repeat_interleave(self.config.n_heads, dim=0)  # (B * heads, L, L)

    def forward(self, seq: Tensor) -> Tensor:
        """Hidden states of every position.

        Args:
            seq: ``(B, L)`` int64 item ids in chronological order (most recent last), 0-padded
                on either side, ``L <= max_len``.

        Returns:
            ``(B, L, d_model)`` float; row t summarises items ``<= t`` (zeros at padding).
        """
        self._check_seq(seq)
        real = seq != 0
        # Distance back from the row's most recent item: count of real items at or after t.
        pos = (real.flip(1).cumsum(1).flip(1) - 1).clamp(min=0)
        x = self.item_emb(seq) * math.sqrt(self.config.d_model) + self.pos_emb(pos)
        x = self.emb_dropout(x) * real.unsqueeze(-1).to(x.dtype)
        h: Tensor = self.encoder(x, mask=self._attention_mask(real))
        return h * real.unsqueeze(-1).to(h.dtype)

    def scores(self, hidden: Tensor) -> Tensor:
        """Tied-embedding scores ``(*, n_items + 1)`` of hidden states ``(*, d_model)``.

        Column 0 (padding) is ``-inf``, so column index equals item id.
        """
        out = hidden @ self.item_emb.weight.T
        out[..., 0] = float("-inf")
        return out

    def loss(self, seq: Tensor, targets: Tensor) -> Tensor:
        """Full-softmax next-item loss at every real position; ``()`` float.

        Args:
            seq: ``(B, L)`` int64 inputs, as for :meth:`forward` (e.g. ``items[:, :-1]``).
            targets: ``(B, L)`` int64 next item of each position (e.g. ``items[:, 1:]``); 0 or a
                padding input position is ignored.

        Logits are built only for the M non-ignored positions and only over real items,
        ``(M, n_items)`` floats: the same value as :func:`full_softmax_loss` on
        :meth:`scores`, without the padding column's copy, fill and masking passes over the
        largest tensor of a training step.
        """
        hidden: Tensor = self(seq)
        valid = (targets != 0) & (seq != 0)
        if not bool(valid.any()):
            return hidden.sum() * 0.0
        logits = hidden[valid] @ self.item_emb.weight[1:].T
        loss: Tensor = F.cross_entropy(logits, targets[valid] - 1)
        return loss

    def user_representation(self, seq: Tensor) -> Tensor:
        """Hidden state at each row's most recent (last non-padding) item; ``(B, d_model)``.

        An all-padding row yields the zero vector.
        """
        hidden = self(seq)
        idx = torch.arange(seq.shape[1], device=seq.device).expand_as(seq)
        last = torch.where(seq != 0, idx, torch.zeros_like(idx)).max(dim=1).values
        rows = torch.arange(seq.shape[0], device=seq.device)
        out: Tensor = hidden[rows, last]
        return out

    def next_item_scores(self, seq: Tensor) -> Tensor:
        """Scores of every item as the next one; ``(B, n_items + 1)``, column 0 ``-inf``."""
        return self.scores(self.user_representation(seq))
