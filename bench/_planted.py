"""The planted-effect validation's design and figures, pure Python (no Spark).

:class:`Design` says what :mod:`bench.validate_ab_pipeline` generates and the truth it planted;
:func:`summarise` turns the ``ab.results`` rows into the validation figures and :func:`table`
prints them. Described in ``docs/ab-validation.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

START: Final = date(2030, 1, 1)
MEAN: Final = 10.0  # value_per_unit: base mean and per-unit SD
SD: Final = 2.5
P0: Final = 0.3  # converted: base probability
VALUE: Final = "value_per_unit"
CONVERTED: Final = "converted"


@dataclass(frozen=True, slots=True)
class Design:
    """The simulated experiments: sizes, effect, covariate correlation, days and seed.

    Attributes:
        units: Units (users), >= 100; each is in every experiment.
        aa: A/A experiments (no effect), >= 0.
        planted: Experiments with the planted lift, >= 0; ``aa + planted`` >= 1.
        lift: Relative lift of the treatment over the control mean of a planted experiment,
            in (0, 1].
        rho: Correlation of the covariate with the outcome's own part, in [0, 1).
        days: Test days = daily looks, 1-30; units arrive uniformly over them.
        seed: Seed of every hash draw (and of the salts).
        start: First test day.
        alpha: Level of the tests read from ``ab.results`` (the job's default 0.05).
        conversion_lift: Relative lift of ``converted`` in (0, 1]; None: ``lift``.
    """

    units: int
    aa: int
    planted: int
    lift: float
    rho: float
    days: int
    seed: int = 0
    start: date = START
    alpha: float = 0.05
    conversion_lift: float | None = None

    def __post_init__(self) -> None:
        for name, lo in (("units", 100), ("aa", 0), ("planted", 0), ("days", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"{name}: expected an int >= {lo}, got {value!r}")
        if self.aa + self.planted < 1 or self.aa + self.planted > 9999:
            raise ValueError(f"aa + planted: expected 1-9999, got {self.aa + self.planted}")
        if self.days > 30:
            raise ValueError(f"days: expected at most 30, got {self.days}")
        for name in ("lift", "conversion_lift"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise ValueError(f"{name}: expected a fraction in (0, 1], got {value!r}")
        if not 0.0 <= self.rho < 1.0:
            raise ValueError(f"rho: expected a correlation in [0, 1), got {self.rho!r}")

    @property
    def aa_ids(self) -> list[str]:
        return [f"aa_{i:04d}" for i in range(self.aa)]

    @property
    def planted_ids(self) -> list[str]:
        return [f"pl_{i:04d}" for i in range(self.planted)]

    @property
    def experiment_ids(self) -> list[str]:
        return self.aa_ids + self.planted_ids

    @property
    def last_day(self) -> date:
        return self.start + timedelta(days=self.days - 1)

    @property
    def delta_value(self) -> float:
        """Absolute planted lift of ``value_per_unit``: treatment = (1 + lift) x control."""
        return self.lift * MEAN / (1.0 + self.lift / 2.0)

    @property
    def delta_converted(self) -> float:
        """Absolute planted lift of ``converted`` (a probability difference)."""
        lift = self.lift if self.conversion_lift is None else self.conversion_lift
        return lift * P0 / (1.0 + lift / 2.0)

    def truth(self, experiment_id: str, metric: str) -> float:
        """True treatment - control difference of ``metric`` in ``experiment_id``."""
        if experiment_id not in self.planted_ids:
            return 0.0
        return self.delta_value if metric == VALUE else self.delta_converted

    def expected_variance_reduction(self, experiment_id: str) -> float:
        """``rho^2`` diluted by the within-arm variance the other planted experiments add."""
        others = self.planted - (experiment_id in self.planted_ids)
        noise = others * self.delta_value**2 / 4.0
        return self.rho**2 * SD**2 / (SD**2 + noise)


def _rate(hits: Sequence[bool]) -> dict[str, float | int | None]:
    """Share of True with its binomial standard error sqrt(r(1-r)/n)."""
    n = len(hits)
    if n == 0:
        return {"rate": None, "se": None, "n": 0}
    r = sum(hits) / n
    return {"rate": round(r, 4), "se": round(math.sqrt(r * (1 - r) / n), 4), "n": n}


def summarise(design: Design, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The validation figures from ``ab.results`` rows (slice ``all``) of the design.

    Raises:
        ValueError: an experiment or metric of the design has no analysable row.
    """
    from ab_testing.stats.power import power_from_se

    by_key = {(r["experiment_id"], r["metric"]): r for r in rows}
    alpha = design.alpha
    out: dict[str, Any] = {}
    for metric in (VALUE, CONVERTED):
        missing = [e for e in design.experiment_ids if (e, metric) not in by_key]
        bad = [
            e
            for e in design.experiment_ids
            if (e, metric) in by_key and by_key[(e, metric)]["p_value"] is None
        ]
        if missing or bad:
            raise ValueError(f"rows: {metric} not analysed for {sorted(missing + bad)[:5]}")
        aa = [by_key[(e, metric)] for e in design.aa_ids]
        pl = [by_key[(e, metric)] for e in design.planted_ids]
        truth = {e: design.truth(e, metric) for e in design.planted_ids}
        predicted = [
            float(power_from_se(truth[r["experiment_id"]], r["abs_se"], alpha=alpha)) for r in pl
        ]
        detected = [r["p_value"] < alpha and r["abs_lift"] > 0 for r in pl]
        mean_power = sum(predicted) / len(predicted) if predicted else math.nan
        figures: dict[str, Any] = {
            "method": sorted({str(r["method"]) for r in aa + pl}),
            "aa_false_positive_fixed": _rate([r["p_value"] < alpha for r in aa]),
            "aa_false_positive_peeking": _rate([r["p_value_sequential"] < alpha for r in aa]),
            "aa_mean_z": round(sum(r["statistic"] for r in aa) / len(aa), 3) if aa else None,
            "ci_coverage_planted": _rate(
                [r["abs_ci_low"] <= truth[r["experiment_id"]] <= r["abs_ci_high"] for r in pl]
            ),
            "detection": _rate(detected),
            "predicted_power": round(mean_power, 4) if predicted else None,
            "detection_minus_power_pp": (
                round(100 * (sum(detected) / len(detected) - mean_power), 2) if pl else None
            ),
            "detection_se_at_power_pp": (
                round(100 * math.sqrt(mean_power * (1 - mean_power) / len(pl)), 2) if pl else None
            ),
            "true_abs_lift": design.truth(design.planted_ids[0], metric) if pl else 0.0,
        }
        if metric == VALUE:
            everything = aa + pl
            expected = [design.expected_variance_reduction(r["experiment_id"]) for r in everything]
            measured = [float(r["variance_reduction"]) for r in everything]
            figures["aa_false_positive_fixed_unadjusted"] = _rate(
                [r["p_value_unadjusted"] < alpha for r in aa]
            )
            figures["variance_reduction"] = round(sum(measured) / len(measured), 4)
            figures["variance_reduction_sd"] = round(_sd(measured), 4)
            figures["variance_reduction_expected"] = round(sum(expected) / len(expected), 4)
            # Every experiment adjusts the same units' (x, y): one sample R^2, whose SE for a
            # bivariate normal is about 2 rho (1 - rho^2) / sqrt(n), diluted like rho^2.
            rho = design.rho
            dilution = sum(expected) / len(expected) / rho**2 if rho > 0 else 0.0
            se = 2 * rho * (1 - rho**2) / math.sqrt(design.units) * dilution
            figures["variance_reduction_expected_se"] = round(se, 4)
            figures["rho_squared"] = round(design.rho**2, 4)
        out[metric] = figures
    srm = [r["srm_p_value"] < alpha for r in rows if r["metric"] == VALUE]
    out["srm_p_below_alpha"] = _rate(srm)
    return out


def _sd(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def table(figures: dict[str, Any]) -> str:
    """A short human-readable table of :func:`summarise`'s figures."""

    def pct(rate: dict[str, Any]) -> str:
        if rate["rate"] is None:
            return "-"
        return f"{100 * rate['rate']:5.1f} % ± {100 * rate['se']:.1f} (n {rate['n']})"

    lines = [f"{'figure':34} {VALUE:28} {CONVERTED:28} goal"]
    rows = [
        ("A/A false positives, fixed", "aa_false_positive_fixed", "3-7 %"),
        ("A/A false positives, daily peeks", "aa_false_positive_peeking", "3-7 % (<= 5)"),
        ("CI coverage of planted lift", "ci_coverage_planted", "93-97 %"),
        ("detection rate", "detection", "power ± 5 pp"),
    ]
    for label, key, goal in rows:
        v, c = figures[VALUE][key], figures[CONVERTED][key]
        lines.append(f"{label:34} {pct(v):28} {pct(c):28} {goal}")
    v, c = figures[VALUE], figures[CONVERTED]

    def power(f: dict[str, Any]) -> str:
        if f["predicted_power"] is None:
            return "-"
        return f"{100 * f['predicted_power']:5.1f} % ({f['detection_minus_power_pp']:+.1f} pp)"

    lines.append(f"{'predicted power (diff)':34} {power(v):28} {power(c):28}")
    lines.append(
        f"{'variance reduction (adjustment)':34} {v['variance_reduction']:.4f} "
        f"(expected {v['variance_reduction_expected']:.4f} ± "
        f"{v['variance_reduction_expected_se']:.4f}, rho² {v['rho_squared']})"
    )
    return "\n".join(lines)
