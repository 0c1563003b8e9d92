"""SASRec: causality, padding invariance, full-softmax loss, tied embeddings, training."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from recsys.models import SASRecConfig, SequentialRecommender, full_softmax_loss

TINY = SASRecConfig(
    n_items=12, max_len=8, d_model=16, n_heads=2, n_layers=2, dim_feedforward=32, dropout=0.1
)


def _model(cfg: SASRecConfig = TINY) -> SequentialRecommender:
    torch.manual_seed(0)
    return SequentialRecommender(cfg).eval()


def test_shapes_and_padding_column() -> None:
    model = _model()
    seq = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    assert model(seq).shape == (2, 5, TINY.d_model)
    assert model.user_representation(seq).shape == (2, TINY.d_model)
    scores = model.next_item_scores(seq)
    assert scores.shape == (2, TINY.n_items + 1)
    assert bool(torch.isneginf(scores[:, 0]).all())
    assert bool(torch.isfinite(scores[:, 1:]).all())


def test_output_embedding_is_tied_to_the_input_one() -> None:
    model = _model()
    seq = torch.tensor([[1, 2, 3]])
    rep = model.user_representation(seq)
    torch.testing.assert_close(
        model.next_item_scores(seq)[:, 1:], rep @ model.item_emb.weight[1:].T
    )


def test_causal_mask_keeps_the_future_out() -> None:
    model = _model()
    seq = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7]])
    changed = seq.clone()
    changed[0, 5] = 11
    a, b = model(seq), model(changed)
    torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=0)
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_padding_does_not_change_real_positions() -> None:
    model = _model()
    core = torch.tensor([[4, 9, 2]])
    left = torch.tensor([[0, 0, 0, 4, 9, 2]])
    right = torch.tensor([[4, 9, 2, 0, 0]])
    h = model(core)
    torch.testing.assert_close(model(left)[:, 3:], h)
    torch.testing.assert_close(model(right)[:, :3], h)
    assert not model(left)[:, :3].any()  # padding positions are zeroed
    for seq in (left, right):
        torch.testing.assert_close(model.next_item_scores(seq), model.next_item_scores(core))
    batch = torch.tensor([[0, 0, 0, 4, 9, 2], [1, 2, 3, 4, 5, 6]])  # padded next to a full row
    torch.testing.assert_close(model(batch)[:1, 3:], h)


def _record_widths(model: SequentialRecommender) -> list[int]:
    """Wrap the model's embedding step (the start of every encoder pass) so each call appends
    the width ``L`` it ran at to the list."""
    widths: list[int] = []
    embed = model._embed

    def spy(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        widths.append(int(x.shape[1]))
        return embed(x)

    model._embed = spy  # type: ignore[method-assign,assignment]
    return widths


def test_user_representation_drops_shared_padding_columns_without_changing_the_result() -> None:
    """The columns that are padding in every row are cut before the transformer runs: same
    vectors as the full forward pass, and the transformer sees only the needed width."""
    model = _model()
    seq = torch.tensor([[0, 0, 0, 0, 4, 9, 2, 0], [0, 0, 0, 5, 1, 2, 3, 0], [0] * 8])
    hidden = model(seq)  # the untrimmed pass, read at each row's last real item
    want = torch.stack([hidden[0, 6], hidden[1, 6], torch.zeros(TINY.d_model)])
    widths = _record_widths(model)
    torch.testing.assert_close(model.user_representation(seq), want)
    assert widths == [4]  # columns 3..6
    assert not model.user_representation(torch.zeros(2, 8, dtype=torch.long)).any()


def test_user_representation_chunks_rows_by_length_without_changing_the_result() -> None:
    """Rows are run in chunks of similar length, each as wide as its own longest history: one
    long history no longer sets the width of every row, and the vectors (unsorted back into
    the input order) equal those of one full-width pass."""
    model = _model()
    g = torch.Generator().manual_seed(0)
    lengths = [8, 1, 0, 2, 7, 1, 3, 2, 8]
    seq = torch.zeros(len(lengths), 8, dtype=torch.long)
    for r, n in enumerate(lengths):
        if n:
            seq[r, 8 - n :] = torch.randint(1, TINY.n_items + 1, (n,), generator=g)
    want = model.user_representation(seq, chunk_rows=len(lengths))  # one chunk: full width
    widths = _record_widths(model)
    got = model.user_representation(seq, chunk_rows=3)
    torch.testing.assert_close(got, want)
    assert not got[2].any()  # the empty history stays the zero vector
    # sorted lengths 0 1 1 | 2 2 3 | 7 8 8: each chunk as wide as its longest row
    assert widths == [1, 3, 8]
    with pytest.raises(ValueError, match="chunk_rows"):
        model.user_representation(seq, chunk_rows=0)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_last_layer_for_the_read_position_only_equals_the_full_pass(n_layers: int) -> None:
    """The representation runs the last encoder layer for each row's read position only; it
    equals the full forward pass read there, with left, right and no padding in one batch."""
    model = _model(replace(TINY, n_layers=n_layers))
    g = torch.Generator().manual_seed(n_layers)
    seq = torch.randint(1, TINY.n_items + 1, (6, 8), generator=g)
    seq[0, :5] = 0  # left padding
    seq[1, 6:] = 0  # right padding
    seq[2, :2] = 0
    seq[2, 7:] = 0  # both sides
    seq[3] = 0  # no history
    hidden = model(seq)
    last = torch.tensor([7, 5, 6, 0, 7, 7])
    want = hidden[torch.arange(6), last]
    torch.testing.assert_close(model.user_representation(seq), want)
    assert not model.user_representation(seq)[3].any()


def test_padding_only_row_is_zero_and_finite() -> None:
    model = _model().train()
    seq = torch.tensor([[0, 0, 0], [0, 1, 2]])
    h = model(seq)
    assert bool(torch.isfinite(h).all())
    assert not model.eval().user_representation(seq)[0].any()


def test_full_softmax_loss_equals_cross_entropy_over_real_items() -> None:
    logits = torch.tensor(
        [
            [9.0, 1.0, 2.0, 0.5, -1.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [5.0, -2.0, 0.3, 3.0, 1.0],
            [-3.0, 0.7, 0.1, 0.2, 2.5],
        ]
    )
    targets = torch.tensor([2, 0, 3, 4])  # row 1 is padding
    keep = torch.tensor([0, 2, 3])
    expected = F.cross_entropy(logits[keep, 1:], targets[keep] - 1)
    torch.testing.assert_close(full_softmax_loss(logits, targets), expected)
    hand = -sum(
        float(logits[i, targets[i]] - torch.logsumexp(logits[i, 1:], 0)) for i in keep.tolist()
    ) / len(keep)
    assert abs(full_softmax_loss(logits, targets).item() - hand) < 1e-5
    empty = full_softmax_loss(logits, torch.zeros(4, dtype=torch.long))
    assert empty.item() == 0.0


def test_model_loss_is_full_softmax_at_every_real_position() -> None:
    model = _model()
    items = torch.tensor([[0, 0, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6]])
    seq, targets = items[:, :-1], items[:, 1:]
    logits = model(seq) @ model.item_emb.weight.T
    valid = (seq != 0) & (targets != 0)
    expected = F.cross_entropy(logits[valid][:, 1:], targets[valid] - 1)
    torch.testing.assert_close(model.loss(seq, targets), expected)


def test_rejects_sequences_longer_than_max_len() -> None:
    with pytest.raises(ValueError, match="max_len"):
        _model()(torch.ones(1, TINY.max_len + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="seq"):
        _model()(torch.ones(1, 3))


def test_overfits_a_deterministic_successor_rule() -> None:
    # Item i is always followed by perm[i]: every next item is predictable from the last one.
    gen = torch.Generator().manual_seed(3)
    perm = torch.randperm(TINY.n_items, generator=gen) + 1
    succ = {i + 1: int(perm[i]) for i in range(TINY.n_items)}
    rows = []
    for start in range(1, TINY.n_items + 1):
        row = [start]
        while len(row) < TINY.max_len + 1:
            row.append(succ[row[-1]])
        rows.append(row)
    items = torch.tensor(rows)
    items[:4, :3] = 0  # some left padding
    seq, targets = items[:, :-1], items[:, 1:]
    model = SequentialRecommender(TINY).train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(150):
        loss = model.loss(seq, targets)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    with torch.no_grad():
        predicted = model.next_item_scores(seq).argmax(dim=1)
    assert (predicted == targets[:, -1]).float().mean().item() >= 0.9


def test_state_dict_round_trip(tmp_path: Path) -> None:
    model = _model()
    path = tmp_path / "sasrec.pt"
    torch.save(model.state_dict(), path)
    loaded = SequentialRecommender(TINY)
    loaded.load_state_dict(torch.load(path, weights_only=True))
    seq = torch.tensor([[0, 3, 1, 4], [1, 5, 9, 2]])
    torch.testing.assert_close(
        loaded.eval().next_item_scores(seq), model.next_item_scores(seq), rtol=0, atol=0
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_items", 0),
        ("max_len", 0),
        ("d_model", 15),  # not divisible by n_heads=2
        ("d_model", 0),
        ("n_heads", 0),
        ("n_layers", 0),
        ("dim_feedforward", 0),
        ("dropout", 1.0),
    ],
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        replace(TINY, **{field: value})  # type: ignore[arg-type]


def test_positives_only_must_be_a_bool() -> None:
    assert SASRecConfig(n_items=3).positives_only is True
    assert SASRecConfig(n_items=3, positives_only=False).positives_only is False
    with pytest.raises(ValueError, match="positives_only"):
        SASRecConfig(n_items=3, positives_only="no")  # type: ignore[arg-type]


def test_loss_of_a_batch_without_targets_is_zero_and_differentiable() -> None:
    model = _model().train()
    seq = torch.tensor([[0, 0, 3]])
    loss = model.loss(seq, torch.zeros_like(seq))
    assert loss.item() == 0.0
    loss.backward()  # type: ignore[no-untyped-call]
