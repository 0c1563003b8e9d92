"""Champion/challenger promotion gate: pure decision logic (no Spark, no files).

The challenger (the newest artifact of a model) replaces the champion (the serving version) only
if its offline NDCG@10 is not worse than the champion's by more than ``margin`` (absolute, in
NDCG units). The champion's NDCG is taken from the same evaluation day when it was evaluated
there too (a fair comparison on the same split); otherwise the value recorded at its promotion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

Decision = Literal["promoted", "kept_champion"]
PROMOTED: Final[Decision] = "promoted"
KEPT: Final[Decision] = "kept_champion"


@dataclass(frozen=True, slots=True)
class GateInput:
    """What the gate knows about one model.

    Attributes:
        model_name: e.g. ``two_tower``.
        challenger_version: Newest artifact version.
        challenger_ndcg: Its NDCG@10 on the evaluation day, in [0, 1].
        champion_version: Serving version, or None before the first promotion.
        champion_ndcg: Champion NDCG@10 to compare with (None when no champion).
        margin: Allowed absolute drop of NDCG@10, >= 0.
    """

    model_name: str
    challenger_version: str
    challenger_ndcg: float
    champion_version: str | None
    champion_ndcg: float | None
    margin: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.margin) and self.margin >= 0):
            raise ValueError(f"margin: expected a finite value >= 0, got {self.margin!r}")
        if not (math.isfinite(self.challenger_ndcg) and 0 <= self.challenger_ndcg <= 1):
            raise ValueError(
                f"challenger_ndcg: expected a value in [0, 1], got {self.challenger_ndcg!r}"
            )
        if (self.champion_version is None) != (self.champion_ndcg is None):
            raise ValueError(
                "champion_ndcg: must be given exactly when champion_version is, got "
                f"{self.champion_version!r} / {self.champion_ndcg!r}"
            )


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The outcome for one model: what serves next and why (one line)."""

    inputs: GateInput
    decision: Decision
    reason: str

    @property
    def serving_version(self) -> str:
        """The version that serves after this decision."""
        if self.decision == PROMOTED or self.inputs.champion_version is None:
            return self.inputs.challenger_version
        return self.inputs.champion_version


def decide(g: GateInput) -> GateDecision:
    """Promote the challenger unless its NDCG@10 is below the champion's minus the margin."""
    c = g.challenger_ndcg
    if g.champion_version is None or g.champion_ndcg is None:
        return GateDecision(g, PROMOTED, f"no champion yet; {g.challenger_version} NDCG@10 {c:.4f}")
    if g.champion_version == g.challenger_version:
        return GateDecision(
            g, KEPT, f"{g.challenger_version} is already the champion (NDCG@10 {c:.4f})"
        )
    floor = g.champion_ndcg - g.margin
    versus = (
        f"challenger {g.challenger_version} NDCG@10 {c:.4f} vs champion {g.champion_version} "
        f"{g.champion_ndcg:.4f} (margin {g.margin:g})"
    )
    if c >= floor:
        return GateDecision(g, PROMOTED, versus + ": not worse by more than the margin")
    return GateDecision(
        g, KEPT, versus + f": worse by {g.champion_ndcg - c:.4f} > margin, champion stays"
    )
