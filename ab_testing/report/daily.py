"""Daily cumulative series for the report, computed from the cells' daily looks."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from ab_testing.report.model import DailyPoint
from ab_testing.settings import OVERALL_SLICE, AnalysisConfig
from ab_testing.stats.analysis import select_test
from ab_testing.stats.experiment import ExperimentData, validate_experiment
from ab_testing.stats.sequential import always_valid
from ab_testing.stats.sufficient import stack_stats

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date


def daily_points(
    experiment: ExperimentData, days: Sequence[date], config: AnalysisConfig | None = None
) -> list[DailyPoint]:
    """Cumulative relative lift, its CI and the always-valid p-value at every daily look.

    Uses the overall-slice cells that carry ``daily`` looks (one per entry of ``days``,
    chronological) and the same test as :func:`ab_testing.stats.analyze_experiment`.  The
    CI at each day is the fixed-horizon one (it is not corrected for peeking; the
    ``p_sequential`` is).  Looks where an arm has fewer than ``min_units_per_slice`` units
    are NaN, as the analysis suppresses such arms.
    """
    config = AnalysisConfig() if config is None else config
    if not isinstance(config, AnalysisConfig):
        raise TypeError(f"config must be an AnalysisConfig, got {config!r}")
    if not isinstance(experiment, ExperimentData):
        raise TypeError(f"experiment must be an ExperimentData, got {experiment!r}")
    days = list(days)
    if any(a >= b for a, b in itertools.pairwise(days)):
        raise ValueError(f"days must be strictly increasing, got {days!r}")
    weights = validate_experiment(experiment)
    cells = {(c.metric, c.variant): c for c in experiment.cells if c.slice == OVERALL_SLICE}
    points: list[DailyPoint] = []
    for spec in experiment.metrics:
        ctrl = cells.get((spec.name, experiment.control))
        for variant in (v for v in weights if v != experiment.control):
            trt = cells.get((spec.name, variant))
            if ctrl is None or trt is None or not ctrl.daily or not trt.daily:
                continue
            for cell in (ctrl, trt):
                if len(cell.daily) != len(days):
                    raise ValueError(
                        f"days must have one entry per daily look of {spec.name!r} "
                        f"({len(cell.daily)} for {cell.variant!r}), got {len(days)}"
                    )
            test, prep = select_test(spec, ctrl.stats)
            comp = test(
                stack_stats([prep(s) for s in ctrl.daily]),
                stack_stats([prep(s) for s in trt.daily]),
                alpha=config.alpha,
            )
            seq = always_valid(comp, tau=config.sequential_tau, alpha=config.alpha)
            small = np.minimum(comp.n_control, comp.n_treatment) < config.min_units_per_slice
            cols = [
                np.where(small, np.nan, np.asarray(c, dtype=np.float64))
                for c in (comp.rel_lift, comp.rel_ci_low, comp.rel_ci_high, seq.p_values)
            ]
            points += [
                DailyPoint(day, spec.name, variant, *(float(c[k]) for c in cols))
                for k, day in enumerate(days)
            ]
    return points
