"""Per-experiment analysis: SRM, tests, corrections, power, sequential p, decisions."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Final

import numpy as np

from ab_testing.settings import OVERALL_SLICE, AnalysisConfig, Decision, Reason
from ab_testing.stats.comparison import Comparison
from ab_testing.stats.cuped import cuped_ratio_test, cuped_t_test
from ab_testing.stats.experiment import (
    Cell,
    ExperimentData,
    MetricSpec,
    ResultRow,
    validate_experiment,
)
from ab_testing.stats.guardrail import non_inferiority_test
from ab_testing.stats.moments import RegressionStats
from ab_testing.stats.multitest import adjust_p_values
from ab_testing.stats.power import mde_from_se, power_from_se
from ab_testing.stats.proportion import two_proportion_z_test
from ab_testing.stats.ratio import delta_ratio_test
from ab_testing.stats.regression import RegressionResult, regression_adjusted_test, regression_test
from ab_testing.stats.sequential import sequential_test
from ab_testing.stats.srm import SrmResult, srm_test
from ab_testing.stats.sufficient import (
    AnyStats,
    CupedRatioStats,
    CupedStats,
    RatioStats,
    SampleStats,
    regression_outcome,
)
from ab_testing.stats.ttest import welch_t_test

NAN = math.nan
TestFn = Callable[..., Comparison]
#: The result fields of a row without a comparison: no method or counts, every figure NaN.
_NO_RESULT: Final[Mapping[str, Any]] = {
    "method": None,
    "n_control": None,
    "n_variant": None,
    **dict.fromkeys(
        (
            "mean_control",
            "mean_variant",
            "abs_lift",
            "abs_ci_low",
            "abs_ci_high",
            "rel_lift",
            "rel_ci_low",
            "rel_ci_high",
            "p_value",
            "p_value_adjusted",
            "p_value_sequential",
            "p_value_noninferiority",
            "power",
            "mde_relative",
        ),
        NAN,
    ),
}


def select_test(spec: MetricSpec, stats: AnyStats) -> tuple[TestFn, Callable[[Any], Any]]:
    """The test for a metric and the statistics type, plus a map applied to each arm's
    statistics first (drops the covariates when ``use_cuped`` is False).

    :class:`RegressionStats` with ``use_cuped`` get Lin's regression adjustment (HC1); without
    it, or without covariates, their outcome gets the unadjusted test of the metric's kind.
    """
    keep: Callable[[Any], Any] = lambda s: s  # noqa: E731
    if isinstance(stats, RegressionStats):
        if spec.use_cuped and stats.covariates:
            return regression_test, keep
        stats, keep = regression_outcome(stats), regression_outcome
        if isinstance(stats, RatioStats):
            return delta_ratio_test, keep
    if isinstance(stats, CupedStats):
        if spec.use_cuped:
            return cuped_t_test, keep
        stats, keep = stats.outcome, lambda s: s.outcome
    if isinstance(stats, CupedRatioStats):
        if spec.use_cuped:
            return cuped_ratio_test, keep
        return delta_ratio_test, lambda s: s.ratio_stats
    if isinstance(stats, RatioStats):
        return delta_ratio_test, keep
    if isinstance(stats, SampleStats):
        return (two_proportion_z_test if spec.kind == "binomial" else welch_t_test), keep
    raise TypeError(f"stats must be a sufficient-statistics object, got {type(stats).__name__}")


def _empty_row(
    exp: ExperimentData,
    spec: MetricSpec,
    variant: str,
    slice_: str,
    decision: Decision,
    reason: Reason,
    srm_p: float,
) -> ResultRow:
    return ResultRow(
        experiment_id=exp.experiment_id,
        metric=spec.name,
        variant=variant,
        control=exp.control,
        slice=slice_,
        kind=spec.kind,
        guardrail=spec.guardrail,
        srm_p_value=srm_p,
        decision=decision,
        reason=reason,
        **_NO_RESULT,
    )


@dataclass(frozen=True, slots=True)
class _Draft:
    row: ResultRow
    primary: bool  # in the multiple-testing family


def _analyse_pair(
    exp: ExperimentData,
    spec: MetricSpec,
    control: Cell,
    treated: Cell,
    srm_p: float,
    config: AnalysisConfig,
) -> _Draft:
    test, prep = select_test(spec, control.stats)
    reg: RegressionResult | None = None
    if test is regression_test:
        reg = regression_adjusted_test(control.stats, treated.stats, alpha=config.alpha)  # type: ignore[arg-type]
        comp = reg.adjusted
    else:
        comp = test(prep(control.stats), prep(treated.stats), alpha=config.alpha)
    seq_p = NAN
    if control.daily and treated.daily:
        if len(control.daily) != len(treated.daily):
            raise ValueError(
                f"daily looks of {spec.name!r} differ in length: control "
                f"{len(control.daily)}, {treated.variant!r} {len(treated.daily)}"
            )
        # For regression-adjusted metrics the mSPRT gets, at each look, Lin's adjusted
        # estimate and its HC1 variance (regression_test on that look's cumulative moments).
        # Valid because the mSPRT needs only that the look-k estimates be asymptotically
        # normal with the canonical joint distribution (independent increments in information
        # 1/V_k): Lin's estimator is asymptotically linear, tau_hat_k - tau = mean over the
        # units seen by look k of a fixed influence value (the slopes converge to their limit,
        # whose estimation error is second order), so the cumulative estimates are normalised
        # partial sums, as for the unadjusted difference; HC1 estimates V_k consistently under
        # heteroskedasticity.  Jennison & Turnbull (1997), "Group-sequential analysis
        # incorporating covariate information", JASA 92(440):1330-1341, show exactly this for
        # covariate-adjusted estimates; the mSPRT is then valid as in Johari et al. (2017).
        seq = sequential_test(
            [prep(s) for s in control.daily],
            [prep(s) for s in treated.daily],
            test=partial(test, alpha=config.alpha),
            tau=config.sequential_tau,
            alpha=config.alpha,
        )
        seq_p = float(seq.p_value)
    mean_c = float(comp.mean_control if reg is None else reg.unadjusted.mean_control)
    target = spec.target_relative_effect or config.target_relative_effect
    power = float(power_from_se(target * abs(mean_c), comp.abs_se, alpha=config.alpha))
    mde = float(mde_from_se(comp.abs_se, alpha=config.alpha, power=config.power))
    mde_rel = mde / abs(mean_c) if mean_c != 0 else NAN
    ni_p = NAN
    if spec.guardrail and spec.margin is not None:
        ni = non_inferiority_test(
            comp,
            margin=spec.margin,
            margin_type=spec.margin_type,
            higher_is_better=spec.higher_is_better,
            alpha=config.alpha,
        )
        ni_p = float(ni.p_value)
    row = ResultRow(
        experiment_id=exp.experiment_id,
        metric=spec.name,
        variant=treated.variant,
        control=exp.control,
        slice=control.slice,
        kind=spec.kind,
        guardrail=spec.guardrail,
        method=comp.method,
        n_control=round(float(comp.n_control)),
        n_variant=round(float(comp.n_treatment)),
        mean_control=mean_c,
        mean_variant=float(comp.mean_treatment if reg is None else reg.unadjusted.mean_treatment),
        abs_lift=float(comp.abs_lift),
        abs_ci_low=float(comp.abs_ci_low),
        abs_ci_high=float(comp.abs_ci_high),
        rel_lift=float(comp.rel_lift),
        rel_ci_low=float(comp.rel_ci_low),
        rel_ci_high=float(comp.rel_ci_high),
        p_value=float(comp.p_value),
        p_value_adjusted=NAN,
        p_value_sequential=seq_p,
        p_value_noninferiority=ni_p,
        srm_p_value=srm_p,
        power=power,
        mde_relative=mde_rel,
        decision="not_analysable" if math.isnan(float(comp.p_value)) else "inconclusive",
        reason=comp.reason,
        **_details(comp, reg),
    )
    return _Draft(row, primary=not spec.guardrail and not math.isnan(row.p_value))


def _details(comp: Comparison, reg: RegressionResult | None) -> dict[str, Any]:
    """The test-detail and regression-adjustment fields of a :class:`ResultRow`."""
    df = float(comp.df)
    fields: dict[str, Any] = {
        "abs_se": float(comp.abs_se),
        "statistic": float(comp.statistic),
        "df": None if math.isinf(df) else df,
    }
    if reg is None:
        return fields
    return fields | {
        "mean_control_adjusted": float(comp.mean_control),
        "mean_variant_adjusted": float(comp.mean_treatment),
        # the row's mean_* stay unadjusted, as for every other method
        "variance_reduction": float(reg.variance_reduction),
        "abs_lift_unadjusted": float(reg.unadjusted.abs_lift),
        "abs_se_unadjusted": float(reg.unadjusted.abs_se),
        "p_value_unadjusted": float(reg.unadjusted.p_value),
        "covariates": reg.covariates,
        "theta_control": tuple(float(t) for t in reg.theta_control),
        "theta_variant": tuple(float(t) for t in reg.theta_treatment),
        "n_filled_control": tuple((k, round(float(v))) for k, v in reg.n_filled_control.items()),
        "n_filled_variant": tuple((k, round(float(v))) for k, v in reg.n_filled_treatment.items()),
    }


def _decide(row: ResultRow, spec: MetricSpec, srm: SrmResult, config: AnalysisConfig) -> ResultRow:
    if row.decision in ("not_analysable", "suppressed"):
        return row
    if not srm.passed:
        return replace(row, decision="srm_fail", reason="sample_ratio_mismatch")
    decision: Decision
    if spec.guardrail:
        ni_ok = row.p_value_noninferiority < config.alpha
        decision = "not_worse" if ni_ok else "possibly_worse"
    elif row.p_value_adjusted < config.alpha:
        good = (row.abs_lift > 0) == spec.higher_is_better
        decision = "ship" if good else "harm"
    else:
        decision = "no_effect" if row.power >= config.power else "inconclusive"
    return replace(row, decision=decision)


def _srm(exp: ExperimentData, weights: Mapping[str, float], config: AnalysisConfig) -> SrmResult:
    counts = exp.assignment_counts
    if counts is None:
        first = exp.metrics[0].name
        counts = {
            c.variant: float(np.asarray(c.stats.n))
            for c in exp.cells
            if c.metric == first and c.slice == OVERALL_SLICE
        }
    return srm_test(counts, weights, threshold=config.srm_threshold)


def _check_config(config: AnalysisConfig | None) -> AnalysisConfig:
    if config is None:
        return AnalysisConfig()
    if not isinstance(config, AnalysisConfig):
        raise TypeError(f"config must be an AnalysisConfig, got {config!r}")
    return config


def analyze_experiment(
    experiment: ExperimentData, config: AnalysisConfig | None = None
) -> list[ResultRow]:
    """Analyse one experiment: one row per (slice, metric, non-control variant).

    Steps: validate the input (caller mistakes raise ValueError/TypeError); SRM chi-square
    on units per variant; per slice, suppress arms below ``min_units_per_slice``; run the
    metric's test (z / Welch / delta-method ratio, CUPED when covariate statistics are
    given); mSPRT p-value when daily cumulative statistics are given; correct the primary
    (non-guardrail) p-values within each slice; non-inferiority for guardrails; decide.
    Rows are ordered: overall slice first, then slices sorted; metrics and variants in input
    order.  Unanalysable data never raises: the row has ``reason`` set and NaN numbers.
    """
    config = _check_config(config)
    if not isinstance(experiment, ExperimentData):
        raise TypeError(f"experiment must be an ExperimentData, got {experiment!r}")
    weights = validate_experiment(experiment)
    srm = _srm(experiment, weights, config)
    cells = {(c.slice, c.metric, c.variant): c for c in experiment.cells}
    present = {c.slice for c in experiment.cells} or {OVERALL_SLICE}
    slices = sorted(present, key=lambda s: (s != OVERALL_SLICE, s))
    treatments = [v for v in weights if v != experiment.control]
    rows: list[ResultRow] = []
    for slice_ in slices:
        drafts: list[tuple[_Draft, MetricSpec]] = []
        for spec in experiment.metrics:
            for variant in treatments:
                ctrl = cells.get((slice_, spec.name, experiment.control))
                trt = cells.get((slice_, spec.name, variant))
                if ctrl is None or trt is None:
                    why: Reason = "missing_control" if ctrl is None else "missing_variant"
                    row = _empty_row(
                        experiment, spec, variant, slice_, "not_analysable", why, srm.p_value
                    )
                    drafts.append((_Draft(row, False), spec))
                elif (
                    min(float(np.asarray(ctrl.stats.n)), float(np.asarray(trt.stats.n)))
                    < config.min_units_per_slice
                ):
                    row = _empty_row(
                        experiment,
                        spec,
                        variant,
                        slice_,
                        "suppressed",
                        "suppressed_small_slice",
                        srm.p_value,
                    )
                    drafts.append((_Draft(row, False), spec))
                else:
                    drafts.append(
                        (_analyse_pair(experiment, spec, ctrl, trt, srm.p_value, config), spec)
                    )
        family = [i for i, (d, _) in enumerate(drafts) if d.primary]
        adjusted = adjust_p_values([drafts[i][0].row.p_value for i in family], config.correction)
        adj_by_index = dict(zip(family, adjusted.tolist(), strict=True))
        for i, (draft, spec) in enumerate(drafts):
            row = draft.row
            if i in adj_by_index:
                row = replace(row, p_value_adjusted=adj_by_index[i])
            rows.append(_decide(row, spec, srm, config))
    return rows


def error_row(experiment: ExperimentData, exc: Exception) -> ResultRow:
    """The single row reported for an experiment whose analysis raised ``exc``."""
    exp_id = getattr(experiment, "experiment_id", None)
    control = getattr(experiment, "control", None)
    exp_id = exp_id if isinstance(exp_id, str) else "?"
    control = control if isinstance(control, str) else "?"
    return ResultRow(
        experiment_id=exp_id,
        metric="*",
        variant="*",
        control=control,
        slice="*",
        kind=None,
        guardrail=False,
        srm_p_value=NAN,
        decision="not_analysable",
        reason="error",
        detail=f"{type(exc).__name__}: {exc}",
        **_NO_RESULT,
    )


def analyze_experiments(
    experiments: Iterable[ExperimentData], config: AnalysisConfig | None = None
) -> list[ResultRow]:
    """Analyse many experiments, isolating failures: an experiment whose analysis raises
    (bad input included) contributes one ``error`` row (metric/variant/slice "*", message
    in ``detail``) and the others proceed.  ``config`` is validated once, up front."""
    config = _check_config(config)
    rows: list[ResultRow] = []
    for experiment in experiments:
        try:
            rows.extend(analyze_experiment(experiment, config))
        except Exception as exc:  # isolate one experiment's failure from the batch
            rows.append(error_row(experiment, exc))
    return rows
