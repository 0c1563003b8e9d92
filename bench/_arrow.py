"""Arrow/Parquet helpers shared by the scoring benchmarks (driver side and inside Spark workers).

Worker code here is shipped by value (see :func:`ship_by_value`): ``bench`` is not an installed
package, so Python workers could not import it by name.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NDArray = np.ndarray[Any, Any]


def list_to_matrix(column: pa.Array | pa.ChunkedArray, dim: int | None = None) -> NDArray:
    """``(rows, dim)`` float32 view of a null-free ``list<float>`` column, zero-copy per chunk.

    ``ListArray.flatten()`` honours the array's offset (slices) and returns the child values
    only; ``to_numpy`` on a null-free float array is a view, and ``reshape`` keeps it one.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    values: NDArray = column.flatten().to_numpy(zero_copy_only=True)
    rows = len(column)
    width = dim if dim is not None else (len(values) // rows if rows else 0)
    if rows * width != len(values):
        raise ValueError(f"ragged list column: {len(values)} values for {rows} rows x {width}")
    return values.reshape(rows, width)


def matrix_to_list(matrix: NDArray) -> pa.ListArray:
    """A ``list<float>`` Arrow array over the rows of a C-contiguous 2-D float32 matrix."""
    rows, dim = matrix.shape
    offsets = pa.array(np.arange(0, (rows + 1) * dim, dim, dtype=np.int32))
    values = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).ravel())
    return pa.ListArray.from_arrays(offsets, values)


def matrix_to_binary(matrix: NDArray) -> pa.BinaryArray:
    """A BINARY Arrow array whose row i is the raw little-endian float32 bytes of row i."""
    rows, dim = matrix.shape
    data = np.ascontiguousarray(matrix, dtype=np.float32)
    offsets = np.arange(0, (rows + 1) * dim * 4, dim * 4, dtype=np.int32)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    out: pa.BinaryArray = pa.Array.from_buffers(pa.binary(), rows, buffers)
    return out


def binary_to_matrix(column: pa.Array | pa.ChunkedArray, dim: int) -> NDArray:
    """``(rows, dim)`` float32 view of a null-free BINARY column of packed float32 rows, zero-copy
    (the value bytes are contiguous, so one ``frombuffer`` covers the whole batch)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    rows = len(column)
    _, offsets_buf, data_buf = column.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[column.offset : column.offset + rows + 1]
    start, end = (int(offsets[0]), int(offsets[-1])) if rows else (0, 0)
    if end - start != rows * dim * 4:
        raise ValueError(f"binary column: {end - start} bytes for {rows} rows x {dim} floats")
    values: NDArray = np.frombuffer(data_buf, dtype=np.float32, count=rows * dim, offset=start)
    return values.reshape(rows, dim)


def write_parquet_parts(table: pa.Table, directory: Path, parts: int) -> None:
    """Write ``table`` as ``parts`` Parquet files of about equal rows (so Spark gets ``parts``
    input splits; one big file would be one task on a small table)."""
    directory.mkdir(parents=True, exist_ok=True)
    n = table.num_rows
    bounds = np.linspace(0, n, parts + 1).astype(int)
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        pq.write_table(table.slice(lo, hi - lo), directory / f"part-{i:05d}.parquet")


def read_parquet_dir(directory: Path, columns: list[str] | None = None) -> pa.Table:
    """All Parquet files under ``directory`` (Spark's ``_SUCCESS`` and ``.crc`` ignored)."""
    files = sorted(p for p in directory.rglob("*.parquet"))
    return pa.concat_tables(pq.read_table(p, columns=columns) for p in files)


def dir_mib(directory: Path) -> float:
    """Size of the files under ``directory`` in MiB."""
    return round(sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 2**20, 1)


def ship_by_value(*modules: Any) -> None:
    """Pickle functions of these modules by value in Spark closures (workers cannot import
    ``bench``)."""
    from pyspark import cloudpickle

    for module in modules:
        if module.__name__ != "__main__":
            cloudpickle.register_pickle_by_value(sys.modules[module.__name__])  # type: ignore[no-untyped-call]
