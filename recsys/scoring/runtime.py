"""What Spark's Python workers share: broadcast model payloads, a per-process cache, threads.

A model travels to the workers as a :class:`ModelPayload` (config and ``state_dict`` bytes) in a
Spark broadcast, and is rebuilt at most once per Python worker process: :func:`cached` keeps it
at module level keyed by a token (model name and version, or a per-call uuid for arrays), and
``spark.python.worker.reuse`` (on by default) keeps the process across tasks and batches.
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

import torch

from recsys.models.device import pick_device
from recsys.training.artifacts import WEIGHTS, Artifact

if TYPE_CHECKING:
    from pyspark.broadcast import Broadcast
    from pyspark.sql import SparkSession

T = TypeVar("T")

#: Entries the per-worker cache keeps (least recently used goes first).
CACHE_SIZE: Final = 8

_CACHE: OrderedDict[str, Any] = OrderedDict()
_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class ModelPayload:
    """A model as plain data, small enough to broadcast (weights as ``torch.save`` bytes).

    Attributes:
        model_name: ``two_tower``, ``sasrec`` or ``ranker``.
        version: Artifact version; with ``model_name`` the worker cache key.
        config: The artifact's model config.
        weights: ``state_dict`` serialised by :func:`torch.save` (loaded with weights_only).
    """

    model_name: str
    version: str
    config: dict[str, Any]
    weights: bytes

    @property
    def key(self) -> str:
        return self.model_name + "/" + self.version

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> ModelPayload:
        return cls(
            artifact.model_name,
            artifact.version,
            dict(artifact.config),
            (artifact.path / WEIGHTS).read_bytes(),
        )

    @classmethod
    def from_module(
        cls, model_name: str, version: str, config: dict[str, Any], model: torch.nn.Module
    ) -> ModelPayload:
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
        return cls(model_name, version, config, buffer.getvalue())

    def build(self, device: torch.device) -> torch.nn.Module:
        """The module in eval mode on ``device``."""
        from recsys.training.loops import build_model

        model = build_model(self.model_name, self.config)  # type: ignore[arg-type]
        state = torch.load(io.BytesIO(self.weights), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return model.to(device).eval()


def cached(key: str, make: Callable[[], T]) -> T:
    """The value cached under ``key`` in this process, made by ``make()`` on first use."""
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]  # type: ignore[no-any-return]
    value = make()
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return value


def clear_cache() -> None:
    """Drop everything :func:`cached` holds in this process (tests)."""
    with _LOCK:
        _CACHE.clear()


def task_slots(spark: SparkSession) -> int:
    """Tasks that run at once per executor: N of ``local[N]`` (cores for ``local[*]``), else
    ``spark.executor.cores / spark.task.cpus`` (1 when unset)."""
    master = str(spark.sparkContext.master or "local[*]")
    cores = os.cpu_count() or 1
    if master.startswith("local"):
        inner = master[master.find("[") + 1 : master.find("]")] if "[" in master else "1"
        n = inner.split(",")[0]
        return cores if n == "*" else max(1, int(n))
    conf = spark.sparkContext.getConf()
    executor_cores = int(conf.get("spark.executor.cores", "1") or 1)
    task_cpus = int(conf.get("spark.task.cpus", "1") or 1)
    return max(1, executor_cores // task_cpus)


def shuffle_slots(spark: SparkSession) -> int:
    """Partitions for a by-user repartition before a UDF: ``spark.sql.shuffle.partitions``, at
    least :func:`task_slots`. An explicit count that AQE leaves alone, so nobody needs to ask the
    shuffled plan for its partitions (which runs the shuffle once more)."""
    shuffle = int(spark.conf.get("spark.sql.shuffle.partitions") or 1)
    return max(task_slots(spark), shuffle)


def worker_threads(spark: SparkSession) -> int:
    """torch threads per Python worker: this machine's cores shared by :func:`task_slots` in
    local mode; ``spark.task.cpus`` on a cluster."""
    master = str(spark.sparkContext.master or "local[*]")
    if master.startswith("local"):
        return max(1, (os.cpu_count() or 1) // task_slots(spark))
    return max(1, int(spark.sparkContext.getConf().get("spark.task.cpus", "1") or 1))


def set_threads(n: int) -> None:
    """``torch.set_num_threads(n)`` once per process (changing it per batch is not free)."""
    if n >= 1 and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def worker_model(
    payload: Broadcast[ModelPayload], key: str, threads: int
) -> tuple[torch.nn.Module, torch.device]:
    """In a Python worker: torch's threads set, the device picked, and the broadcast model built
    on it once per process (:func:`cached` under ``key`` and the device)."""
    set_threads(threads)
    device = pick_device()
    return cached(key + "@" + str(device), lambda: payload.value.build(device)), device
