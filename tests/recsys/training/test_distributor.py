"""Data-parallel training pieces, and one real DDP step under Spark's TorchDistributor."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import torch

from recsys.models.sasrec import SASRecConfig, SequentialRecommender
from recsys.training.distributed import RankInfo, ddp_sasrec_step, rank_info, toy_sequences
from recsys.training.loops import config_dict

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CONFIG = SASRecConfig(
    n_items=30, max_len=5, d_model=8, n_heads=1, n_layers=1, dim_feedforward=16, dropout=0.0,
    loss="full",
)  # fmt: skip
SEED, LR = 3, 0.5


def test_rank_info_reads_torchrun_env_and_defaults_to_one_process() -> None:
    assert rank_info({}) == RankInfo(0, 1, 0)
    assert rank_info({}).is_zero
    assert rank_info({}).petastorm_shard() == {}
    info = rank_info({"RANK": "2", "WORLD_SIZE": "4", "LOCAL_RANK": "0"})
    assert info == RankInfo(2, 4, 0)
    assert not info.is_zero
    assert info.petastorm_shard() == {"cur_shard": 2, "shard_count": 4}


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"RANK": "x"}, "^RANK:"),
        ({"RANK": "4", "WORLD_SIZE": "4"}, "^rank:"),
        ({"WORLD_SIZE": "0"}, "^world_size:"),
        ({"LOCAL_RANK": "-1"}, "^local_rank:"),
    ],
)
def test_rank_info_rejects_bad_env(env: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rank_info(env)


def _single_process_step(world_size: int) -> list[float]:
    """The same step on the whole batch in one process: what DDP must reproduce."""
    torch.manual_seed(SEED)
    model = SequentialRecommender(CONFIG)
    rows = toy_sequences(4 * world_size, CONFIG.max_len + 1, CONFIG.n_items)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss = model.loss(rows[:, :-1], rows[:, 1:])
    opt.zero_grad()
    loss.backward()  # type: ignore[no-untyped-call]
    opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()


@pytest.fixture
def _loopback_gloo() -> Iterator[None]:
    old = os.environ.get("GLOO_SOCKET_IFNAME")
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # the rank processes talk over loopback only
    yield
    if old is None:
        del os.environ["GLOO_SOCKET_IFNAME"]
    else:
        os.environ["GLOO_SOCKET_IFNAME"] = old


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.usefixtures("_loopback_gloo")
def test_torch_distributor_runs_a_ddp_step_equal_to_the_single_process_one(
    spark: SparkSession,
) -> None:
    from pyspark.ml.torch.distributor import TorchDistributor

    distributor = TorchDistributor(num_processes=2, local_mode=True, use_gpu=False)
    out = distributor.run(ddp_sasrec_step, config_dict(CONFIG), SEED, LR)
    assert isinstance(out, dict)
    assert out["world_size"] == 2
    rank0, rank1 = (torch.tensor(p) for p in out["params"])
    assert torch.equal(rank0, rank1)  # the all-reduce happened: both ranks hold one model
    assert out["losses"][0] != out["losses"][1]  # ... although their halves of the batch differ
    torch.testing.assert_close(
        rank0, torch.tensor(_single_process_step(2)), rtol=1e-5, atol=1e-6
    )
    # And the step moved the weights (the comparison above is not trivially true).
    torch.manual_seed(SEED)
    initial = torch.cat([p.detach().flatten() for p in SequentialRecommender(CONFIG).parameters()])
    assert float((rank0 - initial).abs().max()) > 1e-3


def test_ddp_step_refuses_to_run_outside_torchrun() -> None:
    env = {k: os.environ.pop(k) for k in ("MASTER_ADDR", "MASTER_PORT") if k in os.environ}
    try:
        with pytest.raises((ValueError, RuntimeError)):
            ddp_sasrec_step(config_dict(CONFIG), SEED, LR)
    finally:
        os.environ.update(env)
