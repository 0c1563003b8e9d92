"""Epoch order of training rows and the event sequences SASRec reads (no Spark needed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pytest
import torch

from recsys.training import data as D
from recsys.warehouse.tables import Col


class FakeConverter:
    """Stands in for a petastorm converter: ``len()`` and ``make_torch_dataloader``."""

    def __init__(self, rows: dict[str, torch.Tensor]) -> None:
        self.rows = rows
        self.calls: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(next(iter(self.rows.values())))

    @contextmanager
    def make_torch_dataloader(self, batch_size: int, **kw: Any) -> Iterator[Any]:
        self.calls.append(kw)
        n = len(self)
        yield [
            {k: v[s : s + batch_size] for k, v in self.rows.items()}
            for s in range(0, n, batch_size)
        ]


def _ids(batches: Iterator[dict[str, torch.Tensor]]) -> list[int]:
    return [int(i) for b in batches for i in b["id"]]


def test_every_epoch_has_its_own_seeded_order_and_sees_every_row_once() -> None:
    conv = FakeConverter({"id": torch.arange(50), "x": torch.arange(50).float()})
    a = D.EpochBatches(conv, 8, seed=3)
    first, second = _ids(a()), _ids(a())
    assert sorted(first) == sorted(second) == list(range(50))
    assert first != second  # reshuffled each epoch
    b = D.EpochBatches(conv, 8, seed=3)
    assert _ids(b()) == first  # reproducible
    assert _ids(b()) == second
    assert _ids(D.EpochBatches(conv, 8, seed=4)()) != first
    assert len(conv.calls) == 3  # read through petastorm once per EpochBatches


def test_rows_stay_aligned_across_columns() -> None:
    conv = FakeConverter({"id": torch.arange(20), "x": torch.arange(20) * 10})
    for batch in D.EpochBatches(conv, 6, seed=0)():
        assert torch.equal(batch["x"], batch["id"] * 10)


def test_length_grouping_cuts_each_batch_to_its_longest_row() -> None:
    lengths = [1, 5, 2, 8, 3, 8, 2, 6, 4, 7, 1, 3]
    seq = torch.zeros(len(lengths), 9, dtype=torch.long)
    for r, n in enumerate(lengths):
        seq[r, 9 - n :] = torch.arange(1, n + 1) + 100 * r
    target = seq * (seq % 2 == 0)  # aligned with seq, zeros inside the real part too
    conv = FakeConverter({"id": torch.arange(len(lengths)), D.SEQ: seq, D.TARGET: target})
    seen: list[int] = []
    for batch in D.EpochBatches(conv, 4, seed=0, length_of=D.SEQ)():
        s = batch[D.SEQ]
        longest = max(lengths[int(i)] for i in batch["id"])
        assert s.shape[1] == longest
        assert torch.equal(batch[D.TARGET], s * (s % 2 == 0))  # cut the same way
        for row, i in zip(s, batch["id"], strict=True):
            assert torch.equal(row[row != 0], seq[int(i)][seq[int(i)] != 0])  # nothing real lost
        seen.extend(int(i) for i in batch["id"])
    assert sorted(seen) == list(range(len(lengths)))


def test_large_streams_are_reread_with_a_seed_per_epoch() -> None:
    conv = FakeConverter({"id": torch.arange(10)})
    batches = D.EpochBatches(conv, 4, seed=7, max_rows_in_memory=5)
    assert batches.rows is None
    assert _ids(batches()) == list(range(10))  # the fake ignores the shuffle arguments
    _ids(batches())
    assert [c.get("seed") for c in conv.calls] == [8, 9]
    assert all(c["shuffle_rows"] and c["shuffle_row_groups"] for c in conv.calls)


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        D.EpochBatches(FakeConverter({"id": torch.arange(3)}), 0, seed=0)


def test_event_sequences_keep_every_interaction_in_time_order() -> None:
    pairs = pd.DataFrame(
        {
            Col.USER_ID: [1, 1, 1, 1, 2, 2],
            Col.ITEM_ID: [30, 10, 20, 40, 10, 99],
            Col.IS_POSITIVE: [True, False, True, True, False, True],
            Col.EVENT_TS: pd.to_datetime([3, 1, 1, 9, 5, 6], unit="s"),
            Col.ROLE: ["train", "train", "train", "test", "train", "validation"],
        }
    )
    index_of = {10: 1, 20: 2, 30: 3, 40: 4}
    assert D.event_sequences(pairs, ("train",), index_of, positives_only=False) == {
        1: [1, 2, 3],  # ts 1 (ids 10, 20), then ts 3
        2: [1],
    }
    assert D.event_sequences(pairs, ("train",), index_of, positives_only=True) == {1: [2, 3]}
    # Items without an index (99) are dropped; roles filter.
    assert D.event_sequences(pairs, ("train", "validation"), index_of, False)[2] == [1]


class ShortConverter(FakeConverter):
    """A converter whose first passes stop early, as petastorm's pools can: ``cuts[i]`` rows
    in pass ``i`` (passes after the listed ones are whole)."""

    def __init__(self, rows: dict[str, torch.Tensor], cuts: list[int]) -> None:
        super().__init__(rows)
        self.cuts = cuts

    @contextmanager
    def make_torch_dataloader(self, batch_size: int, **kw: Any) -> Iterator[Any]:
        cut = self.cuts[len(self.calls)] if len(self.calls) < len(self.cuts) else len(self)
        self.calls.append(kw)
        yield [
            {k: v[s : min(s + batch_size, cut)] for k, v in self.rows.items()}
            for s in range(0, cut, batch_size)
        ]


def test_an_empty_pass_is_read_again() -> None:
    conv = ShortConverter({"id": torch.arange(10)}, cuts=[0, 0])
    assert _ids(D.epoch_batches(conv, 4, seed=1)) == list(range(10))
    assert len(conv.calls) == 3
    assert torch.equal(
        D.read_all(ShortConverter({"id": torch.arange(10)}, [0]))["id"], torch.arange(10)
    )


def test_a_pass_that_stops_part_way_raises_instead_of_losing_rows() -> None:
    with pytest.raises(D.ShortReadError, match="read 6 of 10 rows"):
        _ids(D.epoch_batches(ShortConverter({"id": torch.arange(10)}, cuts=[6]), 3))
    # read_all holds nothing yet, so it reads the whole pass again.
    conv = ShortConverter({"id": torch.arange(10)}, cuts=[6, 3])
    assert torch.equal(D.read_all(conv, 4)["id"], torch.arange(10))
    assert len(conv.calls) == 3


def test_a_read_that_never_completes_raises() -> None:
    cuts = [0] * D.READ_ATTEMPTS
    with pytest.raises(D.ShortReadError, match="read 0 of 10 rows"):
        _ids(D.epoch_batches(ShortConverter({"id": torch.arange(10)}, cuts), 4))
    with pytest.raises(D.ShortReadError, match=f"in {D.READ_ATTEMPTS} passes"):
        D.read_all(ShortConverter({"id": torch.arange(10)}, [5] * D.READ_ATTEMPTS))
    assert _ids(D.epoch_batches(FakeConverter({"id": torch.arange(0)}), 4)) == []
