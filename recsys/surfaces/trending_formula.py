"""Trending: the growth formula, its configuration, and a pure pandas twin (no Spark).

Score, as of an instant ``T`` (UTC), for one item
-------------------------------------------------
Every interaction of the item at time ``t <= T`` has an age ``a = (T - t)`` in days. Two
consecutive windows end at ``T``:

* recent window ``R`` days: ``0 <= a < R``;
* baseline window ``B`` days right before it: ``R <= a < R + B``.

Each event weighs ``w = 0.5 ** (a_w / h)``, where ``a_w`` is its age measured from the end of its
own window (``a`` in the recent window, ``a - R`` in the baseline window) and ``h`` the half-life
in days (default ``R / 2``). Then, in *decay-weighted events*:

* ``recent_count   r = sum of w over recent events``
* ``baseline_count b = (sum of w over baseline events) * L(R) / L(B)``

where ``L(X) = h / ln 2 * (1 - 0.5 ** (X / h))`` is the decay-weighted length of an X-day window
(in days). ``b`` is the baseline rate expressed per recent-window length: an item with a steady
rate of ``lambda`` events per day has ``r ~= b ~= lambda * L(R)``. The score is::

    score = (r - b) / sqrt(b + prior)           # prior: pseudo-events, default 5

a Poisson z-score: the growth in units of the noise expected at the baseline rate
(dimensionless; 0 for steady items, positive for growing ones, negative for fading ones). The
prior keeps an item growing from nothing from scoring ``r / 0``. Only items with at least
``min_support`` distinct users in the recent window are ranked, so one user's burst (MovieLens
users rate dozens of films in one session) cannot win.

Lists: the overall list (genre :data:`~recsys.warehouse.tables.TRENDING_ALL_GENRES`) and one per
genre of ``bronze.items.genres``, each the top ``top_k`` by score, ties broken by higher
``recent_count``, then lower ``item_id``; ranks 1..k. Items with no genre are only in the overall
list.

Sparse data: :func:`recsys.surfaces.trending.widen_windows` doubles both windows (and the
half-life) until the overall list holds a minimum number of items; ``jobs.trending`` does so by
default (``--min-items``) and logs the windows it used.

Why the as-of instant is data-relative: MovieLens' last event is years old, so windows ending at
the wall clock would be empty. :mod:`jobs.trending` defaults ``T`` to the latest event at or
before the end of ``--ds``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

import numpy as np
import pandas as pd

from recsys.validation import check_typed_int
from recsys.warehouse.tables import TRENDING_ALL_GENRES, Col

#: Columns of every trending frame this package returns, in order.
TRENDING_COLUMNS: Final[tuple[str, ...]] = (
    Col.GENRE,
    Col.RANK,
    Col.ITEM_ID,
    Col.SCORE,
    Col.RECENT_COUNT,
    Col.BASELINE_COUNT,
)
#: Microseconds per day, the unit of every age computation.
MICROS_PER_DAY: Final = 86_400 * 1_000_000
#: Internal column: distinct recent users.
SUPPORT: Final = "_support"


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: must be a finite number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class TrendingConfig:
    """Parameters of the trending score (module docstring).

    Attributes:
        recent_days: Recent window ``R`` in days, > 0.
        baseline_days: Baseline window ``B`` in days right before the recent one, > 0.
        half_life_days: Half-life ``h`` of the decay in days, > 0; None means ``R / 2``.
        min_support: Distinct users an item needs in the recent window to be ranked, >= 1.
        prior: Pseudo-events added to the baseline in the denominator, > 0.
        top_k: Items kept per list, >= 1.
    """

    recent_days: float = 7.0
    baseline_days: float = 28.0
    half_life_days: float | None = None
    min_support: int = 5
    prior: float = 5.0
    top_k: int = 100

    def __post_init__(self) -> None:
        _positive("recent_days", self.recent_days)
        _positive("baseline_days", self.baseline_days)
        if self.half_life_days is not None:
            _positive("half_life_days", self.half_life_days)
        _positive("prior", self.prior)
        check_typed_int("min_support", self.min_support, 1)
        check_typed_int("top_k", self.top_k, 1)

    def scaled(self, factor: float) -> TrendingConfig:
        """Both windows (and an explicit half-life) times ``factor`` (> 0); the rest unchanged."""
        f = _positive("factor", factor)
        return replace(
            self,
            recent_days=self.recent_days * f,
            baseline_days=self.baseline_days * f,
            half_life_days=None if self.half_life_days is None else self.half_life_days * f,
        )

    @property
    def half_life(self) -> float:
        """Effective half-life in days: ``half_life_days`` or ``recent_days / 2``."""
        return self.half_life_days if self.half_life_days is not None else self.recent_days / 2

    @property
    def baseline_scale(self) -> float:
        """``L(R) / L(B)``: turns the decayed baseline sum into events per recent window."""
        return window_length(self.recent_days, self.half_life) / window_length(
            self.baseline_days, self.half_life
        )


def window_length(days: float, half_life_days: float) -> float:
    """Decay-weighted length in days of a ``days``-long window: ``h/ln2 * (1 - 0.5**(days/h))``."""
    return float(half_life_days / math.log(2) * (1.0 - math.pow(0.5, days / half_life_days)))


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (naive values are taken to be UTC).

    Raises:
        TypeError: ``value`` is not a datetime.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"as_of: expected a datetime, got {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def micros(value: datetime) -> int:
    """Microseconds since the Unix epoch of ``value`` (naive = UTC), exactly."""
    delta = as_utc(value) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def item_growth_pandas(
    interactions: pd.DataFrame, as_of: datetime, config: TrendingConfig
) -> pd.DataFrame:
    """Per item with enough support: ``item_id, score, recent_count, baseline_count``.

    Args:
        interactions: ``user_id``, ``item_id``, ``event_ts`` (datetime64, naive = UTC).
        as_of: The instant ``T`` the windows end at (naive = UTC); later events are ignored.
        config: Windows, decay, support and prior.
    """
    ts = pd.to_datetime(interactions[Col.EVENT_TS], utc=True)
    event_us = ((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)).to_numpy()
    age = (micros(as_of) - event_us.astype(np.int64)) / MICROS_PER_DAY
    r_days, h = config.recent_days, config.half_life
    keep = (age >= 0) & (age < r_days + config.baseline_days)
    age = age[keep]
    recent = age < r_days
    weight = np.power(0.5, np.where(recent, age, age - r_days) / h)
    frame = pd.DataFrame(
        {
            Col.ITEM_ID: interactions[Col.ITEM_ID].to_numpy()[keep],
            Col.USER_ID: interactions[Col.USER_ID].to_numpy()[keep],
            Col.RECENT_COUNT: np.where(recent, weight, 0.0),
            Col.BASELINE_COUNT: np.where(recent, 0.0, weight),
        }
    )
    sums = frame.groupby(Col.ITEM_ID)[[Col.RECENT_COUNT, Col.BASELINE_COUNT]].sum()
    support = frame[recent].groupby(Col.ITEM_ID)[Col.USER_ID].nunique().rename(SUPPORT)
    out = sums.join(support, how="inner")
    out = out[out[SUPPORT] >= config.min_support].copy()
    out[Col.BASELINE_COUNT] = out[Col.BASELINE_COUNT] * config.baseline_scale
    out[Col.SCORE] = (out[Col.RECENT_COUNT] - out[Col.BASELINE_COUNT]) / np.sqrt(
        out[Col.BASELINE_COUNT] + config.prior
    )
    return out.reset_index()[[Col.ITEM_ID, Col.SCORE, Col.RECENT_COUNT, Col.BASELINE_COUNT]]


def trending_pandas(
    interactions: pd.DataFrame, items: pd.DataFrame, as_of: datetime, config: TrendingConfig
) -> pd.DataFrame:
    """Trending lists (module docstring) as a pandas frame with :data:`TRENDING_COLUMNS`.

    Pure-Python twin of :func:`recsys.surfaces.trending.trending`, for tests and small data.

    Args:
        interactions: ``user_id``, ``item_id``, ``event_ts`` (datetime64, naive = UTC).
        items: ``item_id`` and ``genres`` (a sequence of genre names per item).
        as_of: End of both windows (naive = UTC).
        config: Windows, decay, support, prior and list length.
    """
    growth = item_growth_pandas(interactions, as_of, config)
    genres = items[[Col.ITEM_ID, Col.GENRES]].copy()
    genres[Col.GENRES] = genres[Col.GENRES].map(lambda g: sorted(set(g)) if g is not None else [])
    per_genre = genres.explode(Col.GENRES).dropna(subset=[Col.GENRES])
    per_genre = per_genre.rename(columns={Col.GENRES: Col.GENRE})
    lists = pd.concat(
        [
            growth.assign(**{Col.GENRE: TRENDING_ALL_GENRES}),
            growth.merge(per_genre, on=Col.ITEM_ID, how="inner"),
        ],
        ignore_index=True,
    )
    lists = lists.sort_values(
        [Col.GENRE, Col.SCORE, Col.RECENT_COUNT, Col.ITEM_ID],
        ascending=[True, False, False, True],
        kind="mergesort",
    )
    lists[Col.RANK] = lists.groupby(Col.GENRE).cumcount() + 1
    lists = lists[lists[Col.RANK] <= config.top_k]
    return lists[list(TRENDING_COLUMNS)].reset_index(drop=True)
