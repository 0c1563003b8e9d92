"""Did units get what their arm serves? The served ``rec_set`` against the assigned variant's.

``ab.exposures`` keys every exposure to the arm a unit was *assigned* (intent to treat: the
comparison stays randomised even when delivery fails). Delivery failures — an app on a stale
experiments config, a fallback list, a bug — are therefore not visible in the exposures. This
module turns per (experiment, day) counts of served rows whose ``rec_set`` differs from the one
the assigned variant serves into one data-quality result each, in the row format of
``ops.dq_checks`` (as ``jobs/dq_checks.py`` writes it). A share of mismatched rows above the
threshold fails the check. Pure Python: Spark computes the counts
(:func:`ab_testing.assignment_spark.rec_set_mismatches`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from recsys.quality.checks import CheckResult
from recsys.warehouse.tables import AB_EXPOSURES

#: ``ops.dq_checks.check_name`` of the served-vs-assigned check.
CHECK_NAME: Final = "exposure_rec_set_mismatch"
#: Default largest share (0-1) of an experiment's served rows on a day that may show another set.
DEFAULT_MAX_MISMATCH_SHARE: Final = 0.01

#: One ``ops.dq_checks`` row: check_name, table_name, observed, threshold, passed, detail,
#: run_id, checked_at (naive UTC), ds.
DqRow = tuple[str, str, float | None, str, bool, str, str, datetime, date]


def check_share(name: str, value: object) -> float:
    """``value`` as a share in [0, 1]; ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name}: expected a number in [0, 1], got {value!r}")
    share = float(value)
    if not (math.isfinite(share) and 0.0 <= share <= 1.0):
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return share


@dataclass(frozen=True, slots=True)
class RecSetMismatch:
    """Served rows of one experiment on one day, checked against the assigned variants.

    Attributes:
        experiment_id: Experiment whose variants name recommendation sets.
        ds: UTC day of the served rows.
        served_rows: Served rows of units assigned to the experiment that day (>= 0).
        mismatched_rows: Of those, rows whose ``rec_set`` is not the assigned variant's (>= 0).
        mismatched_units: Distinct units with at least one mismatched row (>= 0).
    """

    experiment_id: str
    ds: date
    served_rows: int
    mismatched_rows: int
    mismatched_units: int

    def __post_init__(self) -> None:
        for name in ("served_rows", "mismatched_rows", "mismatched_units"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {value!r}")
        if self.mismatched_rows > self.served_rows:
            raise ValueError(
                f"mismatched_rows: {self.mismatched_rows} is more than served_rows "
                f"{self.served_rows}"
            )
        if self.mismatched_units > self.mismatched_rows:
            raise ValueError(
                f"mismatched_units: {self.mismatched_units} is more than mismatched_rows "
                f"{self.mismatched_rows}"
            )

    @property
    def share(self) -> float:
        """Mismatched share of the served rows, in [0, 1]; NaN with no served row."""
        return self.mismatched_rows / self.served_rows if self.served_rows else math.nan


def table_label(experiment_id: str, source: str | None = None) -> str:
    """``ops.dq_checks.table_name`` of an experiment's check: ``ab.exposures[<id>]``, with
    ``@<source>`` appended when only one ``ab.served`` source was checked."""
    label = f"{AB_EXPOSURES.qualified_name}[{experiment_id}]"
    return label if source is None else label + "@" + source


def evaluate_mismatches(
    counts: Iterable[RecSetMismatch],
    max_share: float = DEFAULT_MAX_MISMATCH_SHARE,
    source: str | None = None,
) -> list[tuple[date, CheckResult]]:
    """One ``(ds, result)`` per count: passed when the mismatched share is at most ``max_share``.

    Args:
        counts: Per (experiment, day) counts; a day with no served row passes (nothing to check).
        max_share: Largest share in [0, 1] that passes.
        source: The ``ab.served`` source checked (None: every source), for the table label.
    """
    limit = check_share("max_share", max_share)
    out = []
    for c in sorted(counts, key=lambda c: (c.ds, c.experiment_id)):
        share = c.share
        passed = c.served_rows == 0 or share <= limit
        detail = (
            f"{c.mismatched_rows} of {c.served_rows} served rows ({c.mismatched_units} units) "
            "showed a rec_set other than the assigned variant's; exposures keep the assigned "
            "arm (intent to treat)"
        )
        result = CheckResult(
            CHECK_NAME,
            table_label(c.experiment_id, source),
            None if math.isnan(share) else share,
            f"<= {limit:g}",
            passed,
            detail,
        )
        out.append((c.ds, result))
    return out


def dq_rows(
    results: Iterable[tuple[date, CheckResult]], run_id: str, checked_at: datetime
) -> list[DqRow]:
    """``ops.dq_checks`` rows of ``results``, in the column order ``jobs/dq_checks.py`` writes."""
    return [
        (
            r.check_name,
            r.table_name,
            r.observed,
            r.threshold,
            r.passed,
            r.detail,
            run_id,
            checked_at,
            ds,
        )
        for ds, r in results
    ]
