"""Benchmark the co-visitation build: Spark (``covisit_spark``) against the numpy driver build.

Usage::

    python -m bench.bench_covisit                      # 10k users, items = users / 10
    python -m bench.bench_covisit --users 100000 --top-n 500 --arms spark,numpy

Data: the synthetic generator's interactions (:func:`recsys.synthetic.synthetic_interactions`,
``--per-user`` draws per user, items = users / 10 capped at 100k, seeded), written once as
Parquet ``user_id, item_id, event_ts``; every event counts as train. Both arms are timed from
reading that Parquet to a finished matrix with the default :class:`CovisitConfig` (window 20,
``--top-n``):

* ``spark``: :func:`recsys.training.covisit_spark.covisit_spark` over ``spark.read.parquet``,
  written as Parquet (the features job writes the same rows to ``features.covisit``).
* ``numpy``: the path the driver used to take: pyarrow read into pandas, per-user sequences
  sorted by ``(event_ts, item_id)`` (as ``recsys.training.data.event_sequences``), then
  :func:`recsys.training.covisit.covisit_matrix`; its peak Python allocation is measured with
  ``tracemalloc`` (numpy and scipy arrays included) beside the process RSS.

Then the two matrices are compared (same non-zeros, largest absolute difference). Prints ONE
JSON line on stdout (logs go to stderr): sizes, per arm wall and CPU seconds and peak RSS of the
Python driver, the driver JVM and the Python workers (:class:`bench._measure.Meter`), the
numpy arm's peak allocation, the agreement, and the harness's process-wide figures
(:mod:`bench._harness`: load average at start and end, lifetime peak RSS, JVM heap). The machine
may be shared: record ``cat /proc/loadavg`` with the figures.
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench import _harness

ARMS = ("spark", "numpy")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_covisit", description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--items", type=int, default=None, help="default: users / 10, at most 100k")
    p.add_argument("--per-user", type=int, default=45, help="draws per user")
    p.add_argument("--top-n", type=int, default=None, help="default: CovisitConfig's")
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--seed", type=int, default=0)
    _harness.add_args(p)
    a = p.parse_args(argv)
    arms = tuple(x.strip() for x in a.arms.split(",") if x.strip())
    if not arms or any(x not in ARMS for x in arms):
        p.error(f"--arms: expected a subset of {ARMS}, got {a.arms!r}")
    if a.users < 20:
        p.error(f"--users: must be >= 20, got {a.users}")
    a.arms = arms
    return a


def _numpy_build(path: Path, config: Any) -> tuple[Any, Any]:
    import numpy as np
    import pyarrow.parquet as pq

    from recsys.training.covisit import covisit_matrix

    frame = pq.read_table(path).to_pandas()
    frame = frame.sort_values(["user_id", "event_ts", "item_id"], kind="stable")
    ids = np.unique(frame["item_id"].to_numpy(np.int64))
    index = np.searchsorted(ids, frame["item_id"].to_numpy(np.int64)) + 1
    frame["_i"] = index
    seqs = {int(u): g.tolist() for u, g in frame.groupby("user_id", sort=True)["_i"]}
    return covisit_matrix(seqs, len(ids), config), ids


def run(spark: Any, args: argparse.Namespace, root: Path, meter: Any) -> Iterator[tuple[str, Any]]:
    """The benchmark's figures (:func:`bench._harness.spark_bench` adds the process-wide ones)."""
    import numpy as np
    import pyarrow.parquet as pq

    from bench._measure import jvm_heap_mib
    from recsys.synthetic import SyntheticConfig, synthetic_interactions
    from recsys.training.covisit import CovisitConfig, matrix_from_ids
    from recsys.training.covisit_spark import covisit_spark

    items = args.items or min(100_000, max(20, args.users // 10))
    config = CovisitConfig() if args.top_n is None else CovisitConfig(top_n=args.top_n)
    yield from {
        "users": args.users,
        "items": items,
        "window": config.window,
        "top_n": config.top_n,
    }.items()
    synth = SyntheticConfig(
        n_users=args.users,
        n_items=items,
        n_interactions=args.users * args.per_user,
        seed=args.seed,
        partitions=max(2, args.users * args.per_user // 1_000_000),
    )
    events_path = root / "events.parquet"
    synthetic_interactions(spark, synth).select("user_id", "item_id", "event_ts").write.parquet(
        str(events_path)
    )
    yield "interactions", sum(pq.read_metadata(p).num_rows for p in events_path.glob("*.parquet"))
    out: dict[str, Any] = {}
    if "spark" in args.arms:
        # Warm-up on a small slice (JIT, Python worker start): not timed.
        small = spark.read.parquet(str(events_path)).where("user_id <= 50")
        covisit_spark(small, config).write.mode("overwrite").parquet(str(root / "warm"))
        with meter.arm("spark") as fig:
            events = spark.read.parquet(str(events_path))
            covisit_spark(events, config).write.parquet(str(root / "covisit.parquet"))
        fig["jvm_heap_mib_after"] = jvm_heap_mib(spark)
        out["spark"] = fig
    agree: dict[str, Any] | None = None
    if "numpy" in args.arms:
        tracemalloc.start()
        with meter.arm("numpy") as fig:
            matrix, ids = _numpy_build(events_path, config)
        fig["peak_alloc_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
        fig["nnz"] = int(matrix.nnz)
        out["numpy"] = fig
        if "spark" in args.arms:
            rows = pq.read_table(root / "covisit.parquet").to_pandas()
            got = matrix_from_ids(
                rows["item_id"].to_numpy(),
                rows["next_item_id"].to_numpy(),
                rows["weight"].to_numpy(),
                ids,
            )
            out["spark"]["nnz"] = int(got.nnz)
            same = got.nnz == matrix.nnz and bool(np.array_equal(got.indices, matrix.indices))
            diff = abs(got - matrix).max() if got.nnz else 0.0
            agree = {"same_entries": same, "max_abs_diff": float(diff)}
    if agree is not None:
        yield "agree", agree
    yield "arms", out
    if "spark" in out and "numpy" in out:
        ratio = out["spark"]["seconds"] / max(out["numpy"]["seconds"], 1e-9)
        yield "spark_over_numpy_seconds", round(ratio, 2)


def main(argv: Sequence[str] | None = None) -> int:
    return _harness.spark_bench("covisit", parse_args(argv), run, __name__)


if __name__ == "__main__":
    sys.exit(main())
