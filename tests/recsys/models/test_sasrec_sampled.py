"""SASRec's sampled softmax with logQ correction, and the loss selection in SASRecConfig."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from recsys.models.sasrec import (
    SASRecConfig,
    SequentialRecommender,
    full_softmax_loss,
    item_log_q,
    sample_negatives,
    sampled_softmax_logits,
    sampled_softmax_loss,
    uniform_log_q,
)
from recsys.training.loops import build_model, config_dict

TINY = SASRecConfig(
    n_items=12, max_len=8, d_model=16, n_heads=2, n_layers=2, dim_feedforward=32, dropout=0.1
)


def _previous_loss(model: SequentialRecommender, seq: Tensor, targets: Tensor) -> Tensor:
    """SequentialRecommender.loss as it was before the sampled softmax existed (verbatim)."""
    hidden: Tensor = model(seq)
    valid = (targets != 0) & (seq != 0)
    if not bool(valid.any()):
        return hidden.sum() * 0.0
    logits = hidden[valid] @ model.item_emb.weight[1:].T
    loss: Tensor = F.cross_entropy(logits, targets[valid] - 1)
    return loss


def _batch(n_items: int, rows: int = 6, length: int = 8, seed: int = 3) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    seq = torch.randint(1, n_items + 1, (rows, length), generator=gen)
    seq[0, :3] = 0  # some left padding
    return seq


def _hidden_and_weight(m: int, n_items: int, d: int = 8, seed: int = 0) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(m, d, generator=gen, dtype=torch.float64)
    weight = torch.randn(n_items + 1, d, generator=gen, dtype=torch.float64) * 0.7
    return hidden, weight


# --- selection -------------------------------------------------------------------------------


def test_default_is_full_softmax_on_a_small_catalogue_and_sampled_on_a_large_one() -> None:
    assert TINY.loss == "auto"
    assert not TINY.sampled
    assert not SASRecConfig(n_items=9_742).sampled  # ml-latest-small's catalogue
    assert SASRecConfig(n_items=100_000).sampled
    limit = TINY.full_softmax_max_items
    assert not SASRecConfig(n_items=limit).sampled
    assert SASRecConfig(n_items=limit + 1).sampled
    assert SASRecConfig(n_items=12, loss="sampled").sampled
    assert not SASRecConfig(n_items=100_000, loss="full").sampled


def test_default_loss_is_bit_identical_to_the_previous_full_softmax() -> None:
    """Same values, same gradients and the same RNG stream (no negatives are drawn)."""
    seq = _batch(TINY.n_items)
    losses: list[list[Tensor]] = []
    grads: list[Tensor] = []
    rng_after: list[Tensor] = []
    for fn in (lambda m, s, t: m.loss(s, t), _previous_loss):
        torch.manual_seed(0)
        model = SequentialRecommender(TINY).train()  # dropout on: the RNG stream matters
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        run: list[Tensor] = []
        for _ in range(3):
            loss = fn(model, seq[:, :-1], seq[:, 1:])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            run.append(loss.detach())
        losses.append(run)
        grads.append(model.item_emb.weight.grad.clone())  # type: ignore[union-attr]
        rng_after.append(torch.get_rng_state())
    for new, old in zip(*losses, strict=True):
        assert torch.equal(new, old)
    assert torch.equal(grads[0], grads[1])
    assert torch.equal(rng_after[0], rng_after[1])


def test_full_loss_ignores_log_q() -> None:
    torch.manual_seed(0)
    model = SequentialRecommender(replace(TINY, dropout=0.0)).eval()
    seq = _batch(TINY.n_items)
    skewed = item_log_q(torch.arange(TINY.n_items + 1))
    plain = model.loss(seq[:, :-1], seq[:, 1:])
    assert torch.equal(plain, model.loss(seq[:, :-1], seq[:, 1:], skewed))


# --- the estimator ----------------------------------------------------------------------------


@pytest.mark.parametrize("copies", [1, 2, 3])
def test_every_item_as_negatives_under_uniform_q_is_exactly_the_full_softmax(copies: int) -> None:
    """With Q uniform and each item k times among K = k * n negatives, exp(s_j) / (K Q(j))
    summed over the copies is exp(s_j): the normaliser is exact, the target counted once."""
    n, m = 20, 15
    hidden, weight = _hidden_and_weight(m, n)
    targets = torch.randint(1, n + 1, (m,), generator=torch.Generator().manual_seed(1))
    negatives = torch.arange(1, n + 1).repeat(copies)
    uniform = uniform_log_q(n, torch.float64)
    sampled = sampled_softmax_loss(hidden, targets, weight, negatives, uniform)
    full = full_softmax_loss(hidden @ weight.T, targets)
    torch.testing.assert_close(sampled, full, rtol=1e-12, atol=1e-12)


def test_every_item_once_under_a_skewed_q_is_not_the_full_softmax() -> None:
    """The previous test's equality comes from the correction matching Q, not by accident."""
    n, m = 20, 15
    hidden, weight = _hidden_and_weight(m, n)
    targets = torch.randint(1, n + 1, (m,), generator=torch.Generator().manual_seed(1))
    skewed = item_log_q(torch.arange(n + 1) ** 2).double()
    sampled = sampled_softmax_loss(hidden, targets, weight, torch.arange(1, n + 1), skewed)
    full = full_softmax_loss(hidden @ weight.T, targets)
    assert abs(float(sampled - full)) > 0.1


def _normaliser_estimates(log_q: Tensor, *, correct: bool, draws: int = 4000) -> Tensor:
    n, k = log_q.shape[0] - 1, 16
    hidden, weight = _hidden_and_weight(1, n, seed=5)
    target = torch.tensor([3])
    gen = torch.Generator().manual_seed(7)
    out = torch.empty(draws, dtype=torch.float64)
    for i in range(draws):
        neg = sample_negatives(log_q, k, generator=gen)
        used = log_q if correct else torch.full_like(log_q, -math.log(k))  # no correction
        out[i] = sampled_softmax_logits(hidden, target, weight, neg, used).exp().sum()
    return out


def test_the_corrected_normaliser_is_unbiased_under_a_popularity_q() -> None:
    """E[exp(s_t) + sum_k exp(s_k) / (K Q(k))] over the draws is the full sum_j exp(s_j)."""
    n = 50
    log_q = item_log_q(torch.arange(n + 1, dtype=torch.float64) ** 1.5).double()
    hidden, weight = _hidden_and_weight(1, n, seed=5)
    full = float((hidden @ weight[1:].T).exp().sum())
    est = _normaliser_estimates(log_q, correct=True)
    se = float(est.std()) / math.sqrt(len(est))
    assert abs(float(est.mean()) - full) < 4 * se
    # Without the correction the same draws miss by far more than their noise: the test bites.
    raw = _normaliser_estimates(log_q, correct=False)
    assert abs(float(raw.mean()) - full) > 10 * se


def test_with_many_negatives_the_sampled_loss_approaches_the_full_one() -> None:
    n, m = 200, 64
    hidden, weight = _hidden_and_weight(m, n, seed=2)
    targets = torch.randint(1, n + 1, (m,), generator=torch.Generator().manual_seed(3))
    log_q = item_log_q(torch.arange(n + 1, dtype=torch.float64) + 5.0).double()
    full = float(full_softmax_loss(hidden @ weight.T, targets))
    gen = torch.Generator().manual_seed(4)
    few = sampled_softmax_loss(
        hidden, targets, weight, sample_negatives(log_q, 8, generator=gen), log_q
    )
    many = sampled_softmax_loss(
        hidden, targets, weight, sample_negatives(log_q, 20_000, generator=gen), log_q
    )
    assert abs(float(many) - full) < 0.02
    assert abs(float(many) - full) < abs(float(few) - full)


def test_accidental_hits_are_masked_and_only_them() -> None:
    n = 10
    hidden, weight = _hidden_and_weight(3, n)
    targets = torch.tensor([2, 5, 9])
    negatives = torch.tensor([5, 1, 2, 5, 7])
    uniform = uniform_log_q(n, torch.float64)
    logits = sampled_softmax_logits(hidden, targets, weight, negatives, uniform)
    assert logits.shape == (3, 1 + 5)
    hits = torch.isneginf(logits)
    expected = torch.tensor(
        [
            [False, False, False, True, False, False],  # target 2 = negative #2
            [False, True, False, False, True, False],  # target 5 = negatives #0 and #3
            [False, False, False, False, False, False],  # target 9 drawn nowhere
        ]
    )
    assert torch.equal(hits, expected)
    torch.testing.assert_close(logits[:, 0], (hidden * weight[targets]).sum(-1))
    # Corrected by log(K Q) = log(5 / 10) for the uniform Q.
    torch.testing.assert_close(
        logits[2, 1:], hidden[2] @ weight[negatives].T - math.log(5 / n), rtol=1e-12, atol=1e-12
    )


def test_negatives_follow_q_and_never_padding() -> None:
    counts = torch.tensor([0, 0, 1, 3, 0])  # item 1 and 4 unseen: count 1 each
    log_q = item_log_q(counts)
    assert torch.isneginf(log_q[0])
    torch.testing.assert_close(log_q.exp()[1:], torch.tensor([1.0, 1.0, 3.0, 1.0]) / 6)
    draws = sample_negatives(log_q, 60_000, generator=torch.Generator().manual_seed(0))
    assert int(draws.min()) >= 1
    assert int(draws.max()) <= 4
    share = torch.bincount(draws, minlength=5)[1:].double() / len(draws)
    want = torch.tensor([1.0, 1.0, 3.0, 1.0]).double() / 6
    torch.testing.assert_close(share, want, atol=0.01, rtol=0)


# --- the model's sampled path -----------------------------------------------------------------


def test_sampled_model_loss_shapes_gradients_and_bounded_logits(monkeypatch: Any) -> None:
    cfg = replace(TINY, n_items=40, loss="sampled", n_negatives=6)
    torch.manual_seed(0)
    model = SequentialRecommender(cfg).train()
    seq = _batch(cfg.n_items)
    widths: list[int] = []
    real = sampled_softmax_logits

    def spy(*args: Tensor) -> Tensor:
        out = real(*args)
        widths.append(out.shape[1])
        return out

    monkeypatch.setattr("recsys.models.sasrec.sampled_softmax_logits", spy)
    loss = model.loss(seq[:, :-1], seq[:, 1:])
    assert loss.shape == ()
    assert bool(torch.isfinite(loss))
    assert widths == [cfg.n_negatives + 1]  # never (positions, n_items)
    loss.backward()  # type: ignore[no-untyped-call]
    grad = model.item_emb.weight.grad
    assert grad is not None
    touched = (grad.abs().sum(1) > 0).nonzero().flatten().tolist()
    assert 0 not in touched
    # Only inputs, targets and the drawn negatives get gradient rows; here fewer than all.
    assert 0 < len(touched) <= cfg.n_items
    for p in model.encoder.parameters():
        assert p.grad is not None
        assert bool(p.grad.abs().sum() > 0)


def test_sampled_loss_uses_the_given_q() -> None:
    cfg = replace(TINY, n_items=30, loss="sampled", n_negatives=64, dropout=0.0)
    torch.manual_seed(0)
    model = SequentialRecommender(cfg).eval()
    seq = _batch(cfg.n_items)
    only_7 = torch.full((cfg.n_items + 1,), float("-inf"))
    only_7[7] = 0.0  # Q puts all mass on item 7
    torch.manual_seed(1)
    got = model.loss(seq[:, :-1], seq[:, 1:], only_7)
    # Expected by hand: every negative is item 7, corrected by log(K * 1).
    hidden = model(seq[:, :-1])
    valid = seq[:, 1:] != 0
    valid &= seq[:, :-1] != 0
    negatives = torch.full((cfg.n_negatives,), 7)
    want = sampled_softmax_loss(
        hidden[valid], seq[:, 1:][valid], model.item_emb.weight, negatives, only_7
    )
    torch.testing.assert_close(got, want)


def test_sampled_training_learns_a_deterministic_successor() -> None:
    """item i is always followed by item i + 1: sampled training must learn to rank it first."""
    n = 60
    cfg = SASRecConfig(
        n_items=n, max_len=6, d_model=32, n_heads=2, n_layers=1, dim_feedforward=64,
        dropout=0.0, loss="sampled", n_negatives=16, negatives="uniform",
    )  # fmt: skip
    torch.manual_seed(0)
    model = SequentialRecommender(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    starts = torch.arange(1, n - 5)
    seqs = starts.unsqueeze(1) + torch.arange(7).unsqueeze(0)  # (rows, 7), values <= n
    for _ in range(300):
        loss = model.loss(seqs[:, :-1], seqs[:, 1:])
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    model.eval()
    with torch.no_grad():
        top = model.next_item_scores(seqs[:, :-1]).argmax(1)
    assert float((top == seqs[:, -1]).double().mean()) > 0.9


def test_no_real_position_gives_a_differentiable_zero() -> None:
    model = SequentialRecommender(replace(TINY, loss="sampled"))
    seq = torch.tensor([[0, 0, 1]])
    loss = model.loss(seq, torch.zeros_like(seq))
    assert float(loss.detach()) == 0.0
    assert loss.requires_grad


# --- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("loss", "softmax"),
        ("loss", None),
        ("n_negatives", 0),
        ("n_negatives", 2.5),
        ("n_negatives", True),
        ("negatives", "hard"),
        ("full_softmax_max_items", 0),
        ("full_softmax_max_items", "10"),
    ],
)
def test_bad_config_values_name_their_argument(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: .*{value!r}"):
        SASRecConfig(n_items=10, **{field: value})  # type: ignore[arg-type]


def test_bad_loss_inputs_name_their_argument() -> None:
    hidden, weight = _hidden_and_weight(3, 10)
    q = uniform_log_q(10, torch.float64)
    with pytest.raises(ValueError, match=r"^targets:"):
        sampled_softmax_logits(hidden, torch.tensor([1, 2]), weight, torch.tensor([1]), q)
    with pytest.raises(ValueError, match=r"^negatives:"):
        sampled_softmax_logits(hidden, torch.tensor([1, 2, 3]), weight, torch.tensor([]), q)
    with pytest.raises(ValueError, match=r"^log_q:"):
        sampled_softmax_logits(hidden, torch.tensor([1, 2, 3]), weight, torch.tensor([1]), q[:5])
    with pytest.raises(ValueError, match=r"^counts:"):
        item_log_q(torch.tensor([0, -1, 2]))
    with pytest.raises(ValueError, match=r"^counts:"):
        item_log_q(torch.tensor([3]))
    with pytest.raises(ValueError, match=r"^n:"):
        sample_negatives(q, 0)


def test_config_round_trips_through_an_artifact_dict_and_old_dicts_still_load() -> None:
    cfg = SASRecConfig(n_items=50, max_len=4, d_model=8, loss="sampled", n_negatives=7)
    rebuilt = build_model("sasrec", config_dict(cfg))
    assert isinstance(rebuilt, SequentialRecommender)
    assert rebuilt.config == cfg
    old = {k: v for k, v in config_dict(cfg).items() if k not in ("loss", "n_negatives",
           "negatives", "full_softmax_max_items")}  # fmt: skip
    legacy = build_model("sasrec", old)
    assert isinstance(legacy, SequentialRecommender)
    assert legacy.config.loss == "auto"
    assert not legacy.config.sampled
