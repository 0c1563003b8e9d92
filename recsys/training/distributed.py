"""What changes when training runs on several processes or machines (``docs/scale-training.md``).

Under :class:`pyspark.ml.torch.distributor.TorchDistributor` every training process is started
by ``torchrun``, which sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``. :func:`rank_info`
reads them (one process, rank 0 of 1, when they are absent, so single-process training takes
the same code path); :meth:`RankInfo.petastorm_shard` gives each rank its own slice of the
petastorm stream; :class:`LossModule` puts a model's loss inside ``forward`` so that
``DistributedDataParallel`` (whose gradient all-reduce hooks are armed by ``forward``) averages
the gradients of the loss :func:`recsys.training.loops.fit` steps on.

:func:`ddp_sasrec_step` is the smallest whole example: one data-parallel SASRec step, used by the
test that runs it under ``TorchDistributor(local_mode=True)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from recsys.models.sasrec import SASRecConfig, SequentialRecommender


@dataclass(frozen=True, slots=True)
class RankInfo:
    """This process's place in a data-parallel job.

    Attributes:
        rank: Global rank, in ``[0, world_size)``.
        world_size: Number of training processes, >= 1.
        local_rank: Rank on this machine (picks the GPU), >= 0.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        if self.world_size < 1:
            raise ValueError(f"world_size: must be >= 1, got {self.world_size!r}")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank: must be in [0, {self.world_size}), got {self.rank!r}")
        if self.local_rank < 0:
            raise ValueError(f"local_rank: must be >= 0, got {self.local_rank!r}")

    @property
    def is_zero(self) -> bool:
        """Whether this rank writes checkpoints, artifacts and log lines."""
        return self.rank == 0

    def petastorm_shard(self) -> dict[str, int]:
        """``make_torch_dataloader`` keyword arguments reading only this rank's row groups.

        Empty for one process (the whole stream). With several, each rank reads a disjoint
        ``1 / world_size`` of the row groups, so the converter needs at least ``world_size``
        row groups (repartition the training frame to a multiple of the world size).
        """
        if self.world_size == 1:
            return {}
        return {"cur_shard": self.rank, "shard_count": self.world_size}


def rank_info(env: Mapping[str, str] | None = None) -> RankInfo:
    """The :class:`RankInfo` ``torchrun`` describes in the environment (``env`` for tests)."""
    e = os.environ if env is None else env
    values: dict[str, int] = {}
    for var, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
        raw = e.get(var)
        try:
            values[var] = default if raw is None else int(raw)
        except ValueError:
            raise ValueError(f"{var}: expected an integer, got {raw!r}") from None
    return RankInfo(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])


class LossModule(nn.Module):
    """``forward(seq, targets, log_q)`` = SASRec's loss, so DDP's forward covers it.

    ``DistributedDataParallel`` only all-reduces gradients of what its own ``forward``
    computed; :meth:`SequentialRecommender.loss` called on the inner module would skip that.
    """

    def __init__(self, model: SequentialRecommender) -> None:
        super().__init__()
        self.model = model

    def forward(self, seq: Tensor, targets: Tensor, log_q: Tensor | None = None) -> Tensor:
        return self.model.loss(seq, targets, log_q)


def toy_sequences(n_rows: int, length: int, n_items: int) -> Tensor:
    """A fixed ``(n_rows, length)`` batch without padding (every shard has as many positions)."""
    start = torch.arange(n_rows).unsqueeze(1) * 3 + torch.arange(length).unsqueeze(0)
    return start % n_items + 1


def ddp_sasrec_step(config: Mapping[str, Any], seed: int, lr: float) -> dict[str, Any]:
    """One SGD step of a SASRec under DDP on this rank's rows of :func:`toy_sequences`.

    Every rank builds the model from the same seed, takes rows ``rank::world_size`` of a batch
    of ``4 * world_size`` rows, and steps once; DDP averages the gradients. Runs on CPU with the
    gloo backend, as a process started by ``torchrun`` (e.g. by ``TorchDistributor``).

    Args:
        config: :class:`SASRecConfig` fields (dropout must be 0 for a deterministic check).
        seed: Model initialisation seed.
        lr: SGD learning rate, > 0.

    Returns:
        The same value on every rank (``TorchDistributor`` in local mode keeps whichever rank's
        return value is written last): ``world_size``, ``losses`` (each rank's, by rank) and
        ``params`` (each rank's updated weights flattened, by rank, as lists of floats).
    """
    info = rank_info()
    dist.init_process_group("gloo")
    try:
        torch.manual_seed(seed)
        model = SequentialRecommender(SASRecConfig(**config))
        ddp = DistributedDataParallel(LossModule(model))
        opt = torch.optim.SGD(ddp.parameters(), lr=lr)
        cfg = model.config
        rows = toy_sequences(4 * info.world_size, cfg.max_len + 1, cfg.n_items)
        mine = rows[info.rank :: info.world_size]
        loss = ddp(mine[:, :-1], mine[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        params = [torch.empty_like(flat) for _ in range(info.world_size)]
        dist.all_gather(params, flat)
        losses = [torch.empty(1) for _ in range(info.world_size)]
        dist.all_gather(losses, loss.detach().reshape(1))
        return {
            "world_size": info.world_size,
            "losses": [float(v) for v in losses],
            "params": [p.tolist() for p in params],
        }
    finally:
        dist.destroy_process_group()
