"""What the reader returns: frozen, typed, plain Python values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

#: ``surface`` of each reader call, as written to ``ab.served``.
SURFACE_HOME: Final = "home"
SURFACE_ITEM_PAGE: Final = "item_page"
SURFACE_TRENDING: Final = "trending"


@dataclass(frozen=True, slots=True)
class ServedItem:
    """One item of a list, in display order.

    Attributes:
        item_id: The item.
        rank: Position 1..n, 1 shown first.
        score: The surface's score, higher is better: ranker probability in [0, 1] (model
            recommendations), cosine in [-1, 1] (related items), growth z-score (trending,
            unbounded).
        reason: Short text shown with the item ("Because you watched ...", "Also Comedy",
            "Trending now", ...).
    """

    item_id: int
    rank: int
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class ServedList:
    """A list returned by :class:`recsys.reader.Reader`.

    Attributes:
        surface: ``home``, ``item_page`` or ``trending``.
        items: The items, ranks 1..len(items).
        ds: Publication day of the table version read; None when nothing is published.
        table_version: Delta version of the table read; None when nothing is published.
        rec_set: Recommendation set the user's variant chose (home only, else None).
        model_version: Version of what was served; None for fallbacks and trending.
        is_fallback: True when the requested list was unavailable (unknown user or item,
            unknown genre, or nothing published) and trending was served instead.
    """

    surface: str
    items: tuple[ServedItem, ...]
    ds: date | None
    table_version: int | None
    rec_set: str | None = None
    model_version: str | None = None
    is_fallback: bool = False

    @property
    def item_ids(self) -> list[int]:
        """The item ids in display order."""
        return [item.item_id for item in self.items]
