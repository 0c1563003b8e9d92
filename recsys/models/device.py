"""Which device to run on, and batch sizes that fit it.

Models are device-agnostic (they create tensors on their inputs' device); callers move the model
and batches to :func:`pick_device` and size batches with :func:`batch_size_for`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

import torch

ModelKind = Literal["two_tower", "ranker", "sasrec"]
Purpose = Literal["train", "score"]

_GIB: Final = 1024**3

#: GPU memory the CUDA defaults below are sized for; larger cards scale them up.
REFERENCE_GPU_GIB: Final = 16.0

#: (CPU, CUDA at REFERENCE_GPU_GIB) rows per batch. Two-tower training wants big batches: every
#: other row is a negative, so the batch size is also the number of negatives per example.
#: SASRec rows are whole sequences whose full-softmax logits take L x n_items floats each.
DEFAULT_BATCH_SIZES: Final[Mapping[tuple[ModelKind, Purpose], tuple[int, int]]] = {
    ("two_tower", "train"): (512, 4096),
    ("two_tower", "score"): (4096, 65536),
    ("ranker", "train"): (64, 512),
    ("ranker", "score"): (8192, 131072),
    ("sasrec", "train"): (32, 128),
    ("sasrec", "score"): (256, 2048),
}


def pick_device() -> torch.device:
    """The current CUDA device when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def choose_batch_size(
    device: torch.device,
    *,
    cpu: int,
    cuda: int,
    memory_bytes: int | None = None,
    max_size: int = 1 << 20,
) -> int:
    """Batch size for ``device``.

    Args:
        device: Where the batch will run.
        cpu: Size on CPU (and any non-CUDA device), >= 1.
        cuda: Size on a CUDA card with :data:`REFERENCE_GPU_GIB` of memory, >= 1.
        memory_bytes: Total memory of the CUDA card; read from the device when None.
        max_size: Upper cap, >= 1.

    Returns:
        ``cpu`` off CUDA; on CUDA ``cuda`` times the power of two nearest below
        ``memory / REFERENCE_GPU_GIB`` (at least 1, so smaller cards keep ``cuda``), capped at
        ``max_size``.
    """
    for name, value in (("cpu", cpu), ("cuda", cuda), ("max_size", max_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: must be an int >= 1, got {value!r}")
    if device.type != "cuda":
        return min(cpu, max_size)
    if memory_bytes is None:
        memory_bytes = torch.cuda.get_device_properties(device).total_memory
    ratio = memory_bytes / (REFERENCE_GPU_GIB * _GIB)
    # Power-of-two steps: a 40 GB card gets 2x, an 80 GB card 4x; batch sizes stay powers of two
    # when the base is, which GPU kernels tile best.
    factor = 1 << max(0, int(ratio).bit_length() - 1)
    return min(cuda * factor, max_size)


def batch_size_for(
    kind: ModelKind,
    device: torch.device,
    purpose: Purpose = "train",
    *,
    memory_bytes: int | None = None,
) -> int:
    """Default batch size for training or scoring ``kind`` on ``device``.

    Args:
        kind: ``"two_tower"``, ``"ranker"`` or ``"sasrec"``.
        device: Where the batch will run.
        purpose: ``"train"`` or ``"score"`` (inference without gradients).
        memory_bytes: Total memory of the CUDA card; read from the device when None.
    """
    key = (kind, purpose)
    if key not in DEFAULT_BATCH_SIZES:
        raise ValueError(f"kind/purpose: no default batch size for {key!r}")
    cpu, cuda = DEFAULT_BATCH_SIZES[key]
    return choose_batch_size(device, cpu=cpu, cuda=cuda, memory_bytes=memory_bytes)
