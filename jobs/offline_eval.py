"""One command from a MovieLens directory to the offline metrics table.

Usage::

    python -m jobs.offline_eval --input ../shared/data/ml-latest-small
        [--ds DAY] [--warehouse DIR] [--artifacts-dir DIR] [--source NAME] [--epochs N]
        [--seed S] [--no-content] [--models popularity,als,...] [--als-grid full|one]

It runs, in one process and one Spark session, the jobs the daily DAG runs, each through its own
``main``: create the tables (``jobs.setup_warehouse``), ingest the directory as the delivery
``--source`` of ``--ds`` (``jobs.ingest``; layout detected), build the leave-last-out features
(``jobs.features``), train the two-tower model, SASRec and the ranker that reads both
(``jobs.train``, each to early stopping unless ``--epochs``), then evaluate every model with full
ranking and print the table (``jobs.evaluate``). Every step replaces its own ``ds`` partition,
so a rerun gives the same tables; the new artifacts are the latest under ``--artifacts-dir``, and
those are what the evaluation reads.

By default it works in a warehouse of its own, ``.cache/offline-eval/<directory name>``, so the
demo's and production's tables, models and champions are not touched. The warehouse is chosen
through ``RECSYS_WAREHOUSE`` for this process, before the session exists; in a process whose
session already runs (tests), ``--warehouse`` must name that session's warehouse.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

from jobs import common
from recsys.ingest.layouts import detect_layout
from recsys.settings import PROJECT_ROOT
from recsys.training.loops import MODEL_NAMES

log = logging.getLogger("jobs.offline_eval")

#: Parent of the default per-dataset warehouses.
DEFAULT_ROOT: Final = PROJECT_ROOT / ".cache" / "offline-eval"
WAREHOUSE_ENV: Final = "RECSYS_WAREHOUSE"


@dataclass(frozen=True, slots=True)
class OfflineEvalConfig:
    """What to evaluate and where (validated by :func:`parse_args`).

    Attributes:
        input_path: A MovieLens directory (ml-latest-small, ml-100k or ml-1m layout).
        ds: The day every table partition and the delivery are written under.
        warehouse: Local warehouse root the run reads and writes.
        artifacts_dir: Where the models are written and read back; None for
            ``<warehouse>/_models``.
        source: Delivery name of the ingested data (default: the detected layout's name).
        epochs: Training epochs of every model; None for each model's default with early stopping.
        seed: Seed of the feature sampling and of every model, >= 0.
        content: Whether items get sentence-encoder embeddings (False: zeros, faster).
        models: Comma-separated models for ``jobs.evaluate --models`` (None: all).
        als_grid: ``full`` (8 points) or ``one`` for the ALS baseline's tuning.
    """

    input_path: Path
    ds: date
    warehouse: Path
    artifacts_dir: Path | None
    source: str
    epochs: int | None
    seed: int
    content: bool
    models: str | None
    als_grid: str


@dataclass(frozen=True, slots=True)
class Step:
    """One job of the run: its name, its ``main`` and the arguments it gets."""

    name: str
    main: Callable[[Sequence[str] | None], int]
    argv: tuple[str, ...]


def parse_args(argv: Sequence[str] | None) -> OfflineEvalConfig:
    """Command line -> :class:`OfflineEvalConfig`.

    Raises:
        ValueError: the input is not a readable MovieLens directory, or a value is out of range,
            naming the argument and the value.
    """
    p = argparse.ArgumentParser(prog="jobs.offline_eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, type=Path, help="MovieLens directory")
    p.add_argument("--ds", type=date.fromisoformat, default=datetime.now(UTC).date())
    p.add_argument("--warehouse", type=Path, help="default: .cache/offline-eval/<input name>")
    p.add_argument("--artifacts-dir", type=Path, help="default: <warehouse>/_models")
    p.add_argument("--source", help="delivery name (default: the detected layout's name)")
    p.add_argument("--epochs", type=int, help="every model (default: each to early stopping)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-content", action="store_true", help="no sentence-encoder embeddings")
    p.add_argument("--models", help="jobs.evaluate --models (default: all)")
    p.add_argument("--als-grid", choices=["full", "one"], default="full")
    args = p.parse_args(argv)
    if not args.input.is_dir():
        raise ValueError(f"--input: not a directory: {str(args.input)!r}")
    if args.epochs is not None and args.epochs < 1:
        raise ValueError(f"--epochs: must be >= 1, got {args.epochs!r}")
    if args.seed < 0:
        raise ValueError(f"--seed: must be >= 0, got {args.seed!r}")
    source = args.source or detect_layout(args.input).value
    warehouse = args.warehouse or DEFAULT_ROOT / args.input.resolve().name
    return OfflineEvalConfig(
        input_path=args.input,
        ds=args.ds,
        warehouse=warehouse.resolve(),
        artifacts_dir=args.artifacts_dir,
        source=source,
        epochs=args.epochs,
        seed=args.seed,
        content=not args.no_content,
        models=args.models,
        als_grid=args.als_grid,
    )


def plan(config: OfflineEvalConfig) -> list[Step]:
    """The jobs of one run, in order, with their arguments (pure)."""
    from jobs import evaluate, features, ingest, setup_warehouse, train

    ds = config.ds.isoformat()
    arts = () if config.artifacts_dir is None else ("--artifacts-dir", str(config.artifacts_dir))
    epochs = () if config.epochs is None else ("--epochs", str(config.epochs))
    seed = ("--seed", str(config.seed))
    no_content = () if config.content else ("--no-content",)
    steps = [
        Step("setup_warehouse", setup_warehouse.main, ()),
        Step(
            "ingest",
            ingest.main,
            ("--input", str(config.input_path), "--ds", ds, "--source", config.source),
        ),
        Step(
            "features",
            features.main,
            ("--ds", ds, "--source", config.source, "--source-ds", ds, *seed, *no_content),
        ),
    ]
    for model in MODEL_NAMES:  # the ranker last: it reads the other two
        steps.append(
            Step(
                "train_" + model, train.main, ("--model", model, "--ds", ds, *epochs, *seed, *arts)
            )
        )
    models = () if config.models is None else ("--models", config.models)
    steps.append(
        Step("evaluate", evaluate.main, ("--ds", ds, "--als-grid", config.als_grid, *models, *arts))
    )
    return steps


def _steps(job: common.Job[OfflineEvalConfig]) -> int:
    config = job.config
    config.warehouse.mkdir(parents=True, exist_ok=True)
    os.environ[WAREHOUSE_ENV] = str(config.warehouse)
    log.info(
        "%s (%s) -> warehouse %s, ds=%s",
        config.input_path,
        config.source,
        config.warehouse,
        config.ds,
    )
    for step in plan(config):
        started = time.perf_counter()
        code = step.main(list(step.argv))
        if code != 0:
            log.error("%s failed (exit %d); later steps not run", step.name, code)
            return code
        log.info("%s done in %.1f s", step.name, time.perf_counter() - started)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run every step; 0 when all succeed, else the failing step's code (the rest are skipped)."""
    return common.run_job(log, argv, parse_args, _steps, app_name="offline_eval")


if __name__ == "__main__":
    sys.exit(main())
