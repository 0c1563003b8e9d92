"""The product path of ``bench_ranking`` (``--arms rank``): ``rank_spark`` against ``rank_local``.

Both read the same Parquet inputs (candidates ``user_id, item_id, source``; user features; item
arrays) and write their top-N as Parquet; an untrained ``InteractionRanker`` of the default config
scores. The arms' figures and the ratio against the goal are yielded into bench_ranking's record.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench import _arrow, _measure
from bench._arrow import NDArray

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_log = logging.getLogger("bench_ranking")
GOAL = 0.6


def write_rank_inputs(root: Path, args: argparse.Namespace) -> tuple[dict[str, Path], Any]:
    """Candidates, user features and item arrays as Parquet, and the ranker payload."""
    import torch

    from recsys.models.ranker import InteractionRanker, RankerConfig
    from recsys.scoring.ranking import SOURCES
    from recsys.scoring.runtime import ModelPayload
    from recsys.synthetic import GENRES
    from recsys.training.loops import config_dict

    rng = np.random.default_rng(args.seed + 1)
    n_users, n_items, dim, n_genres = args.rank_users, args.rank_items, 64, len(GENRES)
    config = RankerConfig()
    dense_dim = config.n_dense - 4
    torch.manual_seed(args.seed)
    payload = ModelPayload.from_module(
        "ranker", "bench", config_dict(config), InteractionRanker(config).eval()
    )

    def unit(n: int) -> NDArray:
        e = rng.standard_normal((n, dim), dtype=np.float32)
        out: NDArray = e / np.linalg.norm(e, axis=1, keepdims=True)
        return out

    item_ids = np.arange(1, n_items + 1, dtype=np.int64)
    items = pa.table(
        {
            "item_id": item_ids,
            "genres": _arrow.matrix_to_list(
                (rng.random((n_items, n_genres)) > 0.8).astype(np.float32)
            ),
            "log_count": (rng.random(n_items) * 8).astype(np.float32),
            "is_cold": rng.random(n_items) > 0.9,
            "embedding": _arrow.matrix_to_list(unit(n_items)),
        }
    )
    user_ids = np.arange(1, n_users + 1, dtype=np.int64)
    hist = rng.integers(1, n_items + 1, size=(n_users, 50))
    users = pa.table(
        {
            "user_id": user_ids,
            "dense": _arrow.matrix_to_list(
                rng.standard_normal((n_users, dense_dim), dtype=np.float32)
            ),
            "genre_affinity": _arrow.matrix_to_list(
                rng.random((n_users, n_genres)).astype(np.float32)
            ),
            "embedding": _arrow.matrix_to_list(unit(n_users)),
            "history": pa.ListArray.from_arrays(
                pa.array(np.arange(0, 50 * n_users + 1, 50, dtype=np.int32)),
                pa.array(hist.ravel().astype(np.int64)),
            ),
        }
    )
    c = args.candidates
    cand_items = np.stack([rng.choice(n_items, c, replace=False) + 1 for _ in range(n_users)])
    cands = pa.table(
        {
            "user_id": np.repeat(user_ids, c),
            "item_id": cand_items.ravel().astype(np.int64),
            "source": pa.array(np.asarray(SOURCES)[rng.integers(0, len(SOURCES), n_users * c)]),
        }
    )
    parts = 2 * (os.cpu_count() or 1)
    paths = {n: root / "rank" / n for n in ("items", "users", "candidates")}
    _arrow.write_parquet_parts(items, paths["items"], 1)
    _arrow.write_parquet_parts(users, paths["users"], parts)
    _arrow.write_parquet_parts(cands, paths["candidates"], parts)
    return paths, payload


def _item_arrays(directory: Path) -> Any:
    from recsys.scoring.rank_inputs import ItemArrays

    t = _arrow.read_parquet_dir(directory)
    return ItemArrays(
        item_ids=t.column("item_id").to_numpy(),
        genres=np.ascontiguousarray(_arrow.list_to_matrix(t.column("genres"))),
        log_count=t.column("log_count").to_numpy(),
        is_cold=t.column("is_cold").to_numpy(zero_copy_only=False),
        embedding=np.ascontiguousarray(_arrow.list_to_matrix(t.column("embedding"))),
    )


def run_rank_local(paths: dict[str, Path], payload: Any, n: int, out: Path) -> None:
    import torch

    from recsys.scoring.ranking import rank_local

    items = _item_arrays(paths["items"])
    cands = _arrow.read_parquet_dir(paths["candidates"]).to_pandas()
    users = _arrow.read_parquet_dir(paths["users"]).to_pandas()
    model = payload.build(torch.device("cpu"))
    frame = rank_local(model, cands, users, items, n, device=torch.device("cpu"))
    out.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out / "part-0.parquet")


def run_rank_spark(
    spark: SparkSession, paths: dict[str, Path], payload: Any, n: int, out: Path
) -> None:
    from recsys.scoring.ranking import rank_spark

    items = _item_arrays(paths["items"])
    cands = spark.read.parquet(str(paths["candidates"]))
    users = spark.read.parquet(str(paths["users"]))
    rank_spark(cands, users, items, payload, n).write.parquet(str(out))


def _rank_agree(a: Path, b: Path) -> dict[str, Any]:
    cols = ["user_id", "rank", "item_id", "score"]
    x = _arrow.read_parquet_dir(a, cols).to_pandas().sort_values(["user_id", "rank"])
    y = _arrow.read_parquet_dir(b, cols).to_pandas().sort_values(["user_id", "rank"])
    same = len(x) == len(y) and bool((x["item_id"].to_numpy() == y["item_id"].to_numpy()).all())
    diff = float(np.max(np.abs(x["score"].to_numpy() - y["score"].to_numpy()))) if same else None
    return {"rows": len(y), "same_items_in_order": same, "max_abs_score_diff": diff}


def run_rank(
    spark: SparkSession,
    args: argparse.Namespace,
    root: Path,
    meter: _measure.Meter,
    figures: dict[str, dict[str, Any]],
) -> Iterator[tuple[str, Any]]:
    try:
        import recsys.scoring.ranking  # noqa: F401
    except ImportError:
        _log.warning("recsys.scoring.ranking is missing: rank arms skipped")
        return
    paths, payload = write_rank_inputs(root, args)
    rows = args.rank_users * args.candidates
    arms: dict[str, Callable[[Path], None]] = {
        "rank_local": lambda out: run_rank_local(paths, payload, args.top_n, out),
        "rank_spark": lambda out: run_rank_spark(spark, paths, payload, args.top_n, out),
    }
    for name, fn in arms.items():
        _log.info("arm %s (warm-up = a full run, not timed) ...", name)
        fn(root / "warmup" / name)
        fig: dict[str, Any] = {}
        for attempt in range(args.repeat):  # keep the fastest, as for the MLP arms
            shutil.rmtree(root / "out" / name, ignore_errors=True)
            _log.info("arm %s (run %d of %d) ...", name, attempt + 1, args.repeat)
            with meter.arm(name) as this:
                fn(root / "out" / name)
            if not fig or this["seconds"] < fig["seconds"]:
                fig = this
        fig["runs"] = args.repeat
        fig["rows_per_s"] = round(rows / fig["seconds"])
        fig["rows_per_cpu_s"] = round(rows / max(fig["cpu_s"], 0.1))
        figures[name] = fig
        _log.info("arm %s: %s", name, fig)
    agree = _rank_agree(root / "out" / "rank_local", root / "out" / "rank_spark")
    figures["rank_spark"]["agreement_vs_rank_local"] = agree
    if not agree["same_items_in_order"] or (agree["max_abs_score_diff"] or 0) > 1e-5:
        raise RuntimeError(f"rank_spark disagrees with rank_local: {agree}")
    ratio = figures["rank_spark"]["rows_per_s"] / figures["rank_local"]["rows_per_s"]
    yield "rank_candidate_rows", rows
    yield "rank_local_rows_per_s", figures["rank_local"]["rows_per_s"]
    yield "rank_spark_rows_per_s", figures["rank_spark"]["rows_per_s"]
    yield "ratio_rank_spark_vs_rank_local", round(ratio, 3)
    cpu = figures["rank_spark"]["rows_per_cpu_s"] / figures["rank_local"]["rows_per_cpu_s"]
    yield "cpu_ratio_rank_spark_vs_rank_local", round(cpu, 3)
    yield "goal_met_rank_spark", ratio >= GOAL
