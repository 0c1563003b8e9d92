"""MovieLens directory layouts: which files exist, how their lines split, and what fields mean.

Pure Python (no Spark): the parsers in :mod:`recsys.ingest.parse` read these specs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from recsys.settings import FileKind, Layout

Separator = Literal["csv", "\t", "|", "::"]


class IngestInputError(ValueError):
    """The input path is missing, empty, or holds no known MovieLens layout."""


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One input file of a layout.

    Attributes:
        kind: Entity the file holds.
        name: File name as distributed by GroupLens; ``name + '.gz'`` is accepted too.
        fields: Logical field names, in file order.
        separator: ``csv`` (comma, RFC 4180 quoting) or a literal separator.
        header: Exact header line, skipped when present; None when the file has none.
        latin1: The file is ISO-8859-1 (ml-100k, ml-1m); otherwise UTF-8 and validated.
        required: The layout is incomplete without it.
        rating_range: Inclusive (min, max) of valid ratings, for rating files.
    """

    kind: FileKind
    name: str
    fields: tuple[str, ...]
    separator: Separator
    header: str | None = None
    latin1: bool = False
    required: bool = True
    rating_range: tuple[float, float] = (0.5, 5.0)


#: Genre names of ml-100k's ``u.item`` flag columns, in order (from its ``u.genre``);
#: "Children's" is spelled as in ml-latest-small so genres agree across layouts.
ML100K_GENRES: Final[tuple[str, ...]] = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

#: ml-1m's occupation codes (its README).
ML1M_OCCUPATIONS: Final[Mapping[int, str]] = {
    0: "other",
    1: "academic/educator",
    2: "artist",
    3: "clerical/admin",
    4: "college/grad student",
    5: "customer service",
    6: "doctor/health care",
    7: "executive/managerial",
    8: "farmer",
    9: "homemaker",
    10: "K-12 student",
    11: "lawyer",
    12: "programmer",
    13: "retired",
    14: "sales/marketing",
    15: "scientist",
    16: "self-employed",
    17: "technician/engineer",
    18: "tradesman/craftsman",
    19: "unemployed",
    20: "writer",
}

_RATING_FIELDS: Final = ("user_id", "item_id", "rating", "timestamp")

LAYOUT_FILES: Final[Mapping[Layout, tuple[FileSpec, ...]]] = {
    Layout.ML_LATEST_SMALL: (
        FileSpec(
            FileKind.RATINGS,
            "ratings.csv",
            _RATING_FIELDS,
            "csv",
            header="userId,movieId,rating,timestamp",
        ),
        FileSpec(
            FileKind.MOVIES,
            "movies.csv",
            ("item_id", "title", "genres"),
            "csv",
            header="movieId,title,genres",
        ),
        FileSpec(
            FileKind.TAGS,
            "tags.csv",
            ("user_id", "item_id", "tag", "timestamp"),
            "csv",
            header="userId,movieId,tag,timestamp",
            required=False,
        ),
    ),
    Layout.ML_100K: (
        FileSpec(
            FileKind.RATINGS, "u.data", _RATING_FIELDS, "\t", latin1=True, rating_range=(1.0, 5.0)
        ),
        FileSpec(
            FileKind.MOVIES,
            "u.item",
            ("item_id", "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES),
            "|",
            latin1=True,
        ),
        FileSpec(
            FileKind.USERS,
            "u.user",
            ("user_id", "age", "gender", "occupation", "zip_code"),
            "|",
            latin1=True,
            required=False,
        ),
    ),
    Layout.ML_1M: (
        FileSpec(
            FileKind.RATINGS,
            "ratings.dat",
            _RATING_FIELDS,
            "::",
            latin1=True,
            rating_range=(1.0, 5.0),
        ),
        FileSpec(FileKind.MOVIES, "movies.dat", ("item_id", "title", "genres"), "::", latin1=True),
        FileSpec(
            FileKind.USERS,
            "users.dat",
            ("user_id", "gender", "age", "occupation", "zip_code"),
            "::",
            latin1=True,
            required=False,
        ),
    ),
}


def _existing(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def detect_layout(directory: Path) -> Layout:
    """The layout whose required files are all in ``directory``.

    Raises:
        IngestInputError: the directory is missing, empty, or matches no layout.
    """
    if not directory.is_dir():
        raise IngestInputError(f"input_path: {str(directory)!r} is not a directory")
    if not any(directory.iterdir()):
        raise IngestInputError(f"input_path: {str(directory)!r} is empty")
    for layout, specs in LAYOUT_FILES.items():
        if all(_existing(directory, s.name) for s in specs if s.required):
            return layout
    expected = "; ".join(
        layout.value + ": " + ", ".join(s.name for s in specs if s.required)
        for layout, specs in LAYOUT_FILES.items()
    )
    raise IngestInputError(
        f"input_path: {str(directory)!r} holds no known MovieLens layout (expected {expected})"
    )


def locate_files(directory: Path, layout: Layout) -> dict[FileKind, tuple[FileSpec, Path]]:
    """The layout's files present in ``directory``, by kind.

    Raises:
        IngestInputError: a required file is missing or has zero bytes.
    """
    found: dict[FileKind, tuple[FileSpec, Path]] = {}
    for spec in LAYOUT_FILES[layout]:
        path = _existing(directory, spec.name)
        if path is None:
            if spec.required:
                raise IngestInputError(
                    f"input_path: {layout.value} layout needs {spec.name} in {str(directory)!r}"
                )
            continue
        if path.stat().st_size == 0:
            raise IngestInputError(f"input_path: {str(path)!r} is empty")
        found[spec.kind] = (spec, path)
    return found
