"""Batch scoring of one ds: embeddings, retrieval, ranking with explanations, publishing.

Usage (also through ``spark-submit jobs/score.py ...``)::

    python -m jobs.score embeddings|retrieve-rank|retrieve|rank|publish|all --ds 2026-11-28
        [--split-id leave_last_out] [--artifacts-dir DIR] [--run-id ID]
        [--bundle ID] [--two-tower-version V] [--sasrec-version V] [--ranker-version V]
        [--k 200] [--n 50] [--candidates-sample 1000] (retrieve-rank, all)
        [--require-dq] (publish)

- ``embeddings``: two-tower item and user vectors -> ``serve.item_embeddings``,
  ``serve.user_embeddings``.
- ``retrieve-rank`` (the daily ``scoring`` task): retrieval and ranking fused per batch of users
  in one ``mapInArrow`` (:mod:`recsys.scoring.fused_step`): top-K unseen items per user and
  source (two-tower, plus SASRec when an artifact exists; trending/popularity fallbacks for
  users without history), merged, ranked; only the ranker top-N with an explanation per row
  (rec_set ``model``) and the most popular unseen items (rec_set ``popularity``) are written,
  to ``serve.ranked``. ``serve.candidates`` gets the merged candidates of a seeded sample of
  ``--candidates-sample`` users (default 1,000; 0 = none) for debugging and analysis.
- ``retrieve`` then ``rank``: the same result in two steps through the full
  ``serve.candidates`` of every user (the reference of the fused path, for debugging; not in
  ``all``).
- ``publish``: day ds of ``serve.ranked`` -> ``serve.recommendations`` in one Delta commit
  (``serve.recommendations_latest`` shows the newest ds), then the day's completion record
  (``ops.completed_runs``, pipeline ``recsys_daily``). With ``--require-dq`` (as in
  ``recsys_daily``) it refuses, exit 1, unless ``ops.dq_checks`` holds checks of ds by this run id
  (``jobs/dq_checks.py --run-id``) and all passed: a failed or skipped check never goes live.
- ``all``: ``embeddings``, ``retrieve-rank`` and ``publish`` in one session.

Each step replaces day ``ds`` of its tables (a rerun never duplicates); the run id (default: a new
uuid) is written on every row. Models: one model bundle (two-tower + SASRec + ranker +
co-visitation settings, :mod:`recsys.training.bundle`) under ``--artifacts-dir`` (default
``<warehouse_root>/_models``), loaded once per run: ``--bundle``, else the bundle of a pinned
``--ranker-version``, else the champion bundle (before any promotion, the newest). Pinned
versions must be the bundle's, and a bundle whose ranker was trained with another two-tower or
SASRec is refused. Exits 2 on bad arguments (before Spark starts), missing inputs/artifacts or
a mismatched model pair, 1 when ``--require-dq`` refuses to publish.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

if __package__ in (None, "") and __name__ == "__main__":  # spark-submit jobs/score.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs import common

log = logging.getLogger("jobs.score")

#: What ``all`` runs, in order.
STEPS: Final = ("embeddings", "retrieve-rank", "publish")
#: The two-step path (full ``serve.candidates``), the fused step's reference.
TWO_STEP: Final = ("retrieve", "rank")
COMMANDS: Final = (*STEPS, *TWO_STEP, "all")
#: Default ``--candidates-sample``: users whose merged candidates go to ``serve.candidates``
#: (a seeded hash sample, :func:`recsys.training.samples.sample_users`; 0 = none).
CANDIDATES_SAMPLE: Final = 1_000
#: Largest ``--candidates-sample`` (the table is for looking at, not for every user).
MAX_CANDIDATES_SAMPLE: Final = 1_000_000
#: Arrow rows per batch handed to the Python workers (bigger batches, fewer round trips).
ARROW_BATCH_ROWS: Final = 20_000


@dataclass(frozen=True, slots=True)
class ScoreJobConfig:
    """One scoring run, validated at the edge."""

    command: str
    ds: date
    split_id: str = "leave_last_out"
    run_id: str = ""
    artifacts_dir: Path | None = None
    two_tower_version: str | None = None
    sasrec_version: str | None = None
    ranker_version: str | None = None
    bundle: str | None = None
    k: int = 200
    n: int = 50
    require_dq: bool = False
    candidates_sample: int = CANDIDATES_SAMPLE

    def __post_init__(self) -> None:
        if self.command not in COMMANDS:
            raise ValueError(f"command: expected one of {COMMANDS}, got {self.command!r}")
        if not self.split_id or not self.split_id.replace("_", "").isalnum():
            raise ValueError(f"split_id: expected an identifier, got {self.split_id!r}")
        # Airflow run ids look like manual__2026-01-05T00:00:00+00:00; the id is only data.
        common.check_run_id(self.run_id)
        for name in ("two_tower_version", "sasrec_version", "ranker_version"):
            v = getattr(self, name)
            if v is not None and (not v or "/" in v or v.startswith(".")):
                raise ValueError(f"{name}: expected an artifact version, got {v!r}")
        if self.bundle is not None:
            from recsys.training.bundle import check_bundle_id

            check_bundle_id("bundle", self.bundle)
        if self.k < 1 or self.k > 10_000:
            raise ValueError(f"k: must be in [1, 10000], got {self.k!r}")
        if self.n < 1 or self.n > self.k:
            raise ValueError(f"n: must be in [1, k={self.k}], got {self.n!r}")
        c = self.candidates_sample
        if not isinstance(c, int) or isinstance(c, bool) or not 0 <= c <= MAX_CANDIDATES_SAMPLE:
            raise ValueError(
                f"candidates_sample: must be an int in [0, {MAX_CANDIDATES_SAMPLE}], got {c!r}"
            )
        if self.require_dq and self.command != "publish":
            raise ValueError(
                f"require_dq: only with the publish command (the checks run between rank and "
                f"publish), got command {self.command!r}"
            )

    @property
    def steps(self) -> tuple[str, ...]:
        return STEPS if self.command == "all" else (self.command,)


def parse_args(argv: Sequence[str] | None) -> ScoreJobConfig:
    """Command line -> :class:`ScoreJobConfig` (ValueError on bad values, SystemExit(2) on
    unknown options)."""
    p = argparse.ArgumentParser(prog="jobs.score", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("--ds", type=date.fromisoformat, default=datetime.now(UTC).date())
    p.add_argument("--split-id", default="leave_last_out")
    p.add_argument("--run-id", default=None)
    p.add_argument("--artifacts-dir", type=Path, default=None)
    p.add_argument("--two-tower-version", default=None)
    p.add_argument("--sasrec-version", default=None)
    p.add_argument("--ranker-version", default=None)
    p.add_argument("--bundle", default=None, help="model bundle id (default: the champion)")
    p.add_argument("--k", type=int, default=200, help="candidates per user and source")
    p.add_argument("--n", type=int, default=50, help="recommendations per user")
    p.add_argument(
        "--candidates-sample",
        type=int,
        default=CANDIDATES_SAMPLE,
        help="retrieve-rank: users (seeded hash sample) whose candidates go to serve.candidates; "
        "0 = none",
    )
    p.add_argument(
        "--require-dq",
        action="store_true",
        help="publish only when this run's data-quality checks of ds all passed",
    )
    a = p.parse_args(argv)
    return ScoreJobConfig(
        command=a.command,
        ds=a.ds,
        split_id=a.split_id,
        run_id=a.run_id if a.run_id is not None else str(uuid.uuid4()),
        artifacts_dir=a.artifacts_dir,
        two_tower_version=a.two_tower_version,
        sasrec_version=a.sasrec_version,
        ranker_version=a.ranker_version,
        bundle=a.bundle,
        k=a.k,
        n=a.n,
        require_dq=a.require_dq,
        candidates_sample=a.candidates_sample,
    )


class DataQualityGateError(RuntimeError):
    """``publish --require-dq`` found no passing data-quality checks of the staged day."""


def run(config: ScoreJobConfig, warehouse_root: str) -> dict[str, int]:
    """Run the configured steps in one session; returns rows written per table."""
    import torch

    from recsys.scoring import pipeline as P
    from recsys.training.registry import artifacts_root
    from recsys.warehouse.session import build_spark

    torch.set_num_threads(min(2, torch.get_num_threads()))
    spark = build_spark(app_name="score-" + config.command)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
    ctx = P.ScoreContext(
        spark=spark,
        ds=config.ds,
        split_id=config.split_id,
        run_id=config.run_id,
        artifacts_root=artifacts_root(config.artifacts_dir, warehouse_root),
        two_tower_version=config.two_tower_version,
        sasrec_version=config.sasrec_version,
        ranker_version=config.ranker_version,
        bundle_id=config.bundle,
    )
    if set(config.steps) != {"publish"}:  # load (and check) the bundle before any write
        log.info("model bundle %s", ctx.bundle.bundle_id)
    counts: dict[str, int] = {}
    for step in config.steps:
        started = time.perf_counter()
        if step == "embeddings":
            out = P.step_embeddings(ctx)
        elif step == "retrieve-rank":
            from recsys.scoring.fused_step import step_score

            out = step_score(ctx, config.k, config.n, config.candidates_sample)
        elif step == "retrieve":
            out = P.step_retrieve(ctx, config.k)
        elif step == "rank":
            out = P.step_rank(ctx, config.n)
        else:
            if config.require_dq:
                from recsys.quality.observe import dq_verdict

                reason = dq_verdict(spark, config.ds, config.run_id)
                if reason is not None:
                    raise DataQualityGateError(f"publish refused, nothing published: {reason}")
            out = P.step_publish(ctx)
        counts.update(out)
        log.info(
            "%s (run %s, ds=%s): %s in %.1f s",
            step,
            config.run_id,
            config.ds,
            P.counts_summary(out),
            time.perf_counter() - started,
        )
    return counts


main = common.job_main(
    "score",
    parse_args,
    common.on_warehouse(run),
    exits=(((FileNotFoundError, ValueError), 2), (DataQualityGateError, 1)),
    log_done=True,
)


if __name__ == "__main__":
    sys.exit(main())
