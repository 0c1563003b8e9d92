"""DCN-v2 ranker: cross-layer maths, both structures, low rank, BCE helper, training."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from recsys.models import CrossLayer, InteractionRanker, RankerConfig, bce_loss
from recsys.models.ranker import Structure

TINY = RankerConfig(
    n_user_buckets=53,
    n_item_buckets=59,
    id_dim=4,
    n_dense=3,
    n_cross_layers=2,
    deep_dims=(16,),
    dropout=0.0,
)


def _batch(b: int, seed: int = 1) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "user_ids": torch.randint(1, 10**9, (b,), generator=g),
        "item_ids": torch.randint(1, 10**9, (b,), generator=g),
        "dense": torch.randn(b, TINY.n_dense, generator=g),
    }


@pytest.mark.parametrize("structure", ["stacked", "parallel"])
@pytest.mark.parametrize("rank", [None, 2])
@pytest.mark.parametrize(("n_cross", "deep"), [(2, (16,)), (0, (16,)), (2, ())])
def test_logits_have_one_value_per_row(
    structure: Structure, rank: int | None, n_cross: int, deep: tuple[int, ...]
) -> None:
    cfg = replace(
        TINY, structure=structure, cross_rank=rank, n_cross_layers=n_cross, deep_dims=deep
    )
    logits = InteractionRanker(cfg)(**_batch(7))
    assert logits.shape == (7,)
    assert bool(torch.isfinite(logits).all())


def test_cross_layer_matches_the_dcn_v2_formula() -> None:
    layer = CrossLayer(3, None)
    assert isinstance(layer.proj, nn.Linear)
    w = torch.tensor([[1.0, 2.0, 0.0], [0.0, -1.0, 1.0], [0.5, 0.0, 0.0]])
    b = torch.tensor([0.1, 0.2, -0.3])
    with torch.no_grad():
        layer.proj.weight.copy_(w)
        layer.proj.bias.copy_(b)
    x0 = torch.tensor([[1.0, -2.0, 3.0]])
    x = torch.tensor([[0.5, 1.0, -1.0]])
    # W x = [2.5, -2.0, 0.25]; + b = [2.6, -1.8, -0.05]; x0 * that = [2.6, 3.6, -0.15]; + x.
    torch.testing.assert_close(layer(x0, x), torch.tensor([[3.1, 4.6, -1.15]]))


def test_low_rank_cross_layer_factorises_w() -> None:
    d, r = 10, 2
    layer = CrossLayer(d, r)
    assert sum(p.numel() for p in layer.parameters()) == 2 * d * r + d
    v, u = layer.proj[0], layer.proj[1]  # type: ignore[index]
    x0, x = torch.randn(4, d), torch.randn(4, d)
    w = u.weight @ v.weight
    torch.testing.assert_close(layer(x0, x), x0 * (x @ w.T + u.bias) + x)


def test_bce_loss_matches_the_formula() -> None:
    logits = torch.tensor([2.0, -1.0, 0.0])
    labels = torch.tensor([1, 0, 1])
    p = [1 / (1 + math.exp(-v)) for v in logits.tolist()]
    hand = -(math.log(p[0]) + math.log(1 - p[1]) + math.log(p[2])) / 3
    assert math.isclose(bce_loss(logits, labels).item(), hand, rel_tol=1e-6)
    weighted = bce_loss(logits, labels, torch.tensor([1.0, 0.0, 0.0]))
    assert math.isclose(weighted.item(), -math.log(p[0]) / 3, rel_tol=1e-6)


@pytest.mark.parametrize("structure", ["stacked", "parallel"])
def test_overfits_random_labels(structure: Structure) -> None:
    torch.manual_seed(0)
    model = InteractionRanker(replace(TINY, structure=structure, cross_rank=2))
    batch = _batch(64)
    labels = (torch.rand(64, generator=torch.Generator().manual_seed(5)) < 0.5).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(300):
        loss = bce_loss(model(**batch), labels)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        accuracy = ((model.eval()(**batch) > 0).float() == labels).float().mean().item()
    assert accuracy == 1.0


def test_state_dict_round_trip(tmp_path: Path) -> None:
    model = InteractionRanker(replace(TINY, cross_rank=3, dropout=0.2)).eval()
    path = tmp_path / "ranker.pt"
    torch.save(model.state_dict(), path)
    loaded = InteractionRanker(replace(TINY, cross_rank=3, dropout=0.2))
    loaded.load_state_dict(torch.load(path, weights_only=True))
    torch.testing.assert_close(loaded.eval()(**_batch(9)), model(**_batch(9)), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_user_buckets", 0),
        ("n_item_buckets", 0),
        ("id_dim", -1),
        ("n_dense", -1),
        ("n_cross_layers", -1),
        ("cross_rank", 0),
        ("structure", "serial"),
        ("deep_dims", (8, -1)),
        ("dropout", -0.5),
    ],
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        replace(TINY, **{field: value})  # type: ignore[arg-type]


def test_config_rejects_an_empty_network() -> None:
    with pytest.raises(ValueError, match=r"^n_cross_layers:"):
        replace(TINY, n_cross_layers=0, deep_dims=())


def test_config_rejects_no_input() -> None:
    with pytest.raises(ValueError, match=r"^id_dim:"):
        replace(TINY, id_dim=0, n_dense=0)


def test_without_id_embeddings_only_dense_features_count() -> None:
    model = InteractionRanker(replace(TINY, id_dim=0))
    batch = _batch(5)
    other = {**batch, "user_ids": batch["user_ids"] + 1, "item_ids": batch["item_ids"] + 7}
    model.eval()
    assert torch.equal(model(**batch), model(**other))
    assert model.user_ids is None
    assert not any("ids" in k for k in model.state_dict())
    changed = {**batch, "dense": batch["dense"] + 1.0}
    assert not torch.equal(model(**batch), model(**changed))


def _fit(
    model: InteractionRanker, batch: dict[str, torch.Tensor], labels: torch.Tensor
) -> tuple[float, float]:
    """BCE before training and after 200 Adam steps (lr 1e-2) on one batch."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    first = bce_loss(model(**batch), labels).item()
    for _ in range(200):
        loss = bce_loss(model(**batch), labels)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    return first, loss.item()


@pytest.mark.parametrize("structure", ["stacked", "parallel"])
def test_base_score_column_starts_as_that_columns_order_and_learns(structure: Structure) -> None:
    cfg = replace(TINY, structure=structure, base_score_column=2)
    model = InteractionRanker(cfg).eval()
    batch = _batch(50)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch), batch["dense"][:, 2], rtol=0, atol=0)
    # Labels that disagree with the base score: training moves away from it.
    labels = (batch["dense"][:, 0] > 0).float()
    first, last = _fit(model, batch, labels)
    assert last < 0.5 * first
    assert "base_weight" in model.state_dict()
    assert "base_weight" not in InteractionRanker(TINY).state_dict()  # old artifacts still load


@pytest.mark.parametrize("value", [-1, 3, 1.0, True])
def test_base_score_column_must_be_a_dense_column(value: object) -> None:
    with pytest.raises(ValueError, match=r"^base_score_column:"):
        replace(TINY, base_score_column=value)  # type: ignore[arg-type]


def test_linear_columns_start_at_zero_and_learn_a_linear_score() -> None:
    cfg = replace(TINY, id_dim=0, base_score_column=2, linear_columns=(0,))
    model = InteractionRanker(cfg).eval()
    batch = _batch(200)
    with torch.no_grad():  # weight 0: the untrained ranker is still the base column exactly
        torch.testing.assert_close(model(**batch), batch["dense"][:, 2], rtol=0, atol=0)
    # Labels driven by column 0 alone: its straight weight grows from 0 and the loss falls.
    labels = (batch["dense"][:, 0] > 0).float()
    first, last = _fit(model, batch, labels)
    assert last < 0.5 * first
    assert model.linear_weight is not None
    assert float(model.linear_weight.detach()[0]) > 0.2
    assert "linear_weight" not in InteractionRanker(TINY).state_dict()  # old artifacts still load


@pytest.mark.parametrize("value", [(3,), (-1,), (0, 0), (2,), [0], (True,)])
def test_linear_columns_must_be_distinct_dense_columns_other_than_the_base(value: object) -> None:
    with pytest.raises(ValueError, match=r"^linear_columns:"):
        replace(TINY, base_score_column=2, linear_columns=value)  # type: ignore[arg-type]
