"""Promotion gate: make the evaluated model bundle the champion, or keep the champion bundle.

Usage (also ``spark-submit jobs/promote.py ...``)::

    python -m jobs.promote --ds 2026-01-05 [--margin 0.005] [--models two_tower,sasrec,ranker]
        [--split-id leave_last_out] [--artifacts-dir DIR] [--bundle ID]

The unit is the model bundle (:mod:`recsys.training.bundle`: two-tower + SASRec + ranker +
co-visitation settings). The challenger is the bundle ``jobs/evaluate.py`` judged on ``--ds`` and
``--split-id``: the ``model_version`` of that day's ``two_tower+ranker`` row in
``eval.offline_metrics`` (``--bundle`` names it when several were judged that day); never the
newest artifacts, so a model trained after the evaluation is not promoted with another's score.
Gates, each on NDCG@10 (slice ``all``) with :func:`recsys.training.promotion.decide`: ``ranker``,
the bundle's pipeline row against the champion bundle's; ``two_tower`` and ``sasrec``, the
member's own row against the champion bundle's member (a member shared with the champion passes).
A champion's NDCG@10 is its row on the same day when it was evaluated there, else the value
recorded at its promotion. The bundle is promoted, as a unit, only when every gate of ``--models``
passes: the bundle pointer that scoring reads moves (and the per-model pointers follow). Rows go
to ``ops.model_decisions`` (day ``ds`` replaced in one commit): one per gate and one ``bundle`` row
naming the bundle, all with the bundle's decision. Exit status: 0 decided (promoted or kept), 1 no
evaluated bundle on ``ds`` (or a gated member has no row), 2 invalid arguments or a bundle that
does not hold together.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pyspark.sql import functions as F

from jobs import common
from recsys.training.bundle import (
    BundleMismatchError,
    ModelBundle,
    champion_bundle,
    check_bundle_id,
    set_bundle_champion,
)
from recsys.training.promotion import KEPT, PROMOTED, Decision, GateDecision, GateInput, decide
from recsys.training.registry import artifacts_root, read_champion, set_champion
from recsys.warehouse.io import replace_partition
from recsys.warehouse.session import build_spark
from recsys.warehouse.tables import EVAL_OFFLINE_METRICS, OPS_MODEL_DECISIONS, Col

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("jobs.promote")

#: Artifact name -> the eval.offline_metrics model_name that judges it.
EVAL_NAME: Final = {"two_tower": "two_tower", "sasrec": "sasrec", "ranker": "two_tower+ranker"}
#: ``ops.model_decisions.model_name`` of the row that names the bundle.
BUNDLE_ROW: Final = "bundle"


class MissingEvaluationError(RuntimeError):
    """The challenger bundle (or a gated member) has no NDCG@10 row on the evaluation day."""


@dataclass(frozen=True, slots=True)
class PromoteArgs:
    """One gate run, validated at the edge."""

    ds: date
    margin: float
    models: tuple[str, ...]
    artifacts_dir: Path | None
    split_id: str = "leave_last_out"
    bundle: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.margin) and 0 <= self.margin <= 1):
            raise ValueError(f"margin: expected a value in [0, 1], got {self.margin!r}")
        bad = [m for m in self.models if m not in EVAL_NAME]
        if bad or not self.models:
            raise ValueError(
                f"models: expected a subset of {tuple(EVAL_NAME)}, got {self.models!r}"
            )
        if self.bundle is not None:
            check_bundle_id("bundle", self.bundle)


def parse_args(argv: Sequence[str] | None) -> PromoteArgs:
    """Command line -> :class:`PromoteArgs` (ValueError on bad values)."""
    p = argparse.ArgumentParser(prog="jobs.promote", description=__doc__.split("\n\n")[0])
    p.add_argument("--ds", type=date.fromisoformat, required=True)
    p.add_argument("--margin", type=float, default=0.005, help="allowed NDCG@10 drop (absolute)")
    p.add_argument("--models", default=",".join(EVAL_NAME), help="gates that must pass")
    p.add_argument("--artifacts-dir", type=Path, default=None)
    p.add_argument("--split-id", default="leave_last_out")
    p.add_argument(
        "--bundle", default=None, help="the evaluated bundle to judge (default: the one of ds)"
    )
    a = p.parse_args(argv)
    models = tuple(m.strip() for m in a.models.split(",") if m.strip())
    return PromoteArgs(a.ds, a.margin, models, a.artifacts_dir, a.split_id, a.bundle)


def ndcg_rows(spark: SparkSession, ds: date, split_id: str) -> dict[tuple[str, str], float]:
    """``(eval model_name, model_version) -> NDCG@10`` of ``ds`` (``two_tower+ranker`` rows are
    keyed by bundle id)."""
    rows = (
        spark.table(EVAL_OFFLINE_METRICS.qualified_name)
        .where(
            (F.col(Col.DS) == F.lit(ds))
            & (F.col(Col.SPLIT_ID) == F.lit(split_id))
            & (F.col(Col.METRIC) == F.lit("ndcg"))
            & (F.col(Col.K) == F.lit(10))
            & (F.col(Col.SLICE) == F.lit("all"))
        )
        .select(Col.MODEL_NAME, Col.MODEL_VERSION, Col.VALUE)
        .collect()
    )
    return {(str(r[Col.MODEL_NAME]), str(r[Col.MODEL_VERSION])): float(r[Col.VALUE]) for r in rows}


def evaluated_bundle(
    root: Path,
    ndcg: dict[tuple[str, str], float],
    ds: date,
    explicit: str | None,
    champion_id: str | None,
) -> ModelBundle:
    """The bundle judged on ``ds``: ``explicit``, else the one ``two_tower+ranker`` row that is
    not the champion's (the champion's alone: the champion).

    Raises:
        MissingEvaluationError: no such row, or several challengers and no ``explicit``.
        FileNotFoundError, BundleMismatchError: the bundle does not hold together.
    """
    judged = sorted(v for (name, v) in ndcg if name == EVAL_NAME["ranker"])
    hint = "run jobs/evaluate.py for that day first"
    if explicit is not None:
        if explicit not in judged:
            raise MissingEvaluationError(
                f"bundle: {explicit} has no NDCG@10 in {EVAL_OFFLINE_METRICS} for ds={ds}; {hint}"
            )
        return ModelBundle.load(root, explicit)
    challengers = [v for v in judged if v != champion_id] or judged
    if not challengers:
        raise MissingEvaluationError(
            f"no {EVAL_NAME['ranker']} row (a model bundle) in {EVAL_OFFLINE_METRICS} for "
            f"ds={ds}; {hint}"
        )
    if len(challengers) > 1:
        raise MissingEvaluationError(
            f"{len(challengers)} bundles were judged on ds={ds} ({', '.join(challengers)}): "
            "name one with --bundle"
        )
    return ModelBundle.load(root, challengers[0])


def gate_inputs(
    model: str,
    root: Path,
    margin: float,
    ndcg: dict[tuple[str, str], float],
    ds: date,
    challenger: ModelBundle,
    champion: tuple[ModelBundle, float] | None,
) -> GateInput:
    """What the gate compares for member ``model`` of the ``challenger`` bundle (``ranker``:
    the bundle's pipeline row, keyed by bundle id) against the champion bundle.

    Raises:
        MissingEvaluationError: the member was not evaluated on ``ds``.
    """
    eval_name = EVAL_NAME[model]
    if model == "ranker":
        version, champ_version = challenger.bundle_id, None
        if champion is not None:
            champ_version = champion[0].bundle_id
    else:
        version = challenger.version_of(model) or ""
        champ_version = None if champion is None else champion[0].version_of(model)
    key = (eval_name, version)
    if key not in ndcg:
        raise MissingEvaluationError(
            f"{model} {version or '(none in the bundle)'} of bundle {challenger.bundle_id} has no "
            f"NDCG@10 in {EVAL_OFFLINE_METRICS} for ds={ds}; run jobs/evaluate.py for that day "
            "first, or leave it out of --models"
        )
    champion_ndcg = None
    if champion is not None and champ_version is not None:
        champion_ndcg = ndcg.get((eval_name, champ_version))
        if champion_ndcg is None:
            champion_ndcg = _recorded_ndcg(root, model, champ_version, champion[1])
        if champion_ndcg is None:
            champ_version = None  # nothing to compare with: the member is judged as new
    return GateInput(
        model_name=model,
        challenger_version=version,
        challenger_ndcg=ndcg[key],
        champion_version=champ_version,
        champion_ndcg=champion_ndcg,
        margin=margin,
    )


def _champion(root: Path) -> tuple[ModelBundle, float] | None:
    """The champion bundle; None, with a warning, when none can be made out (a per-model ranker
    champion that records no two-tower): the gate then judges the challenger as the first."""
    try:
        return champion_bundle(root)
    except (BundleMismatchError, FileNotFoundError) as err:
        log.warning("no usable champion bundle, judging the challenger alone: %s", err)
        return None


def _recorded_ndcg(root: Path, model: str, version: str, bundle_ndcg: float) -> float | None:
    """The champion's NDCG@10 at its promotion: the bundle pointer's for the pipeline, the
    per-model pointer's for a member (None when it records another version)."""
    if model == "ranker":
        return bundle_ndcg
    recorded = read_champion(root, model)
    return recorded.ndcg_at_10 if recorded is not None and recorded.version == version else None


def _passes(d: GateDecision) -> bool:
    g = d.inputs
    return d.decision == PROMOTED or g.challenger_version == g.champion_version


def bundle_decision(
    challenger: ModelBundle, champion: tuple[ModelBundle, float] | None, gates: list[GateDecision]
) -> tuple[Decision, str]:
    """Promote the bundle when it is not the champion and every gate passed."""
    if champion is not None and champion[0].bundle_id == challenger.bundle_id:
        return KEPT, f"bundle {challenger.bundle_id} is already the champion"
    failed = [d for d in gates if not _passes(d)]
    if failed:
        why = "; ".join(f"{d.inputs.model_name}: {d.reason}" for d in failed)
        return KEPT, f"bundle {challenger.bundle_id} kept out by {why}"
    return PROMOTED, f"bundle {challenger.bundle_id} passed every gate"


def run(args: PromoteArgs, warehouse_root: str) -> list[GateDecision]:
    """Decide for the evaluated bundle, move the bundle pointer, write ``ops.model_decisions``.

    Returns the per-gate decisions followed by the bundle's (model_name ``bundle``).
    """
    spark = build_spark(app_name="promote")
    root = artifacts_root(args.artifacts_dir, warehouse_root)
    ndcg = ndcg_rows(spark, args.ds, args.split_id)
    champion = _champion(root)
    champion_id = None if champion is None else champion[0].bundle_id
    challenger = evaluated_bundle(root, ndcg, args.ds, args.bundle, champion_id)
    # A member the bundle does not have (a ranker trained without SASRec) has no gate.
    gated = [m for m in args.models if challenger.version_of(m) is not None]
    gates = [
        decide(gate_inputs(m, root, args.margin, ndcg, args.ds, challenger, champion))
        for m in gated
    ]
    final, reason = bundle_decision(challenger, champion, gates)
    pipeline_ndcg = ndcg[(EVAL_NAME["ranker"], challenger.bundle_id)]
    champion_ndcg = ndcg.get((EVAL_NAME["ranker"], champion_id or ""))
    if champion is not None and champion_ndcg is None:
        champion_ndcg = champion[1]
    unit = GateDecision(
        GateInput(
            model_name=BUNDLE_ROW,
            challenger_version=challenger.bundle_id,
            challenger_ndcg=pipeline_ndcg,
            champion_version=champion_id,
            champion_ndcg=champion_ndcg,
            margin=args.margin,
        ),
        final,
        reason,
    )
    if final == PROMOTED:
        # The versions judged above, never re-read "latest": the bundle is the unit that moves.
        set_bundle_champion(root, challenger, pipeline_ndcg, reason)
        for d in gates:
            if d.inputs.model_name != "ranker":
                art = challenger.artifact(root, d.inputs.model_name)
                set_champion(root, art, d.inputs.challenger_ndcg, d.reason)
        set_champion(root, challenger.artifact(root, "ranker"), pipeline_ndcg, reason)
    for d in gates:
        log.info("%s gate: %s: %s", d.inputs.model_name, d.decision, d.reason)
    log.info("bundle %s: %s: %s", challenger.bundle_id, final, reason)
    decided = [GateDecision(d.inputs, final, f"{d.reason} -> bundle {final}") for d in gates] + [
        unit
    ]
    run_id, now = str(uuid.uuid4()), datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (
            d.inputs.model_name,
            d.inputs.challenger_version,
            d.inputs.challenger_ndcg,
            d.inputs.champion_version,
            d.inputs.champion_ndcg,
            d.inputs.margin,
            d.decision,
            d.reason,
            run_id,
            now,
            args.ds,
        )
        for d in decided
    ]
    schema = spark.table(OPS_MODEL_DECISIONS.qualified_name).schema
    replace_partition(spark.createDataFrame(rows, schema), OPS_MODEL_DECISIONS, args.ds)
    return decided


# a ValueError of the body is a BundleMismatchError: a bundle that does not hold together
main = common.job_main(
    "promote",
    parse_args,
    common.on_warehouse(run),
    exits=(((FileNotFoundError, MissingEvaluationError), 1), (ValueError, 2)),
)


if __name__ == "__main__":
    sys.exit(main())
