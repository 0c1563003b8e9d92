"""Two-tower retrieval model with hashed ids, trained by in-batch sampled softmax with logQ.

Both towers end in L2-normalised vectors of width ``out_dim``; a user's score for an item is their
cosine similarity, so serving is a maximum-inner-product search over :meth:`item_embedding`
outputs. Training divides cosines by a learned temperature and uses the other items of the batch
as negatives, corrected for their sampling probability (Yi et al., "Sampling-Bias-Corrected
Neural Modeling for Large Corpus Item Recommendations", RecSys 2019).

Ids are raw (e.g. MovieLens ``movieId``), hashed into a fixed number of buckets by
:func:`hash_ids`, so ids never seen in training still land in range. Id ``0`` is reserved: it is
padding in histories and means "unknown" elsewhere; it maps to an all-zero row that is never
trained. With ``id_dropout > 0`` the training towers see that zero vector for a fraction of
rows, so passing id ``0`` for a cold item (or user) at inference asks for the content-only
embedding the model learnt to produce.

The shared building blocks :func:`hash_ids`, :class:`HashedEmbedding` and :func:`mlp` are also used
by :mod:`recsys.models.ranker`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recsys.validation import check_dims, check_int, check_ints, check_prob

# Carter-Wegman universal hash h(x) = ((a*x + b) mod p) mod n with the Mersenne prime p = 2^31 - 1.
# x mod p < 2^31 and a < 2^31, so a*x + b < 2^63 never overflows int64. Unlike ``x mod n``, ids
# that share a stride (x, x + n, x + 2n, ...) do not all fall into one bucket, and consecutive ids
# are spread by a (mod p) rather than landing in neighbouring rows.
_HASH_P: Final = 2_147_483_647
_HASH_A: Final = 1_140_671_485
_HASH_B: Final = 12_820_163


def hash_ids(ids: Tensor, n_buckets: int) -> Tensor:
    """Map raw integer ids to embedding rows; deterministic, independent of device and process.

    Args:
        ids: Integer tensor of any shape (int32 or int64) of raw ids; ``0`` is padding/unknown.
            Negative ids are allowed (taken mod p).
        n_buckets: Number of hash buckets, >= 1.

    Returns:
        int64 tensor of the same shape: ``0`` where ``ids == 0``, else a row in ``[1, n_buckets]``.
    """
    if ids.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"ids: expected an int32/int64 tensor, got {ids.dtype}")
    if n_buckets < 1:
        raise ValueError(f"n_buckets: must be >= 1, got {n_buckets!r}")
    x = ids.long().remainder(_HASH_P)
    rows = (x * _HASH_A + _HASH_B).remainder(_HASH_P).remainder(n_buckets) + 1
    return torch.where(ids == 0, torch.zeros_like(rows), rows)


class HashedEmbedding(nn.Module):
    """Embedding of raw ids through :func:`hash_ids`; id 0 gives the zero vector.

    Input: integer tensor ``(*)`` of raw ids. Output: float tensor ``(*, dim)``.
    """

    def __init__(self, n_buckets: int, dim: int) -> None:
        super().__init__()
        self.n_buckets = n_buckets
        self.table = nn.Embedding(n_buckets + 1, dim, padding_idx=0)
        # Unit expected norm per row, so id vectors start on the scale of standardised features.
        nn.init.normal_(self.table.weight, std=dim**-0.5)
        with torch.no_grad():
            self.table.weight[0].zero_()

    def forward(self, ids: Tensor) -> Tensor:
        out: Tensor = self.table(hash_ids(ids, self.n_buckets))
        return out


def mlp(in_dim: int, hidden_dims: Sequence[int], out_dim: int | None, dropout: float) -> nn.Module:
    """``Linear -> ReLU -> Dropout`` per hidden width, then a plain ``Linear`` to ``out_dim``.

    With ``out_dim=None`` the stack ends after the last hidden block (its width is the output).
    """
    layers: list[nn.Module] = []
    width = in_dim
    for hidden in hidden_dims:
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    if out_dim is not None:
        layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


#: Most rows a hashed id table sized by :func:`id_buckets` gets. Item tables stay below it at
#: four buckets per item up to this product's item cap; user tables reach it at about 131k
#: users, past which users share buckets instead of the table (and its optimiser state and
#: every dense optimiser step) growing with the user count.
MAX_ID_BUCKETS: Final = 1 << 19


def id_buckets(
    n_ids: int, *, per_id: int = 4, minimum: int = 1024, maximum: int = MAX_ID_BUCKETS
) -> int:
    """Buckets of a hashed id table for ``n_ids`` distinct ids: ``per_id`` each, clamped.

    Args:
        n_ids: Distinct ids expected (users or items), >= 0.
        per_id: Buckets per id below the cap (fewer collisions), >= 1.
        minimum: Smallest table, >= 1.
        maximum: Largest table, >= ``minimum``: the table's memory is bounded by it, not by
            the population.

    Returns:
        ``min(maximum, max(minimum, per_id * n_ids))``.
    """
    check_int("n_ids", n_ids, 0)
    check_int("per_id", per_id, 1)
    check_int("minimum", minimum, 1)
    check_int("maximum", maximum, minimum)
    return min(maximum, max(minimum, per_id * n_ids))


@dataclass(frozen=True, slots=True)
class TwoTowerConfig:
    """Sizes and training knobs of :class:`TwoTower`.

    Attributes:
        n_user_buckets: Hash buckets of the user id table, >= 1.
        n_item_buckets: Hash buckets of the item id table (shared by the history), >= 1.
        id_dim: Width of the id embeddings (user, item and history), >= 1.
        user_dense_dim: Width of the dense user feature vector, >= 0.
        content_dim: Width of the precomputed item content vector (e.g. 384), >= 1.
        content_proj_dim: Width the content vector is linearly projected to, >= 1.
        n_genres: Width of the genre multi-hot vector, >= 0.
        hidden_dims: Hidden widths of each tower's MLP (may be empty).
        out_dim: Width of the shared, L2-normalised output space, >= 1.
        dropout: Dropout after each hidden layer, in [0, 1).
        id_dropout: Probability, per row and in training only, to zero the user and item id
            embeddings, in [0, 1]; teaches the feature/content paths to stand alone.
        init_temperature: Initial softmax temperature, in [min_temperature, max_temperature].
        min_temperature: Lower clamp of the learned temperature, > 0.
        max_temperature: Upper clamp of the learned temperature, >= min_temperature.
    """

    n_user_buckets: int = 100_000
    n_item_buckets: int = 100_000
    id_dim: int = 64
    user_dense_dim: int = 32
    content_dim: int = 384
    content_proj_dim: int = 64
    n_genres: int = 20
    hidden_dims: tuple[int, ...] = (256,)
    out_dim: int = 64
    dropout: float = 0.1
    id_dropout: float = 0.0
    init_temperature: float = 0.05
    min_temperature: float = 0.01
    max_temperature: float = 1.0

    def __post_init__(self) -> None:
        check_ints(
            self,
            {
                "n_user_buckets": 1,
                "n_item_buckets": 1,
                "id_dim": 1,
                "user_dense_dim": 0,
                "content_dim": 1,
                "content_proj_dim": 1,
                "n_genres": 0,
            },
        )
        check_dims("hidden_dims", self.hidden_dims)
        check_int("out_dim", self.out_dim, 1)
        check_prob("dropout", self.dropout, allow_one=False)
        check_prob("id_dropout", self.id_dropout, allow_one=True)
        if not isinstance(self.min_temperature, int | float) or not self.min_temperature > 0:
            raise ValueError(f"min_temperature: must be > 0, got {self.min_temperature!r}")
        if (
            not isinstance(self.max_temperature, int | float)
            or not self.max_temperature >= self.min_temperature
        ):
            raise ValueError(
                f"max_temperature: must be >= min_temperature, got {self.max_temperature!r}"
            )
        if not (
            isinstance(self.init_temperature, int | float)
            and self.min_temperature <= self.init_temperature <= self.max_temperature
        ):
            raise ValueError(
                "init_temperature: must lie in [min_temperature, max_temperature], "
                f"got {self.init_temperature!r}"
            )


class TwoTowerOutput(NamedTuple):
    """What :meth:`TwoTower.forward` returns: the inputs of :func:`in_batch_softmax_loss`."""

    user: Tensor  #: (B, out_dim) float, unit L2 norm per row.
    item: Tensor  #: (B, out_dim) float, unit L2 norm per row; row i is user i's positive.
    temperature: Tensor  #: () float, in [min_temperature, max_temperature].


def _drop_rows(emb: Tensor, p: float) -> Tensor:
    # Zero whole id vectors (no 1/(1-p) rescaling: zero must mean exactly "id unknown", the same
    # vector id 0 yields at inference).
    keep = torch.rand((*emb.shape[:-1], 1), device=emb.device) >= p
    return emb * keep.to(emb.dtype)


class TwoTower(nn.Module):
    """User and item towers mapping features to unit vectors in a shared space."""

    def __init__(self, config: TwoTowerConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.user_ids = HashedEmbedding(c.n_user_buckets, c.id_dim)
        self.item_ids = HashedEmbedding(c.n_item_buckets, c.id_dim)
        self.content_proj = nn.Linear(c.content_dim, c.content_proj_dim)
        user_in = 2 * c.id_dim + c.user_dense_dim
        item_in = c.id_dim + c.content_proj_dim + c.n_genres + 1
        self.user_mlp = mlp(user_in, c.hidden_dims, c.out_dim, c.dropout)
        self.item_mlp = mlp(item_in, c.hidden_dims, c.out_dim, c.dropout)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(c.init_temperature)))

    def temperature(self) -> Tensor:
        """Softmax temperature ``exp(log_temperature)`` clamped to the config's range; ``()``."""
        lo, hi = math.log(self.config.min_temperature), math.log(self.config.max_temperature)
        return self.log_temperature.clamp(lo, hi).exp()

    def _id_dropout(self, emb: Tensor) -> Tensor:
        p = self.config.id_dropout
        return _drop_rows(emb, p) if self.training and p > 0 else emb

    def user_embedding(self, user_ids: Tensor, user_dense: Tensor, history: Tensor) -> Tensor:
        """Unit-norm user vectors.

        Args:
            user_ids: ``(B,)`` int64 raw user ids; 0 = unknown user.
            user_dense: ``(B, user_dense_dim)`` float32 user features, standardised upstream.
            history: ``(B, N)`` int64 raw ids of the user's last N items, 0-padded anywhere;
                an all-zero row (no history) contributes the zero vector.

        Returns:
            ``(B, out_dim)`` float, each row of L2 norm 1.
        """
        hist = self.item_ids(history)  # (B, N, id_dim); padding rows are exactly zero
        count = (history != 0).sum(dim=1, keepdim=True).clamp(min=1).to(hist.dtype)
        hist_mean = hist.sum(dim=1) / count
        uid = self._id_dropout(self.user_ids(user_ids))
        x = torch.cat([uid, hist_mean, user_dense], dim=-1)
        return F.normalize(self.user_mlp(x), dim=-1)

    def item_embedding(
        self, item_ids: Tensor, item_content: Tensor, item_genres: Tensor, item_year: Tensor
    ) -> Tensor:
        """Unit-norm item vectors.

        Args:
            item_ids: ``(B,)`` int64 raw item ids; pass 0 for items unseen in training to get
                the content-only embedding.
            item_content: ``(B, content_dim)`` float32 precomputed content vector.
            item_genres: ``(B, n_genres)`` float32 genre multi-hot in {0, 1}.
            item_year: ``(B,)`` float32 release year standardised upstream (about [-3, 3]).

        Returns:
            ``(B, out_dim)`` float, each row of L2 norm 1.
        """
        iid = self._id_dropout(self.item_ids(item_ids))
        content = self.content_proj(item_content)
        x = torch.cat([iid, content, item_genres, item_year.unsqueeze(-1)], dim=-1)
        return F.normalize(self.item_mlp(x), dim=-1)

    def forward(
        self,
        user_ids: Tensor,
        user_dense: Tensor,
        history: Tensor,
        item_ids: Tensor,
        item_content: Tensor,
        item_genres: Tensor,
        item_year: Tensor,
    ) -> TwoTowerOutput:
        """Embed B (user, positive item) pairs; see the two embedding methods for the shapes."""
        return TwoTowerOutput(
            user=self.user_embedding(user_ids, user_dense, history),
            item=self.item_embedding(item_ids, item_content, item_genres, item_year),
            temperature=self.temperature(),
        )


def in_batch_logits(
    user: Tensor,
    item: Tensor,
    temperature: Tensor | float,
    item_ids: Tensor,
    log_q: Tensor | None = None,
) -> Tensor:
    """Logits of the in-batch softmax: ``cos(u_i, v_j) / T - log q_j``, accidental hits masked.

    Args:
        user: ``(B, D)`` unit user vectors.
        item: ``(B, D)`` unit item vectors, row i the positive of user i.
        temperature: Scalar > 0.
        item_ids: ``(B,)`` int raw item ids of the rows of ``item``.
        log_q: ``(B,)`` float log-probability that each in-batch item is sampled into a batch slot
            (e.g. ``log(count_j / n_train_interactions)``), or None for no correction.

    Returns:
        ``(B, B)`` float logits; entry (i, j) with ``j != i`` and ``item_ids[j] == item_ids[i]``
        is ``-inf`` (the same item as the positive is not a negative).
    """
    logits = user @ item.T / temperature
    if log_q is not None:
        # logQ correction (Yi et al. 2019, eq. 3): popular items are over-represented as in-batch
        # negatives; subtracting log q_j makes the sampled softmax an unbiased estimate of the
        # full softmax's gradient. Applied to every column, including the positive's.
        logits = logits - log_q.to(logits.dtype).unsqueeze(0)
    same = item_ids.unsqueeze(1) == item_ids.unsqueeze(0)
    eye = torch.eye(same.shape[0], dtype=torch.bool, device=same.device)
    return logits.masked_fill(same & ~eye, float("-inf"))


def in_batch_softmax_loss(
    user: Tensor,
    item: Tensor,
    temperature: Tensor | float,
    item_ids: Tensor,
    log_q: Tensor | None = None,
) -> Tensor:
    """Mean cross-entropy of each user's positive against the batch's items; ``()`` float.

    Arguments as :func:`in_batch_logits`; row i's target is column i.
    """
    logits = in_batch_logits(user, item, temperature, item_ids, log_q)
    target = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, target)
