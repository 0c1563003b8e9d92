"""In-memory indexes of one published day: built once per table version, then read-only.

Rows stay in Arrow columns sorted by their lookup key; a lookup is a binary search over the
distinct keys (``numpy.searchsorted``) and a slice, so memory is about the size of the Arrow data
and a call costs O(log n + items returned).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pyarrow as pa

from recsys.reader.results import ServedItem
from recsys.reader.snapshots import Groups, Loaded
from recsys.warehouse.tables import TRENDING_ALL_GENRES, Col

#: Columns each index reads.
RECOMMENDATION_COLUMNS = (
    Col.REC_SET,
    Col.USER_ID,
    Col.RANK,
    Col.ITEM_ID,
    Col.SCORE,
    Col.EXPLANATION,
    Col.MODEL_VERSION,
)
RELATED_COLUMNS = (
    Col.ITEM_ID,
    Col.RANK,
    Col.RELATED_ITEM_ID,
    Col.SCORE,
    Col.REASON,
    Col.MODEL_VERSION,
)
TRENDING_COLUMNS = (Col.GENRE, Col.RANK, Col.ITEM_ID, Col.SCORE)


@dataclass(frozen=True, slots=True)
class Found:
    """Items found for one key, with the version of what produced them."""

    items: tuple[ServedItem, ...]
    model_version: str | None


def _segments(values: list[str]) -> dict[str, tuple[int, int]]:
    """``value -> (start, end)`` of a sorted string column."""
    out: dict[str, tuple[int, int]] = {}
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            out[values[start]] = (start, i)
            start = i
    return out


def _items(
    table: pa.Table,
    start: int,
    end: int,
    n: int,
    item_col: str,
    reason_col: str | None,
    reason: str = "",
) -> tuple[ServedItem, ...]:
    count = min(n, end - start)
    part = table.slice(start, count)
    ids = part.column(item_col).to_pylist()
    scores = part.column(Col.SCORE).to_pylist()
    reasons = part.column(reason_col).to_pylist() if reason_col else [reason] * count
    return tuple(
        ServedItem(int(i), rank, float(s), str(r))
        for rank, (i, s, r) in enumerate(zip(ids, scores, reasons, strict=True), start=1)
    )


def _model_version(table: pa.Table, start: int) -> str | None:
    value = table.column(Col.MODEL_VERSION)[start].as_py()
    return None if value is None else str(value)


def _found(
    table: pa.Table, span: tuple[int, int] | None, n: int, item_col: str, reason_col: str
) -> Found | None:
    """The first ``n`` rows of ``span`` (``(start, end)`` rows of one key) and their model
    version; None when the key has no span."""
    if span is None:
        return None
    return Found(
        _items(table, span[0], span[1], n, item_col, reason_col), _model_version(table, span[0])
    )


@dataclass(frozen=True, slots=True)
class RecommendationIndex:
    """``serve.recommendations`` of one day: lists by (rec_set, user_id)."""

    ds: date
    version: int
    table: pa.Table
    groups: dict[str, Groups]

    @classmethod
    def build(cls, loaded: Loaded) -> RecommendationIndex:
        table = loaded.table.sort_by(
            [(Col.REC_SET, "ascending"), (Col.USER_ID, "ascending"), (Col.RANK, "ascending")]
        ).combine_chunks()
        users = table.column(Col.USER_ID).to_numpy()
        groups = {}
        for rec_set, (lo, hi) in _segments(table.column(Col.REC_SET).to_pylist()).items():
            g = Groups.of_sorted(users[lo:hi])
            groups[rec_set] = Groups(g.keys, g.starts + lo, g.ends + lo)
        return cls(loaded.ds, loaded.version, table, groups)

    def lookup(self, rec_set: str, user_id: int, n: int) -> Found | None:
        """The user's top ``n`` of ``rec_set``, or None when absent."""
        groups = self.groups.get(rec_set)
        span = None if groups is None else groups.find(user_id)
        return _found(self.table, span, n, Col.ITEM_ID, Col.EXPLANATION)


@dataclass(frozen=True, slots=True)
class RelatedIndex:
    """``serve.related_items`` of one day: lists by item_id."""

    ds: date
    version: int
    table: pa.Table
    groups: Groups

    @classmethod
    def build(cls, loaded: Loaded) -> RelatedIndex:
        table = loaded.table.sort_by(
            [(Col.ITEM_ID, "ascending"), (Col.RANK, "ascending")]
        ).combine_chunks()
        groups = Groups.of_sorted(table.column(Col.ITEM_ID).to_numpy())
        return cls(loaded.ds, loaded.version, table, groups)

    def lookup(self, item_id: int, n: int) -> Found | None:
        """The item's top ``n`` related items, or None when absent."""
        return _found(self.table, self.groups.find(item_id), n, Col.RELATED_ITEM_ID, Col.REASON)


@dataclass(frozen=True, slots=True)
class TrendingIndex:
    """``serve.trending`` of one day: lists by genre (exact, then case-insensitive)."""

    ds: date
    version: int
    table: pa.Table
    spans: dict[str, tuple[int, int]]
    folded: dict[str, str]

    @classmethod
    def build(cls, loaded: Loaded) -> TrendingIndex:
        table = loaded.table.sort_by(
            [(Col.GENRE, "ascending"), (Col.RANK, "ascending")]
        ).combine_chunks()
        spans = _segments(table.column(Col.GENRE).to_pylist())
        folded = {g.casefold(): g for g in sorted(spans, reverse=True)}
        return cls(loaded.ds, loaded.version, table, spans, folded)

    def lookup(self, genre: str, n: int) -> tuple[str, tuple[ServedItem, ...]] | None:
        """``(genre as published, top n)``, or None when the genre has no list."""
        name = genre if genre in self.spans else self.folded.get(genre.casefold())
        if name is None:
            return None
        start, end = self.spans[name]
        reason = "Trending now" if name == TRENDING_ALL_GENRES else "Trending in " + name
        return name, _items(self.table, start, end, n, Col.ITEM_ID, None, reason)
