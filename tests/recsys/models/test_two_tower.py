"""Two-tower model: hashing, tower outputs, logQ-corrected in-batch softmax, id dropout."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from recsys.models import (
    TwoTower,
    TwoTowerConfig,
    hash_ids,
    in_batch_logits,
    in_batch_softmax_loss,
)

TINY = TwoTowerConfig(
    n_user_buckets=97,
    n_item_buckets=101,
    id_dim=8,
    user_dense_dim=3,
    content_dim=6,
    content_proj_dim=4,
    n_genres=5,
    hidden_dims=(16,),
    out_dim=8,
    dropout=0.0,
)


def _users(b: int, cfg: TwoTowerConfig = TINY, seed: int = 1) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    history = torch.randint(1, 500, (b, 4), generator=g)
    if b >= 2:
        history[0] = 0  # no history at all
        history[1, :2] = 0
    return {
        "user_ids": torch.randint(1, 1000, (b,), generator=g),
        "user_dense": torch.randn(b, cfg.user_dense_dim, generator=g),
        "history": history,
    }


def _items(b: int, cfg: TwoTowerConfig = TINY, seed: int = 2) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "item_ids": torch.arange(1, b + 1) * 13,
        "item_content": F.normalize(torch.randn(b, cfg.content_dim, generator=g), dim=-1),
        "item_genres": (torch.rand(b, cfg.n_genres, generator=g) < 0.3).float(),
        "item_year": torch.randn(b, generator=g),
    }


def test_hash_maps_any_id_into_range_deterministically() -> None:
    ids = torch.tensor([0, 1, 2, 3, 10**12, -7, 2**62, 2_147_483_647])
    rows = hash_ids(ids, 101)
    assert rows.dtype == torch.int64
    assert rows[0] == 0
    assert bool(((rows[1:] >= 1) & (rows[1:] <= 101)).all())
    assert torch.equal(rows, hash_ids(ids.clone(), 101))
    small = [0, 1, 2, 3, 5]  # the ids that fit in int32
    assert torch.equal(hash_ids(ids[small].int(), 101), rows[small])
    # Fixed constants: a change would silently remap every trained embedding row.
    assert hash_ids(torch.tensor([1, 2, 3]), 1000).tolist() == [649, 487, 972]


def test_hash_spreads_ids_that_share_a_stride() -> None:
    n = 100
    strided = torch.arange(1, 51) * n  # all in one bucket under ``id mod n``
    assert len(set(hash_ids(strided, n).tolist())) > 35
    adjacent = hash_ids(torch.arange(1, 101), n)
    assert len(set(adjacent.tolist())) > 55  # about 1 - 1/e of buckets for a random map


def test_hash_rejects_floats_and_bad_bucket_counts() -> None:
    with pytest.raises(TypeError, match="ids"):
        hash_ids(torch.tensor([1.0]), 10)
    with pytest.raises(ValueError, match="n_buckets"):
        hash_ids(torch.tensor([1]), 0)


def test_outputs_have_shapes_and_unit_norm() -> None:
    model = TwoTower(TINY)
    out = model(**_users(6), **_items(6))
    assert out.user.shape == (6, TINY.out_dim)
    assert out.item.shape == (6, TINY.out_dim)
    assert out.temperature.shape == ()
    torch.testing.assert_close(out.user.norm(dim=-1), torch.ones(6))
    torch.testing.assert_close(out.item.norm(dim=-1), torch.ones(6))
    assert math.isclose(out.temperature.item(), TINY.init_temperature, rel_tol=1e-6)


def test_unseen_ids_still_embed() -> None:
    model = TwoTower(TINY).eval()
    users = _users(3)
    users["user_ids"] = torch.tensor([10**15, 0, -3])
    users["history"] = torch.tensor([[10**13, 0, 0, 0], [0] * 4, [5, 6, 7, 8]])
    emb = model.user_embedding(**users)
    assert bool(torch.isfinite(emb).all())
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))


def test_history_mean_ignores_padding() -> None:
    model = TwoTower(TINY).eval()
    users = _users(1)
    users["history"] = torch.tensor([[11, 22, 0, 0]])
    a = model.user_embedding(**users)
    users["history"] = torch.tensor([[0, 11, 0, 22, 0, 0]])
    torch.testing.assert_close(model.user_embedding(**users), a)


def test_logq_subtracts_log_q_per_column() -> None:
    user = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]), dim=-1)
    item = F.normalize(torch.tensor([[1.0, 1.0], [1.0, 0.0], [-1.0, 2.0]]), dim=-1)
    q = torch.tensor([0.5, 0.3, 0.2])
    ids = torch.tensor([10, 20, 30])
    t = 0.25
    got = in_batch_logits(user, item, t, ids, torch.log(q))
    expected = torch.tensor(
        [
            [
                sum(float(user[i, k] * item[j, k]) for k in range(2)) / t - math.log(float(q[j]))
                for j in range(3)
            ]
            for i in range(3)
        ]
    )
    torch.testing.assert_close(got, expected)
    plain = in_batch_logits(user, item, t, ids)
    torch.testing.assert_close(got - plain, -torch.log(q).expand(3, 3))
    loss = in_batch_softmax_loss(user, item, t, ids, torch.log(q))
    hand = -sum(float(expected[i, i] - torch.logsumexp(expected[i], 0)) for i in range(3)) / 3
    assert math.isclose(float(loss), hand, rel_tol=1e-5)


def test_accidental_hits_are_masked() -> None:
    torch.manual_seed(3)
    user = F.normalize(torch.randn(3, 4), dim=-1)
    item = F.normalize(torch.randn(3, 4), dim=-1)
    ids = torch.tensor([5, 7, 5])
    logits = in_batch_logits(user, item, 0.1, ids)
    masked = torch.zeros(3, 3, dtype=torch.bool)
    masked[0, 2] = masked[2, 0] = True
    assert bool(torch.isneginf(logits[masked]).all())
    assert bool(torch.isfinite(logits[~masked]).all())
    loss = in_batch_softmax_loss(user, item, 0.1, ids)
    raw = user @ item.T / 0.1
    hand = (
        -(raw[0, 0] - torch.logsumexp(raw[0, [0, 1]], 0))
        - (raw[1, 1] - torch.logsumexp(raw[1], 0))
        - (raw[2, 2] - torch.logsumexp(raw[2, [1, 2]], 0))
    ) / 3
    torch.testing.assert_close(loss, hand)


def test_temperature_is_clamped() -> None:
    model = TwoTower(TINY)
    with torch.no_grad():
        model.log_temperature.fill_(10.0)
    assert math.isclose(model.temperature().item(), TINY.max_temperature, rel_tol=1e-6)
    with torch.no_grad():
        model.log_temperature.fill_(-10.0)
    assert math.isclose(model.temperature().item(), TINY.min_temperature, rel_tol=1e-6)


def test_id_dropout_acts_only_in_training() -> None:
    model = TwoTower(replace(TINY, id_dropout=1.0))
    items = _items(4)
    cold = {**items, "item_ids": torch.zeros(4, dtype=torch.int64)}
    other = {**items, "item_ids": items["item_ids"] + 1}
    model.train()
    trained = model.item_embedding(**items)
    torch.testing.assert_close(trained, model.item_embedding(**other))
    torch.testing.assert_close(trained, model.eval().item_embedding(**cold))
    users = _users(4)
    model.train()
    a = model.user_embedding(**users)
    b = model.user_embedding(**{**users, "user_ids": users["user_ids"] + 1})
    torch.testing.assert_close(a, b)
    model.eval()
    assert not torch.allclose(model.item_embedding(**items), model.item_embedding(**other))
    assert not torch.allclose(trained, model.item_embedding(**items))


def test_id_dropout_drops_about_p_of_rows() -> None:
    model = TwoTower(replace(TINY, id_dropout=0.5))
    items = _items(400)
    cold = model.eval().item_embedding(**{**items, "item_ids": torch.zeros(400, dtype=torch.long)})
    dropped = (model.train().item_embedding(**items) - cold).abs().amax(dim=-1) < 1e-6
    assert 150 < int(dropped.sum()) < 250


def _train(model: TwoTower, users: dict[str, Tensor], items: dict[str, Tensor], steps: int) -> Any:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    log_q = torch.full((items["item_ids"].shape[0],), -math.log(16.0))
    losses = []
    for _ in range(steps):
        out = model(**users, **items)
        loss = in_batch_softmax_loss(out.user, out.item, out.temperature, items["item_ids"], log_q)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        losses.append(loss.item())
    return losses


def _recall_at_1(model: TwoTower, users: dict[str, Tensor], items: dict[str, Tensor]) -> float:
    model.eval()
    with torch.no_grad():
        scores = model.user_embedding(**users) @ model.item_embedding(**items).T
    return float((scores.argmax(dim=1) == torch.arange(scores.shape[0])).float().mean())


def test_overfits_a_tiny_problem() -> None:
    torch.manual_seed(0)
    model = TwoTower(TINY)
    users, items = _users(16), _items(16)
    before = _recall_at_1(model, users, items)
    losses = _train(model.train(), users, items, 200)
    assert losses[-1] < 0.5 * losses[0]
    assert _recall_at_1(model, users, items) >= 0.9 > before


def test_id_dropout_teaches_the_content_path_for_cold_items() -> None:
    torch.manual_seed(0)
    model = TwoTower(replace(TINY, id_dropout=0.5))
    users, items = _users(16), _items(16)
    _train(model.train(), users, items, 300)
    cold = {**items, "item_ids": torch.zeros(16, dtype=torch.int64)}
    assert _recall_at_1(model, users, cold) >= 0.9  # about 0.7 with id_dropout=0


def test_state_dict_round_trip(tmp_path: Path) -> None:
    model = TwoTower(TINY).eval()
    path = tmp_path / "two_tower.pt"
    torch.save(model.state_dict(), path)
    loaded = TwoTower(TINY)
    loaded.load_state_dict(torch.load(path, weights_only=True))
    loaded.eval()
    a, b = model(**_users(5), **_items(5)), loaded(**_users(5), **_items(5))
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_user_buckets", 0),
        ("n_item_buckets", -1),
        ("id_dim", 0),
        ("user_dense_dim", -1),
        ("content_dim", 0),
        ("content_proj_dim", 0),
        ("n_genres", -1),
        ("hidden_dims", (16, 0)),
        ("hidden_dims", [16]),
        ("out_dim", 0),
        ("dropout", 1.0),
        ("id_dropout", 1.5),
        ("id_dropout", -0.1),
        ("min_temperature", 0.0),
        ("max_temperature", 0.001),
        ("init_temperature", 5.0),
        ("id_dim", True),
    ],
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        replace(TINY, **{field: value})  # type: ignore[arg-type]


def test_id_buckets_grow_with_the_population_up_to_a_cap() -> None:
    from recsys.models.two_tower import MAX_ID_BUCKETS, id_buckets

    assert id_buckets(0) == 1024
    assert id_buckets(100) == 1024
    assert id_buckets(10_000) == 40_000
    assert id_buckets(100_000) == 400_000  # the product's item cap: four buckets per item
    assert id_buckets(1_000_000) == MAX_ID_BUCKETS == id_buckets(10**9)
    assert id_buckets(50, per_id=2, minimum=1, maximum=60) == 60
    for kw, name in (
        ({"n_ids": -1}, "n_ids"),
        ({"n_ids": 5, "per_id": 0}, "per_id"),
        ({"n_ids": 5, "minimum": 0}, "minimum"),
        ({"n_ids": 5, "minimum": 10, "maximum": 9}, "maximum"),
    ):
        with pytest.raises(ValueError, match=f"^{name}:"):
            id_buckets(**kw)  # type: ignore[arg-type]
