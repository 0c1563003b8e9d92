"""Device choice and per-device batch sizes; a CUDA smoke test where a GPU is present."""

from __future__ import annotations

import pytest
import torch

from recsys.models import (
    InteractionRanker,
    RankerConfig,
    SASRecConfig,
    SequentialRecommender,
    TwoTower,
    TwoTowerConfig,
    batch_size_for,
    choose_batch_size,
    in_batch_softmax_loss,
    pick_device,
)
from recsys.models.device import DEFAULT_BATCH_SIZES

GIB = 1024**3
CPU = torch.device("cpu")
CUDA = torch.device("cuda", 0)


def test_pick_device_prefers_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device() == CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert pick_device() == torch.device("cuda", 1)


@pytest.mark.parametrize(
    ("memory_gib", "expected"),
    [(8, 1000), (16, 1000), (24, 1000), (40, 2000), (80, 4000), (141, 8000)],
)
def test_cuda_batch_scales_with_memory_in_powers_of_two(memory_gib: int, expected: int) -> None:
    got = choose_batch_size(CUDA, cpu=10, cuda=1000, memory_bytes=memory_gib * GIB)
    assert got == expected


def test_cpu_and_cap() -> None:
    assert choose_batch_size(CPU, cpu=10, cuda=1000) == 10
    assert choose_batch_size(CUDA, cpu=10, cuda=1000, memory_bytes=80 * GIB, max_size=3000) == 3000


@pytest.mark.parametrize("name", ["cpu", "cuda", "max_size"])
def test_bad_sizes_are_rejected(name: str) -> None:
    sizes = {"cpu": 1, "cuda": 1, "max_size": 1, name: 0}
    with pytest.raises(ValueError, match=f"^{name}:"):
        choose_batch_size(CPU, **sizes)


def test_every_model_has_defaults_for_both_purposes() -> None:
    for kind in ("two_tower", "ranker", "sasrec"):
        for purpose in ("train", "score"):
            cpu, cuda = DEFAULT_BATCH_SIZES[(kind, purpose)]
            assert batch_size_for(kind, CPU, purpose) == cpu
            assert batch_size_for(kind, CUDA, purpose, memory_bytes=80 * GIB) == 4 * cuda
    with pytest.raises(ValueError, match="kind"):
        batch_size_for("bert4rec", CPU)  # type: ignore[arg-type]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_models_run_on_cuda() -> None:
    device = pick_device()
    assert device.type == "cuda"
    torch.manual_seed(0)
    tt = TwoTower(TwoTowerConfig(content_dim=8, n_genres=3, user_dense_dim=2)).to(device)
    b = 4
    out = tt(
        user_ids=torch.arange(1, b + 1, device=device),
        user_dense=torch.randn(b, 2, device=device),
        history=torch.randint(0, 50, (b, 5), device=device),
        item_ids=torch.arange(1, b + 1, device=device),
        item_content=torch.randn(b, 8, device=device),
        item_genres=torch.ones(b, 3, device=device),
        item_year=torch.zeros(b, device=device),
    )
    log_q = torch.full((b,), -3.0, device=device)
    loss = in_batch_softmax_loss(out.user, out.item, out.temperature, torch.arange(b), log_q)
    loss.backward()  # type: ignore[no-untyped-call]
    ranker = InteractionRanker(RankerConfig(n_dense=2)).to(device)
    logits = ranker(torch.arange(b, device=device), torch.arange(b, device=device), out.user[:, :2])
    assert logits.device.type == "cuda"
    sasrec = SequentialRecommender(SASRecConfig(n_items=30, max_len=6)).to(device)
    seq = torch.tensor([[0, 0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10]], device=device)
    sasrec.loss(seq[:, :-1], seq[:, 1:]).backward()  # type: ignore[no-untyped-call]
    assert sasrec.next_item_scores(seq).shape == (2, 31)
