"""Promotion gate: make the newest artifact of each model the champion, or keep the champion.

Usage (also ``spark-submit jobs/promote.py ...``)::

    python -m jobs.promote --ds 2026-01-05 [--margin 0.005] [--models two_tower,sasrec,ranker]
        [--split-id leave_last_out] [--artifacts-dir DIR]

For each model the challenger is its newest artifact and its NDCG@10 (slice ``all``) is read from
``eval.offline_metrics`` of ``--ds`` and ``--split-id`` (so ``jobs/evaluate.py`` must have run for
that day; the ranker is judged by its pipeline row ``two_tower+ranker``). The champion's NDCG@10 is
its row on the same day when it was evaluated there, else the value recorded at its promotion. The
decision (:func:`recsys.training.promotion.decide`) moves the champion pointer that scoring reads
(``recsys.training.registry``) and is logged with its reason and written to ``ops.model_decisions``
(day ``ds`` replaced in one commit). Exit status: 0 decided (promoted or kept), 1 a challenger has
no evaluation on ``ds``, 2 invalid arguments.
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

from jobs.common import configure_logging
from recsys.settings import load_settings
from recsys.training.artifacts import latest_artifact
from recsys.training.promotion import PROMOTED, GateDecision, GateInput, decide
from recsys.training.registry import artifacts_root, read_champion, set_champion
from recsys.warehouse.io import replace_partition
from recsys.warehouse.session import build_spark
from recsys.warehouse.tables import EVAL_OFFLINE_METRICS, OPS_MODEL_DECISIONS, Col

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("jobs.promote")

#: Artifact name -> the eval.offline_metrics model_name that judges it.
EVAL_NAME: Final = {"two_tower": "two_tower", "sasrec": "sasrec", "ranker": "two_tower+ranker"}


class MissingEvaluationError(RuntimeError):
    """A challenger has no NDCG@10 row on the evaluation day."""


@dataclass(frozen=True, slots=True)
class PromoteArgs:
    """One gate run, validated at the edge."""

    ds: date
    margin: float
    models: tuple[str, ...]
    artifacts_dir: Path | None
    split_id: str = "leave_last_out"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.margin) and 0 <= self.margin <= 1):
            raise ValueError(f"margin: expected a value in [0, 1], got {self.margin!r}")
        bad = [m for m in self.models if m not in EVAL_NAME]
        if bad or not self.models:
            raise ValueError(
                f"models: expected a subset of {tuple(EVAL_NAME)}, got {self.models!r}"
            )


def parse_args(argv: Sequence[str] | None) -> PromoteArgs:
    """Command line -> :class:`PromoteArgs` (ValueError on bad values)."""
    p = argparse.ArgumentParser(prog="jobs.promote", description=__doc__.split("\n\n")[0])
    p.add_argument("--ds", type=date.fromisoformat, required=True)
    p.add_argument("--margin", type=float, default=0.005, help="allowed NDCG@10 drop (absolute)")
    p.add_argument("--models", default=",".join(EVAL_NAME))
    p.add_argument("--artifacts-dir", type=Path, default=None)
    p.add_argument("--split-id", default="leave_last_out")
    a = p.parse_args(argv)
    models = tuple(m.strip() for m in a.models.split(",") if m.strip())
    return PromoteArgs(a.ds, a.margin, models, a.artifacts_dir, a.split_id)


def ndcg_rows(spark: SparkSession, ds: date, split_id: str) -> dict[tuple[str, str], float]:
    """``(eval model_name, artifact version) -> NDCG@10`` of ``ds`` (the ranker row keyed by
    the ranker part of ``<two_tower>+<ranker>``)."""
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
    out: dict[tuple[str, str], float] = {}
    for r in rows:
        version = str(r[Col.MODEL_VERSION])
        if r[Col.MODEL_NAME] == EVAL_NAME["ranker"]:
            version = version.rpartition("+")[2]
        out[(str(r[Col.MODEL_NAME]), version)] = float(r[Col.VALUE])
    return out


def gate_inputs(
    model: str, root: Path, margin: float, ndcg: dict[tuple[str, str], float], ds: date
) -> GateInput:
    """What the gate compares for ``model``.

    Raises:
        FileNotFoundError: no artifact of ``model`` exists.
        MissingEvaluationError: the newest artifact was not evaluated on ``ds``.
    """
    challenger = latest_artifact(root, model)
    if challenger is None:
        raise FileNotFoundError(f"models: no {model!r} artifact under {str(root)!r}; train first")
    key = (EVAL_NAME[model], challenger.version)
    if key not in ndcg:
        raise MissingEvaluationError(
            f"{model} {challenger.version} has no NDCG@10 in {EVAL_OFFLINE_METRICS} for ds={ds}; "
            "run jobs/evaluate.py for that day first"
        )
    champion = read_champion(root, model)
    champion_ndcg: float | None = None
    if champion is not None:
        champion_ndcg = ndcg.get((EVAL_NAME[model], champion.version), champion.ndcg_at_10)
    return GateInput(
        model_name=model,
        challenger_version=challenger.version,
        challenger_ndcg=ndcg[key],
        champion_version=None if champion is None else champion.version,
        champion_ndcg=champion_ndcg,
        margin=margin,
    )


def run(args: PromoteArgs, warehouse_root: str) -> list[GateDecision]:
    """Decide for every model, move champion pointers, write ``ops.model_decisions``."""
    spark = build_spark(app_name="promote")
    root = artifacts_root(args.artifacts_dir, warehouse_root)
    ndcg = ndcg_rows(spark, args.ds, args.split_id)
    decisions = [decide(gate_inputs(m, root, args.margin, ndcg, args.ds)) for m in args.models]
    run_id, now = str(uuid.uuid4()), datetime.now(UTC).replace(tzinfo=None)
    for d in decisions:
        g = d.inputs
        if d.decision == PROMOTED:
            artifact = latest_artifact(root, g.model_name)
            if artifact is None:  # removed between reading and promoting
                raise FileNotFoundError(f"{g.model_name}: artifact {g.challenger_version} vanished")
            set_champion(root, artifact, g.challenger_ndcg, d.reason)
        log.info("%s: %s: %s", g.model_name, d.decision, d.reason)
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
        for d in decisions
    ]
    schema = spark.table(OPS_MODEL_DECISIONS.qualified_name).schema
    replace_partition(spark.createDataFrame(rows, schema), OPS_MODEL_DECISIONS, args.ds)
    return decisions


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    try:
        args = parse_args(argv)
    except ValueError as err:
        log.error("%s", err)
        return 2
    try:
        run(args, load_settings().warehouse_root)
    except (FileNotFoundError, MissingEvaluationError) as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
