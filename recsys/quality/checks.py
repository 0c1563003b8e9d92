"""Data-quality rules over aggregates of a day's recommendations (no Spark here).

The rules run on the STAGED day (``serve.ranked``) before it is published: the pipeline publishes
only a day that passed (``dags/recsys_daily.py``). Spark computes a handful of numbers per table
(:class:`Observed`); :func:`evaluate` turns them into one :class:`CheckResult` per rule. Every rule
that cannot be computed (a table with no rows for the day) fails with a reason instead of passing
silently.

Before publishing there is no "latest published day" to look at, so freshness is judged on the
staged day itself: it holds the rows of exactly one scoring run (the expected one, when given) and
the staged table's newest commit is recent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What passes. Fractions are in [0, 1]; ``max_age_hours`` in hours.

    Attributes:
        min_user_coverage: Share of users with features on ``ds`` that must get a ``model`` list.
        max_null_rate: Share of rows allowed a NULL/NaN score or an empty explanation.
        min_list_length: Smallest allowed median list length per user (items).
        max_age_hours: Newest commit of the checked table (``serve.ranked``) at most this old.
    """

    min_user_coverage: float = 0.95
    max_null_rate: float = 0.0
    min_list_length: int = 10
    max_age_hours: float = 36.0

    def __post_init__(self) -> None:
        for name in ("min_user_coverage", "max_null_rate"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0):
                raise ValueError(f"{name}: expected a value in [0, 1], got {v!r}")
        if self.min_list_length < 1:
            raise ValueError(f"min_list_length: expected >= 1, got {self.min_list_length!r}")
        if not (self.max_age_hours > 0):
            raise ValueError(f"max_age_hours: expected > 0, got {self.max_age_hours!r}")


@dataclass(frozen=True, slots=True)
class RecSetStats:
    """Aggregates of one recommendation set on ``ds``.

    Attributes:
        rows: Rows of the set.
        users: Distinct users with a list.
        null_rows: Rows with a NULL/NaN score or an empty explanation.
        score_min / score_max: Range of ``score`` (NaN when there are no rows).
        bad_lists: Lists whose ranks are not exactly 1..n or that repeat an item.
        seen_items: Rows recommending an item the user already knows (train/validation).
        median_length: Median items per list.
    """

    rows: int
    users: int
    null_rows: int
    score_min: float
    score_max: float
    bad_lists: int
    seen_items: int
    median_length: float


@dataclass(frozen=True, slots=True)
class Observed:
    """Everything the rules look at for one ``ds``.

    Attributes:
        ds: Day checked.
        eligible_users: Users with features on ``ds`` (the population to cover).
        rec_sets: Aggregates per recommendation set name.
        run_ids: Distinct scoring run ids on the day's rows (a few at most; sorted).
        expected_run_id: The run whose rows must be staged, or None (any one run).
        age_hours: Hours since the newest commit of the checked table (inf: no commit).
        surface_rows: Rows on ``ds`` of the other published tables, by qualified name.
    """

    ds: date
    eligible_users: int
    rec_sets: dict[str, RecSetStats]
    run_ids: tuple[str, ...]
    expected_run_id: str | None
    age_hours: float
    surface_rows: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One rule's outcome; ``observed`` is None when it could not be computed."""

    check_name: str
    table_name: str
    observed: float | None
    threshold: str
    passed: bool
    detail: str


def _frac(num: int, den: int) -> float:
    return num / den if den else math.nan


def _set_checks(
    table: str, name: str, s: RecSetStats, eligible: int, t: Thresholds, is_model: bool
) -> list[CheckResult]:
    tag = table + "[" + name + "]"
    out = [
        CheckResult("row_count", tag, float(s.rows), "> 0", s.rows > 0, f"{s.rows} rows"),
    ]
    if s.rows == 0:
        return out
    null_rate = _frac(s.null_rows, s.rows)
    out.append(
        CheckResult(
            "null_rate",
            tag,
            null_rate,
            f"<= {t.max_null_rate:g}",
            null_rate <= t.max_null_rate,
            f"{s.null_rows} of {s.rows} rows with NULL/NaN score or empty explanation",
        )
    )
    finite = math.isfinite(s.score_min) and math.isfinite(s.score_max)
    in_range = finite and (s.score_min >= 0.0 and s.score_max <= 1.0 if is_model else True)
    out.append(
        CheckResult(
            "score_range",
            tag,
            s.score_max,
            "in [0, 1]" if is_model else "finite",
            in_range,
            f"scores in [{s.score_min:.4g}, {s.score_max:.4g}]",
        )
    )
    out.append(
        CheckResult(
            "list_integrity",
            tag,
            float(s.bad_lists),
            "== 0",
            s.bad_lists == 0,
            f"{s.bad_lists} lists with ranks not 1..n or a repeated item",
        )
    )
    out.append(
        CheckResult(
            "seen_items",
            tag,
            float(s.seen_items),
            "== 0",
            s.seen_items == 0,
            f"{s.seen_items} rows recommend an item the user already interacted with",
        )
    )
    out.append(
        CheckResult(
            "list_length",
            tag,
            s.median_length,
            f">= {t.min_list_length}",
            s.median_length >= t.min_list_length,
            f"median {s.median_length:g} items per list",
        )
    )
    if is_model:
        cov = _frac(s.users, eligible)
        out.append(
            CheckResult(
                "user_coverage",
                tag,
                cov,
                f">= {t.min_user_coverage:g}",
                eligible > 0 and cov >= t.min_user_coverage,
                f"{s.users} of {eligible} users with features have a list",
            )
        )
    return out


def evaluate(
    o: Observed,
    t: Thresholds,
    recommendations_table: str,
    model_set: str,
    expected_sets: tuple[str, ...],
) -> list[CheckResult]:
    """Apply every rule to ``o``; a missing expected set fails its ``row_count`` rule.

    Args:
        o: Aggregates of the day.
        t: Thresholds.
        recommendations_table: Qualified name of the checked table (``serve.ranked`` before
            publishing), used in the results.
        model_set: Name of the set whose scores are probabilities and must cover the users.
        expected_sets: Sets that must be present.
    """
    results: list[CheckResult] = []
    empty = RecSetStats(0, 0, 0, math.nan, math.nan, 0, 0, 0.0)
    for name in dict.fromkeys((*expected_sets, *o.rec_sets)):
        stats = o.rec_sets.get(name, empty)
        results += _set_checks(
            recommendations_table, name, stats, o.eligible_users, t, name == model_set
        )
    one_run = len(o.run_ids) == 1 and o.expected_run_id in (None, o.run_ids[0])
    want = "1 run" if o.expected_run_id is None else f"only run {o.expected_run_id}"
    results.append(
        CheckResult(
            "staged_run",
            recommendations_table,
            float(len(o.run_ids)),
            want,
            one_run,
            f"rows of ds {o.ds} from run(s) {', '.join(o.run_ids) or 'none'}",
        )
    )
    results.append(
        CheckResult(
            "freshness",
            recommendations_table,
            o.age_hours,
            f"newest commit <= {t.max_age_hours:g} h old",
            o.age_hours <= t.max_age_hours,
            f"newest commit {o.age_hours:.1f} h ago",
        )
    )
    for table, rows in o.surface_rows.items():
        results.append(
            CheckResult("row_count", table, float(rows), "> 0", rows > 0, f"{rows} rows")
        )
    return results
