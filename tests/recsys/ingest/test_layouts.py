from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from recsys.ingest.layouts import IngestInputError, detect_layout, locate_files
from recsys.settings import FileKind, Layout


def _touch(directory: Path, *names: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_text("x\n")
    return directory


@pytest.mark.parametrize(
    ("names", "layout"),
    [
        (("ratings.csv", "movies.csv"), Layout.ML_LATEST_SMALL),
        (("u.data", "u.item", "u.user"), Layout.ML_100K),
        (("ratings.dat", "movies.dat"), Layout.ML_1M),
    ],
)
def test_detects_each_layout(tmp_path: Path, names: tuple[str, ...], layout: Layout) -> None:
    assert detect_layout(_touch(tmp_path / "d", *names)) == layout


def test_gzipped_files_count(tmp_path: Path) -> None:
    d = tmp_path / "gz"
    d.mkdir()
    for name in ("ratings.csv.gz", "movies.csv.gz"):
        with gzip.open(d / name, "wt") as f:
            f.write("x\n")
    assert detect_layout(d) == Layout.ML_LATEST_SMALL
    found = locate_files(d, Layout.ML_LATEST_SMALL)
    assert set(found) == {FileKind.RATINGS, FileKind.MOVIES}
    assert found[FileKind.RATINGS][1].name == "ratings.csv.gz"


def test_missing_empty_and_unknown_directories(tmp_path: Path) -> None:
    with pytest.raises(IngestInputError, match="not a directory"):
        detect_layout(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestInputError, match="is empty"):
        detect_layout(tmp_path / "empty")
    with pytest.raises(IngestInputError, match="no known MovieLens layout"):
        detect_layout(_touch(tmp_path / "other", "ratings.csv"))


def test_zero_byte_and_missing_required_files(tmp_path: Path) -> None:
    d = _touch(tmp_path / "d", "movies.csv")
    (d / "ratings.csv").write_bytes(b"")
    with pytest.raises(IngestInputError, match="is empty"):
        locate_files(d, Layout.ML_LATEST_SMALL)
    with pytest.raises(IngestInputError, match=r"needs u\.data"):
        locate_files(d, Layout.ML_100K)
