"""Benchmark top-K retrieval for every user: the Spark job against plain torch, FAISS and ALS.

Usage::

    python -m bench.bench_retrieval                          # 100k users x 20k items, dim 64, K 100
    python -m bench.bench_retrieval --users 10000 --items 2000 --arms torch,spark,faiss

Data: seeded float32 Gaussian embeddings (``numpy.random.default_rng(seed)``), written once as
Parquet (``user_id BIGINT, embedding ARRAY<FLOAT>`` in 2 x cores files, and the same for items).
No items are excluded in any arm (ALS cannot exclude seen items), so every arm computes the same
thing: for each user, the K items of largest inner product.

Arms (all in this one invocation, on the same Parquet files; each one is timed from reading the
input Parquet to a finished Parquet write of the long output ``user_id, item_id, retrieval_score,
candidate_rank``: U x K rows; Spark start-up excluded, every arm warmed up on a small user file):

* ``torch``: one process, pyarrow read, ``users_block @ items.T`` + ``torch.topk`` in blocks of
  ``--block`` users with torch's default threads, streaming pyarrow Parquet writer.
* ``faiss``: one process, the same read and write, ``faiss.IndexFlatIP.search`` in the same blocks
  (FAISS's own OpenMP threads).
* ``spark``: ``recsys.scoring.retrieval.retrieve_spark`` (the product job) over
  ``spark.read.parquet`` of both files, ``.write.parquet``; skipped if the module is missing.
* ``spark_ref``: this benchmark's reference Spark job: items collected and broadcast, users
  ``mapInArrow`` with zero-copy Arrow -> numpy, torch matmul + topk in chunks of ``--chunk``,
  ``torch.set_num_threads(--worker-threads)`` in each worker.
* ``als``: Spark MLlib ``ALSModel.recommendForAllUsers(K)`` at rank = dim. By default the model
  is built on the SAME embeddings (read from the same Parquet as ALS factor tables, ids as INT),
  so its output can be checked like the others; ``--als-factors trained`` instead fits ALS
  (rank = dim, ``--als-iters``) on the foundation generator's synthetic interactions first
  (fit not timed; only users with interactions get recommendations, so no recall check).
  Timed: recommendForAllUsers + posexplode to the long output + the same Parquet write.

``--torch-threads N`` sets the threads of the single-process arms (torch intra-op and FAISS's
OpenMP); by default they use all cores. On a machine shared with other work, OpenMP threads that
spin-wait for a descheduled sibling can make 2 threads slower than 1 (``docs/benchmarks.md``), so
record the load and try both. ``--repeat``
keeps the fastest of several timed runs per arm.

Before any figure is reported, every arm's output is read back and compared to ``torch``'s: the
recall of torch's top-K (shared (user, item) pairs / (U x K)) must be >= ``--min-recall``.

Prints ONE JSON line on stdout (logs go to stderr): per arm users/s, wall and CPU seconds,
peak RSS of the Python driver, driver JVM and Python workers, the load average before and after,
recall against torch, and the ratios spark/torch, spark/faiss, spark/als against the goals
(>= 0.7, >= 1.0, >= 5.0). ``cpu_ratio_*`` compare users per CPU-second of the whole process tree
instead (less sensitive to other load on a shared machine; not the goal's measure).

Measured figures and their history: ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench import _arrow, _harness, _measure
from bench._arrow import NDArray

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("bench_retrieval")

ARMS = ("torch", "faiss", "spark", "spark_ref", "als")
GOALS = {"torch": 0.7, "faiss": 1.0, "als": 5.0}
OUT_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("retrieval_score", pa.float32()),
        ("candidate_rank", pa.int32()),
    ]
)
OUT_DDL = "user_id BIGINT, item_id BIGINT, retrieval_score FLOAT, candidate_rank INT"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_retrieval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--arms", default=",".join(ARMS), help="comma-separated subset of " + ",".join(ARMS)
    )
    parser.add_argument("--block", type=int, default=2048, help="users per matmul (torch, faiss)")
    parser.add_argument("--chunk", type=int, default=1024, help="users per matmul (spark_ref)")
    parser.add_argument("--worker-threads", type=int, default=1, help="torch threads (spark_ref)")
    parser.add_argument("--partitions", type=int, help="user Parquet files (default 2 x cores)")
    parser.add_argument("--warmup-users", type=int, default=2_000)
    parser.add_argument("--als-factors", choices=("shared", "trained"), default="shared")
    parser.add_argument("--als-iters", type=int, default=2, help="ALS maxIter when trained")
    parser.add_argument("--interactions", type=int, default=2_000_000, help="draws (trained ALS)")
    parser.add_argument("--min-recall", type=float, default=0.999)
    _harness.add_args(parser, single_process="torch, faiss")
    args = parser.parse_args(argv)
    args.arm_list = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = set(args.arm_list) - set(ARMS)
    if unknown or "torch" not in args.arm_list:
        parser.error(f"--arms: need torch (the baseline) and only {ARMS}, got {args.arms}")
    for name in ("users", "items", "dim", "k", "block", "chunk", "worker_threads", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be >= 1")
    if args.k > args.items:
        parser.error("--k: must be <= --items")
    return args


# --------------------------------------------------------------------------------------------
# Data


def write_embeddings(
    root: Path, n_users: int, n_items: int, dim: int, seed: int, parts: int, warmup: int
) -> dict[str, Path]:
    """Seeded Gaussian user/item embeddings as Parquet; returns the directories."""
    rng = np.random.default_rng(seed)
    users = rng.standard_normal((n_users, dim), dtype=np.float32)
    items = rng.standard_normal((n_items, dim), dtype=np.float32)

    def table(key: str, ids: NDArray, vecs: NDArray) -> pa.Table:
        return pa.table({key: pa.array(ids), "embedding": _arrow.matrix_to_list(vecs)})

    paths = {name: root / name for name in ("users", "items", "warmup_users")}
    user_ids = np.arange(1, n_users + 1, dtype=np.int64)
    _arrow.write_parquet_parts(table("user_id", user_ids, users), paths["users"], parts)
    item_ids = np.arange(1, n_items + 1, dtype=np.int64)
    _arrow.write_parquet_parts(table("item_id", item_ids, items), paths["items"], 1)
    w = min(warmup, n_users)
    _arrow.write_parquet_parts(table("user_id", user_ids[:w], users[:w]), paths["warmup_users"], 2)
    return paths


def _read_local(directory: Path, key: str) -> tuple[NDArray, NDArray]:
    t = _arrow.read_parquet_dir(directory)
    return t.column(key).to_numpy(), _arrow.list_to_matrix(t.column("embedding"))


# --------------------------------------------------------------------------------------------
# Single-process arms


def _topk_rows(
    user_ids: NDArray, item_ids: NDArray, scores: NDArray, idx: NDArray
) -> pa.RecordBatch:
    m, k = idx.shape
    return pa.RecordBatch.from_arrays(
        [
            pa.array(np.repeat(user_ids, k)),
            pa.array(item_ids[idx.ravel()]),
            pa.array(scores.ravel().astype(np.float32, copy=False)),
            pa.array(np.tile(np.arange(1, k + 1, dtype=np.int32), m)),
        ],
        schema=OUT_SCHEMA,
    )


def run_torch(users: Path, items: Path, out: Path, k: int, block: int) -> None:
    """Plain torch: read both files, blocked matmul + topk, stream the long output to Parquet."""
    import torch

    uid, u = _read_local(users, "user_id")
    iid, v = _read_local(items, "item_id")
    vt = torch.from_numpy(v).T
    out.mkdir(parents=True)
    with pq.ParquetWriter(out / "part-0.parquet", OUT_SCHEMA) as writer, torch.inference_mode():
        for s in range(0, len(uid), block):
            vals, idx = torch.topk(torch.from_numpy(u[s : s + block]) @ vt, k, dim=1)
            writer.write_batch(_topk_rows(uid[s : s + block], iid, vals.numpy(), idx.numpy()))


def run_faiss(users: Path, items: Path, out: Path, k: int, block: int) -> None:
    """FAISS IndexFlatIP: the same read/write as torch; exact inner-product search per block."""
    import faiss

    uid, u = _read_local(users, "user_id")
    iid, v = _read_local(items, "item_id")
    index = faiss.IndexFlatIP(v.shape[1])
    index.add(np.ascontiguousarray(v))
    out.mkdir(parents=True)
    with pq.ParquetWriter(out / "part-0.parquet", OUT_SCHEMA) as writer:
        for s in range(0, len(uid), block):
            vals, idx = index.search(np.ascontiguousarray(u[s : s + block]), k)
            writer.write_batch(_topk_rows(uid[s : s + block], iid, vals, idx))


# --------------------------------------------------------------------------------------------
# Spark arms


def _spark_ref_fn(
    items_bc: Any, k: int, chunk: int, threads: int
) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def score(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import torch

        torch.set_num_threads(threads)
        iid, v = items_bc.value
        vt = torch.from_numpy(v).T
        with torch.inference_mode():
            for batch in batches:
                uid = batch.column(0).to_numpy()
                u = _arrow.list_to_matrix(batch.column(1))
                for s in range(0, len(uid), chunk):
                    vals, idx = torch.topk(torch.from_numpy(u[s : s + chunk]) @ vt, k, dim=1)
                    yield _topk_rows(uid[s : s + chunk], iid, vals.numpy(), idx.numpy())

    return score


def run_spark_ref(
    spark: SparkSession, users: Path, items: Path, out: Path, k: int, chunk: int, threads: int
) -> None:
    """Reference Spark job: broadcast items, mapInArrow over users, zero-copy to torch."""
    item_table = spark.read.parquet(str(items)).select("item_id", "embedding").toArrow()
    iid = item_table.column("item_id").to_numpy()
    v = np.ascontiguousarray(_arrow.list_to_matrix(item_table.column("embedding")))
    items_bc = spark.sparkContext.broadcast((iid, v))
    try:
        df = spark.read.parquet(str(users)).select("user_id", "embedding")
        df.mapInArrow(_spark_ref_fn(items_bc, k, chunk, threads), OUT_DDL).write.parquet(str(out))
    finally:
        items_bc.destroy()


def run_spark(spark: SparkSession, users: Path, items: Path, out: Path, k: int) -> None:
    """The product job: ``recsys.scoring.retrieval.retrieve_spark``."""
    from recsys.scoring.retrieval import retrieve_spark

    u = spark.read.parquet(str(users))
    i = spark.read.parquet(str(items))
    retrieve_spark(u, i, k).write.parquet(str(out))


def _als_model(spark: SparkSession, users: DataFrame, items: DataFrame, rank: int) -> Any:
    """An ALSModel over the given factors (the Scala constructor is package-private, public in
    bytecode, so py4j can call it)."""
    from pyspark.ml.recommendation import ALSModel
    from pyspark.sql import functions as F

    def factors(df: DataFrame, key: str) -> DataFrame:
        return df.select(F.col(key).cast("int").alias("id"), F.col("embedding").alias("features"))

    jvm: Any = spark.sparkContext._jvm
    java_model = jvm.org.apache.spark.ml.recommendation.ALSModel(
        "bench_als", rank, factors(users, "user_id")._jdf, factors(items, "item_id")._jdf
    )
    # A fitted model carries ALS's defaults; one built by hand has none: set what
    # recommendForAllUsers reads (column names, and 4096, ALS's default block size).
    java_model.setUserCol("user_id").setItemCol("item_id").setBlockSize(4096)
    return ALSModel(java_model)


def train_als(spark: SparkSession, args: argparse.Namespace) -> tuple[Any, float, int]:
    """Fit ALS (rank = dim) on synthetic interactions from the foundation generator."""
    from pyspark.ml.recommendation import ALS

    from recsys.synthetic import SyntheticConfig, synthetic_interactions

    config = SyntheticConfig(
        n_users=args.users,
        n_items=args.items,
        n_interactions=args.interactions,
        seed=args.seed,
        partitions=max(1, 2 * (os.cpu_count() or 1)),
    )
    inter = synthetic_interactions(spark, config).select("user_id", "item_id", "rating").cache()
    n = inter.count()
    started = time.perf_counter()
    als = ALS(
        rank=args.dim,
        maxIter=args.als_iters,
        regParam=0.1,
        userCol="user_id",
        itemCol="item_id",
        ratingCol="rating",
        seed=args.seed,
    )
    model = als.fit(inter)
    seconds = time.perf_counter() - started
    inter.unpersist()
    return model, seconds, n


def run_als(model: Any, k: int, out: Path) -> None:
    """recommendForAllUsers(K), exploded to the long output, written as Parquet."""
    from pyspark.sql import functions as F

    recs = model.recommendForAllUsers(k)
    long = recs.select("user_id", F.posexplode("recommendations").alias("pos", "rec")).select(
        F.col("user_id").cast("long").alias("user_id"),
        F.col("rec.item_id").cast("long").alias("item_id"),
        F.col("rec.rating").cast("float").alias("retrieval_score"),
        (F.col("pos") + 1).cast("int").alias("candidate_rank"),
    )
    long.write.parquet(str(out))


# --------------------------------------------------------------------------------------------
# Checks and the driver


def _keys(out: Path, n_items: int) -> NDArray:
    t = _arrow.read_parquet_dir(out, ["user_id", "item_id"])
    keys = t.column("user_id").to_numpy() * (n_items + 1) + t.column("item_id").to_numpy()
    return np.sort(keys)


def recall_vs(reference: NDArray, out: Path, n_items: int) -> tuple[float, int]:
    """Share of the reference (user, item) pairs found in ``out``, and ``out``'s row count."""
    keys = _keys(out, n_items)
    shared = np.intersect1d(reference, keys, assume_unique=True).size
    return shared / max(1, reference.size), int(keys.size)


def _spark_module_present() -> bool:
    try:
        from recsys.scoring import retrieval  # noqa: F401
    except ImportError:
        return False
    return True


def run(
    spark: SparkSession, args: argparse.Namespace, root: Path, meter: _measure.Meter
) -> Iterator[tuple[str, Any]]:
    arms = list(args.arm_list)
    if "spark" in arms and not _spark_module_present():
        log.warning("recsys.scoring.retrieval is missing: arm 'spark' skipped")
        arms.remove("spark")
    parts = args.partitions or 2 * (os.cpu_count() or 1)
    t0 = time.perf_counter()
    paths = write_embeddings(
        root, args.users, args.items, args.dim, args.seed, parts, args.warmup_users
    )
    log.info("embeddings written in %.1f s", time.perf_counter() - t0)
    yield from (
        ("users", args.users),
        ("items", args.items),
        ("dim", args.dim),
        ("k", args.k),
        ("exclude_seen", False),
        ("output", "parquet, long (user_id, item_id, retrieval_score, candidate_rank)"),
        ("user_files", parts),
    )
    if args.torch_threads > 0:
        import torch

        torch.set_num_threads(args.torch_threads)
        if "faiss" in arms:
            import faiss

            faiss.omp_set_num_threads(args.torch_threads)
    yield "single_process_threads", args.torch_threads or "default (cores)"
    als_model: Any = None
    if "als" in arms:
        if args.als_factors == "trained":
            als_model, fit_s, n_inter = train_als(spark, args)
            yield "als_fit_seconds_not_timed", round(fit_s, 1)
            yield "als_train_interactions", n_inter
        yield "als_factors", args.als_factors

    def runner(arm: str, users: Path) -> Callable[[Path], None]:
        items = paths["items"]
        if arm == "torch":
            return lambda out: run_torch(users, items, out, args.k, args.block)
        if arm == "faiss":
            return lambda out: run_faiss(users, items, out, args.k, args.block)
        if arm == "spark":
            return lambda out: run_spark(spark, users, items, out, args.k)
        if arm == "spark_ref":
            return lambda out: run_spark_ref(
                spark, users, items, out, args.k, args.chunk, args.worker_threads
            )
        model = als_model
        if model is None or args.als_factors == "shared":
            u = spark.read.parquet(str(users))
            i = spark.read.parquet(str(items))
            model = _als_model(spark, u, i, args.dim)
        return lambda out: run_als(model, args.k, out)

    for arm in arms:  # warm-up: JIT, Python workers, FAISS/torch thread pools
        runner(arm, paths["warmup_users"])(root / "warmup" / arm)
    figures: dict[str, dict[str, Any]] = {}
    for arm in arms:
        out = root / "out" / arm
        fig: dict[str, Any] = {}
        for attempt in range(args.repeat):  # keep the fastest of --repeat runs
            shutil.rmtree(out, ignore_errors=True)
            log.info("arm %s (run %d of %d) ...", arm, attempt + 1, args.repeat)
            with meter.arm(arm) as this:
                runner(arm, paths["users"])(out)
            if not fig or this["seconds"] < fig["seconds"]:
                fig = this
        fig["runs"] = args.repeat
        fig["users_per_s"] = round(args.users / fig["seconds"])
        fig["users_per_cpu_s"] = round(args.users / max(fig["cpu_s"], 0.1))
        fig["output_mib"] = _arrow.dir_mib(out)
        figures[arm] = fig
        log.info("arm %s: %s", arm, fig)
    reference = np.sort(_keys(root / "out" / "torch", args.items))
    if reference.size != args.users * args.k:
        raise RuntimeError(f"torch wrote {reference.size} rows, expected {args.users * args.k}")
    for arm in arms:
        if arm == "torch" or (arm == "als" and args.als_factors == "trained"):
            continue
        recall, rows = recall_vs(reference, root / "out" / arm, args.items)
        figures[arm]["recall_vs_torch"] = round(recall, 6)
        figures[arm]["rows"] = rows
        if recall < args.min_recall or rows != args.users * args.k:
            raise RuntimeError(f"arm {arm}: recall {recall:.6f}, rows {rows}: arms disagree")
    for arm, fig in figures.items():
        yield arm + "_users_per_s", fig["users_per_s"]
        yield arm + "_seconds", fig["seconds"]
        yield arm + "_cpu_s", fig["cpu_s"]
    main_arm = "spark" if "spark" in figures else "spark_ref"
    yield "spark_arm_for_ratios", main_arm
    if main_arm in figures:
        for base, goal in GOALS.items():
            if base in figures:
                ratio = figures[main_arm]["users_per_s"] / figures[base]["users_per_s"]
                yield f"ratio_{main_arm}_vs_{base}", round(ratio, 3)
                yield f"goal_{main_arm}_vs_{base}", goal
                yield f"goal_met_{main_arm}_vs_{base}", ratio >= goal
                cpu = figures[main_arm]["users_per_cpu_s"] / figures[base]["users_per_cpu_s"]
                yield f"cpu_ratio_{main_arm}_vs_{base}", round(cpu, 3)
    if "spark" in figures and "spark_ref" in figures:
        ratio = figures["spark"]["users_per_s"] / figures["spark_ref"]["users_per_s"]
        yield "ratio_spark_vs_spark_ref", round(ratio, 3)
    yield "arms", figures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return _harness.spark_bench(
        "retrieval", args, run, __name__, extra=lambda: {"torch_threads": _torch_threads()}
    )


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


if __name__ == "__main__":
    sys.exit(main())
