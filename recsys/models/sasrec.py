"""SASRec: a causal Transformer over a user's item sequence, trained with full or sampled softmax.

Architecture after Kang & McAuley, "Self-Attentive Sequential Recommendation" (ICDM 2018): item
embeddings (scaled by sqrt(d)) plus learned positional embeddings, a pre-LN
``nn.TransformerEncoder`` under a causal mask, and output scores ``h_t · e_j`` against the same
(tied) item embedding table. Training follows Klenitskiy & Vasilev, "Turning Dross Into Gold
Loss: is BERT4Rec really better than SASRec?" (RecSys 2023): cross-entropy over *all* items at
every position, instead of the original one-negative binary loss.

That loss builds a (positions x items) logit matrix per batch, which grows with the catalogue.
Above :attr:`SASRecConfig.full_softmax_max_items` items (or with ``loss="sampled"``) training
uses :func:`sampled_softmax_loss` instead: ``n_negatives`` items shared by the whole batch,
drawn from a proposal distribution Q (uniform, or item popularity) with the logQ correction, so
a batch holds (positions x (n_negatives + 1)) logits whatever the catalogue size.

Items are dense indices ``1..n_items`` (the pipeline maps raw ids to them); ``0`` is padding.
Positions are counted backwards from each row's most recent item (0 = most recent), so a
sequence's hidden states do not depend on how much padding it has or on which side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recsys.validation import check_int, check_ints, check_prob

LossKind = Literal["full", "sampled", "auto"]
NegativeKind = Literal["uniform", "popularity"]
LOSS_KINDS: tuple[LossKind, ...] = ("full", "sampled", "auto")
NEGATIVE_KINDS: tuple[NegativeKind, ...] = ("uniform", "popularity")


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
        loss: ``"full"``: softmax over every item at every position; ``"sampled"``:
            :func:`sampled_softmax_loss` with ``n_negatives`` shared negatives; ``"auto"``:
            full while ``n_items <= full_softmax_max_items``, sampled above.
        n_negatives: Negatives per batch of the sampled loss (drawn with replacement), >= 1.
        negatives: Proposal Q of the sampled negatives (the module does not read it; trainers
            pass the matching ``log_q`` to :meth:`SequentialRecommender.loss`): ``"uniform"``
            or ``"popularity"`` (train interaction counts).
        full_softmax_max_items: Largest catalogue ``"auto"`` trains with full softmax, >= 1.
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
    loss: LossKind = "auto"
    n_negatives: int = 1024
    negatives: NegativeKind = "popularity"
    full_softmax_max_items: int = 20_000

    def __post_init__(self) -> None:
        check_ints(self, {"n_items": 1, "max_len": 1, "d_model": 1, "n_heads": 1})
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model: must be divisible by n_heads={self.n_heads}, got {self.d_model!r}"
            )
        check_ints(self, {"n_layers": 1, "dim_feedforward": 1})
        check_prob("dropout", self.dropout, allow_one=False)
        for flag in ("positives_only", "positive_targets"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag}: must be a bool, got {getattr(self, flag)!r}")
        if self.loss not in LOSS_KINDS:
            raise ValueError(f"loss: expected one of {LOSS_KINDS}, got {self.loss!r}")
        check_int("n_negatives", self.n_negatives, 1)
        if self.negatives not in NEGATIVE_KINDS:
            raise ValueError(f"negatives: expected one of {NEGATIVE_KINDS}, got {self.negatives!r}")
        check_int("full_softmax_max_items", self.full_softmax_max_items, 1)

    @property
    def sampled(self) -> bool:
        """Whether training uses the sampled softmax (``loss``, resolved for ``"auto"``)."""
        if self.loss == "auto":
            return self.n_items > self.full_softmax_max_items
        return self.loss == "sampled"


def item_log_q(counts: Tensor) -> Tensor:
    """Log popularity proposal ``log Q(j)`` from per-item counts; ``(n_items + 1,)`` float32.

    Args:
        counts: ``(n_items + 1,)`` non-negative counts indexed by item id (index 0, padding, is
            ignored). Items with count 0 are given count 1, so every item can be drawn.

    Returns:
        ``log Q`` with ``Q`` summing to 1 over ``1..n_items`` and ``-inf`` at index 0.
    """
    if counts.dim() != 1 or counts.shape[0] < 2:
        raise ValueError(f"counts: expected a (n_items + 1,) tensor, got shape {counts.shape}")
    if bool((counts < 0).any()):
        raise ValueError("counts: must be >= 0, got a negative count")
    c = counts.double().clamp(min=1.0)
    c[0] = 0.0
    return (c / c.sum()).log().float()


def uniform_log_q(n_items: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Uniform proposal over ``1..n_items``: ``(n_items + 1,)``, ``-inf`` at index 0."""
    check_int("n_items", n_items, 1)
    out = torch.full((n_items + 1,), -math.log(n_items), dtype=dtype)
    out[0] = float("-inf")
    return out


def sample_negatives(log_q: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` item ids drawn with replacement from ``Q = exp(log_q)``; ``(n,)`` int64.

    Uses the torch RNG of ``log_q``'s device (or ``generator``), so seeding the run seeds it.
    """
    check_int("n", n, 1)
    return torch.multinomial(log_q.exp(), n, replacement=True, generator=generator)


def sampled_softmax_logits(
    hidden: Tensor, targets: Tensor, weight: Tensor, negatives: Tensor, log_q: Tensor
) -> Tensor:
    """Corrected logits of the sampled softmax; ``(M, K + 1)``, column 0 the target.

    Column 0 is the target's score ``h · e_t``; column ``1 + k`` is negative ``k``'s score
    minus its log expected count ``log(K Q(j))`` (the logQ correction), or ``-inf`` where
    the negative is the row's own target (an accidental hit). Then
    ``logsumexp(row) = log(exp(s_t) + sum_k exp(s_k) / (K Q(k)))``, whose argument is an
    unbiased estimate of the full softmax's normaliser ``sum_j exp(s_j)``: the loss is a
    consistent estimate of the full-softmax loss, exact when the negatives are every item once
    under a uniform Q.

    Args:
        hidden: ``(M, d)`` float hidden states of the M trained positions.
        targets: ``(M,)`` int64 target ids in ``[1, n_items]``.
        weight: ``(n_items + 1, d)`` output (tied item) embedding table.
        negatives: ``(K,)`` int64 sampled ids in ``[1, n_items]``, shared by all rows.
        log_q: ``(n_items + 1,)`` float log proposal probabilities, ``Q`` over ``1..n_items``.
    """
    if hidden.dim() != 2 or targets.shape != hidden.shape[:1]:
        raise ValueError(
            f"targets: expected shape ({hidden.shape[0]},) for hidden {tuple(hidden.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    if negatives.dim() != 1 or negatives.numel() == 0:
        raise ValueError(f"negatives: expected a non-empty (K,) tensor, got {negatives.shape}")
    if log_q.shape != weight.shape[:1]:
        raise ValueError(f"log_q: expected shape ({weight.shape[0]},), got {tuple(log_q.shape)}")
    positive = (hidden * weight[targets]).sum(-1, keepdim=True)  # (M, 1)
    correction = log_q[negatives].to(hidden.dtype) + math.log(negatives.numel())  # (K,)
    negative = hidden @ weight[negatives].T - correction  # (M, K)
    hit = targets.unsqueeze(1) == negatives.unsqueeze(0)
    negative = negative.masked_fill(hit, float("-inf"))
    return torch.cat([positive, negative], dim=1)


def sampled_softmax_loss(
    hidden: Tensor, targets: Tensor, weight: Tensor, negatives: Tensor, log_q: Tensor
) -> Tensor:
    """Mean sampled-softmax cross-entropy with logQ correction; ``()`` float.

    Arguments as for :func:`sampled_softmax_logits`; memory is ``M x (K + 1)`` logits.
    """
    logits = sampled_softmax_logits(hidden, targets, weight, negatives, log_q)
    zeros = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, zeros)


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

    def _attention_mask(self, real: Tensor, dtype: torch.dtype) -> Tensor:
        # Blocked (-inf) = may not attend. Causal (no key after the query) plus key padding.
        # Every position may attend to itself: a left-padding query would otherwise have no key
        # at all, and a fully masked softmax row is NaN on some attention kernels, which then
        # leaks into real positions through 0 * NaN in the next layer. Padding outputs are
        # discarded anyway.
        length = real.shape[1]
        ones = torch.ones(length, length, dtype=torch.bool, device=real.device)
        causal = ones.triu(1)
        blocked = causal.unsqueeze(0) | ~real.unsqueeze(1)  # (B, L, L)
        blocked = blocked & ~torch.eye(length, dtype=torch.bool, device=real.device)
        blocked = blocked.repeat_interleave(self.config.n_heads, dim=0)  # (B * heads, L, L)
        # Additive form (0 or -inf), built once: a boolean mask would be converted to it again
        # by every encoder layer (``F._canonical_mask``).
        return torch.zeros(blocked.shape, dtype=dtype, device=real.device).masked_fill_(
            blocked, float("-inf")
        )

    def forward(self, seq: Tensor) -> Tensor:
        """Hidden states of every position.

        Args:
            seq: ``(B, L)`` int64 item ids in chronological order (most recent last), 0-padded
                on either side, ``L <= max_len``.

        Returns:
            ``(B, L, d_model)`` float; row t summarises items ``<= t`` (zeros at padding).
        """
        x, real = self._embed(seq)
        h: Tensor = self.encoder(x, mask=self._attention_mask(real, x.dtype))
        return h * real.unsqueeze(-1).to(h.dtype)

    def _embed(self, seq: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder input ``(B, L, d_model)`` (zeros at padding) and the real-item mask."""
        self._check_seq(seq)
        real = seq != 0
        # Distance back from the row's most recent item: count of real items at or after t.
        pos = (real.flip(1).cumsum(1).flip(1) - 1).clamp(min=0)
        x = self.item_emb(seq) * math.sqrt(self.config.d_model) + self.pos_emb(pos)
        return self.emb_dropout(x) * real.unsqueeze(-1).to(x.dtype), real

    def _hidden_at(self, seq: Tensor, last: Tensor) -> Tensor:
        """``self(seq)[b, last[b]]`` for every row ``b``; ``(B, d_model)``.

        Every layer but the last runs over all positions (the keys and values of the last
        one); the last layer runs only the one query per row that is read, so its attention is
        linear in ``L`` instead of quadratic and its feed-forward block runs once per row. The
        layer's own pre-norm arithmetic, written out for one query (``norm_first``, as built).
        """
        x, real = self._embed(seq)
        mask = self._attention_mask(real, x.dtype)
        *early, final = self.encoder.layers
        for layer in early:
            x = layer(x, src_mask=mask)
        rows = torch.arange(seq.shape[0], device=seq.device)
        length, heads = seq.shape[1], self.config.n_heads
        q_mask = mask.view(-1, heads, length, length)[rows, :, last].reshape(-1, 1, length)
        q = x[rows, last].unsqueeze(1)  # (B, 1, d_model)
        kv = final.norm1(x)
        attn = final.self_attn(final.norm1(q), kv, kv, attn_mask=q_mask, need_weights=False)[0]
        q = q + final.dropout1(attn)
        q = q + final._ff_block(final.norm2(q))
        if self.encoder.norm is not None:
            q = self.encoder.norm(q)
        out: Tensor = q[:, 0] * real[rows, last].unsqueeze(-1).to(q.dtype)
        return out

    def scores(self, hidden: Tensor) -> Tensor:
        """Tied-embedding scores ``(*, n_items + 1)`` of hidden states ``(*, d_model)``.

        Column 0 (padding) is ``-inf``, so column index equals item id.
        """
        out = hidden @ self.item_emb.weight.T
        out[..., 0] = float("-inf")
        return out

    def loss(self, seq: Tensor, targets: Tensor, log_q: Tensor | None = None) -> Tensor:
        """Next-item loss at every real position, full or sampled softmax (config); ``()`` float.

        Args:
            seq: ``(B, L)`` int64 inputs, as for :meth:`forward` (e.g. ``items[:, :-1]``).
            targets: ``(B, L)`` int64 next item of each position (e.g. ``items[:, 1:]``); 0 or a
                padding input position is ignored.
            log_q: Sampled softmax only: ``(n_items + 1,)`` log proposal of the negatives
                (:func:`item_log_q`); None for uniform. Ignored by the full softmax.

        Full softmax: logits are built only for the M non-ignored positions and only over real
        items, ``(M, n_items)`` floats: the same value as :func:`full_softmax_loss` on
        :meth:`scores`, without the padding column's copy, fill and masking passes over the
        largest tensor of a training step. Sampled (``config.sampled``): ``n_negatives``
        negatives drawn once per call, ``(M, n_negatives + 1)`` logits
        (:func:`sampled_softmax_loss`).
        """
        hidden: Tensor = self(seq)
        valid = (targets != 0) & (seq != 0)
        if not bool(valid.any()):
            return hidden.sum() * 0.0
        if self.config.sampled:
            weight = self.item_emb.weight
            if log_q is None:
                log_q = uniform_log_q(self.config.n_items)
            log_q = log_q.to(weight.device)
            negatives = sample_negatives(log_q, self.config.n_negatives)
            return sampled_softmax_loss(hidden[valid], targets[valid], weight, negatives, log_q)
        logits = hidden[valid] @ self.item_emb.weight[1:].T
        loss: Tensor = F.cross_entropy(logits, targets[valid] - 1)
        return loss

    def user_representation(self, seq: Tensor, chunk_rows: int = 128) -> Tensor:
        """Hidden state at each row's most recent (last non-padding) item; ``(B, d_model)``.

        An all-padding row yields the zero vector. Rows are run in chunks of ``chunk_rows``
        (>= 1) rows of similar history length, and each chunk drops the columns that are padding
        in every one of its rows: positions count back from each row's most recent item and
        padding keys are masked, so this changes nothing but the cost. Attention is quadratic
        in the width ``L``, most histories are far shorter than ``max_len``, and one long
        history would otherwise set the width of a whole batch.
        """
        if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or chunk_rows < 1:
            raise ValueError(f"chunk_rows: must be an int >= 1, got {chunk_rows!r}")
        if seq.shape[0] <= chunk_rows:
            return self._represent(seq)
        lengths = (seq != 0).sum(dim=1)
        order = torch.argsort(lengths, stable=True)
        out = torch.empty(
            seq.shape[0], self.config.d_model, dtype=self.item_emb.weight.dtype, device=seq.device
        )
        for start in range(0, seq.shape[0], chunk_rows):
            rows = order[start : start + chunk_rows]
            out[rows] = self._represent(seq[rows]).to(out.dtype)
        return out

    def _represent(self, seq: Tensor) -> Tensor:
        """:meth:`user_representation` of one chunk: shared padding columns cut, then read at
        each row's last real item."""
        real = (seq != 0).any(dim=0)
        if bool(real.any()):
            kept = real.nonzero()[:, 0]
            seq = seq[:, int(kept[0]) : int(kept[-1]) + 1]
        else:
            seq = seq[:, :1]  # padding only: one column gives the same zero vectors
        idx = torch.arange(seq.shape[1], device=seq.device).expand_as(seq)
        last = torch.where(seq != 0, idx, torch.zeros_like(idx)).max(dim=1).values
        return self._hidden_at(seq, last)

    def next_item_scores(self, seq: Tensor) -> Tensor:
        """Scores of every item as the next one; ``(B, n_items + 1)``, column 0 ``-inf``."""
        return self.scores(self.user_representation(seq))
