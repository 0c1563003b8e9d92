"""Time the two-step scoring path (``retrieve`` then ``rank``) against the fused one
(``retrieve-rank``) on ml-latest-small (610 users), in one Spark session.

Usage::

    python -m bench.bench_fused_scoring [--work DIR] [--input data/ml-latest-small]
        [--epochs 1] [--repeat 2]

Builds a throw-away warehouse under ``--work`` (default ``.tmp/bench-fused``): ``setup_warehouse``,
``ingest`` of ``--input``, ``features`` (no content embeddings), ``trending``, the three trainings
(``--epochs`` each) and the ``embeddings`` step; none of that is timed. Then, ``--repeat`` times,
alternating: the two steps (writing every user's candidates to ``serve.candidates`` and reading
them back for ranking) and the fused step (default candidates sample). Each arm's time is its
fastest run; both write the same ``serve.ranked`` (``tests/jobs/test_score.py``).

Prints ONE JSON line: both timings (seconds), their ratio and the load average before and after.
The machine's load moves these figures; report it with them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from bench._measure import load_average
from recsys.settings import PROJECT_ROOT

DS = "2027-01-03"
SOURCE = "ml-latest-small"


def _must(rc: int, what: str) -> None:
    if rc != 0:
        raise SystemExit(f"{what}: exit {rc}")


def prepare(work: Path, data: Path, epochs: int) -> Path:
    """The warehouse and the trained artifacts; returns the artifacts directory."""
    from jobs import features, ingest, score, setup_warehouse, trending
    from jobs.train import main as train

    arts = work / "models"
    _must(setup_warehouse.main([]), "setup_warehouse")
    _must(ingest.main(["--input", str(data), "--ds", DS, "--source", SOURCE]), "ingest")
    args = ["--ds", DS, "--source", SOURCE, "--source-ds", DS]
    _must(features.main([*args, "--no-content"]), "features")
    _must(trending.main([*args, "--run-id", "bench"]), "trending")
    for model in ("two_tower", "sasrec", "ranker"):
        model_args = ["--model", model, "--ds", DS, "--epochs", str(epochs)]
        _must(train([*model_args, "--artifacts-dir", str(arts)]), "train " + model)
    emb = ["embeddings", "--ds", DS, "--run-id", "bench", "--artifacts-dir", str(arts)]
    _must(score.main(emb), "embeddings")
    return arts


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.bench_fused_scoring", description=__doc__)
    p.add_argument("--work", type=Path, default=PROJECT_ROOT / ".tmp" / "bench-fused")
    p.add_argument("--input", type=Path, default=PROJECT_ROOT / "data" / "ml-latest-small")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument(
        "--reuse", action="store_true", help="time only: the warehouse under --work is prepared"
    )
    a = p.parse_args(argv)
    os.environ["RECSYS_WAREHOUSE"] = str(a.work / "warehouse")
    load_before = load_average()
    arts = a.work / "models" if a.reuse else prepare(a.work, a.input, a.epochs)

    from jobs.score import ScoreJobConfig, run
    from recsys.settings import load_settings

    root = load_settings().warehouse_root
    day = date.fromisoformat(DS)
    times: dict[str, list[float]] = {"two_step": [], "fused": []}
    for i in range(a.repeat):
        started = time.perf_counter()
        for step in ("retrieve", "rank"):
            run(ScoreJobConfig(step, day, run_id=f"two-{i}", artifacts_dir=arts), root)
        times["two_step"].append(time.perf_counter() - started)
        started = time.perf_counter()
        run(ScoreJobConfig("retrieve-rank", day, run_id=f"fused-{i}", artifacts_dir=arts), root)
        times["fused"].append(time.perf_counter() - started)
    two, fused = min(times["two_step"]), min(times["fused"])
    line = {
        "bench": "fused_scoring",
        "data": str(a.input.name),
        "two_step_seconds": round(two, 2),
        "fused_seconds": round(fused, 2),
        "two_step_over_fused": round(two / fused, 2),
        "runs": {k: [round(x, 2) for x in v] for k, v in times.items()},
        "load_before": load_before,
        "load_after": load_average(),
    }
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
