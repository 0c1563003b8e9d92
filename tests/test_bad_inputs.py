"""The bad-input catalogue (issue 17): malformed input of three surfaces, each with its outcome.

Every kind below gives either a quarantine row with its reason (ingest) or a clear error, exit
status 2 with a message naming the file, field, column or row (experiment and metrics config
through ``jobs.ab_analyze``, unit data through ``python -m ab_testing.cli analyze``); never a
traceback, never a silent drop. ``docs/reliability-ab.md`` lists the same kinds in a table.
Config and CLI cases run before any Spark session; the ingest cases share one ingest run.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from ab_testing import cli
from jobs import ab_analyze, ingest
from recsys.settings import Reason
from recsys.warehouse.tables import BRONZE_INTERACTIONS, BRONZE_ITEMS, BRONZE_QUARANTINE, Col

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# --------------------------------------------------------------------------------------------
# Experiment and metrics config, read by jobs.ab_analyze (as by assign, exposures and replay).

EXPERIMENTS = """\
version: 3
layers:
  - id: ranking
    experiments:
      - id: e_one
        start: 2026-03-01
        end: 2026-03-20
        buckets: [0, 5000]
        variants:
          - {id: control, weight: 1, control: true}
          - {id: treat, weight: 1}
"""
METRICS = """\
version: 1
metrics:
  - name: clicks
    kind: mean
    numerator: {event: click, agg: count}
    window_days: 7
experiments:
  default: [clicks]
"""
TREAT = "{id: treat, weight: 1}"


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old  # the case edits what it means to
    return text.replace(old, new, 1)


#: A second experiment of the layer: e_one's entry with another id and the other buckets.
SECOND = _edit(
    _edit(EXPERIMENTS[EXPERIMENTS.index("      - id: e_one") :], "e_one", "e_two"),
    "[0, 5000]",
    "[5000, 9000]",
)

WEIGHT_INF = "variants[1].weight: expected a finite number within 64 bits, got inf"

#: kind -> (text of EXPERIMENTS, what it becomes, message the exit-2 error holds): one edit of
#: the valid experiments file each, with the valid metrics file.
EXPERIMENTS_EDITS: dict[str, tuple[str, str, str]] = {
    "duplicated key (end twice)": (
        "end: 2026-03-20\n", "end: 2026-03-20\n        end: 2026-03-25\n",
        "found duplicated key 'end'",
    ),
    "infinite weight (.inf)": (TREAT, "{id: treat, weight: .inf}", WEIGHT_INF),
    "NaN weight (.nan)": (
        TREAT, "{id: treat, weight: .nan}",
        "variants[1].weight: expected a finite number within 64 bits, got nan",
    ),
    "weight beyond float64 (1.0e+400)": (TREAT, "{id: treat, weight: 1.0e+400}", WEIGHT_INF),
    "boolean weight": (
        TREAT, "{id: treat, weight: true}", "variants[1].weight: expected a number, got True",
    ),
    "impossible date (2026-02-30)": (
        "end: 2026-03-20", "end: 2026-02-30",
        "experiments[0].end: expected a date YYYY-MM-DD, got '2026-02-30'",
    ),
    "end before start": (
        "end: 2026-03-20", "end: 2026-02-20",
        "experiments[0].end: must be after start 2026-03-01, got 2026-02-20",
    ),
    "id with a trailing newline": (
        "id: e_one", 'id: "e_one\\n"',
        "experiments[0].id: expected an id matching [a-z][a-z0-9_]{0,62}, got 'e_one\\n'",
    ),
    "two control variants": (
        TREAT, "{id: treat, weight: 1, control: true}",
        "variants: need exactly one control, got ['control', 'treat']",
    ),
    "duplicated variant id": (
        TREAT, "{id: control, weight: 1}",
        "variants: ids must be distinct, got ['control', 'control']",
    ),
    "bucket range beyond 10000": (
        "[0, 5000]", "[0, 20000]", "experiments[0].buckets: must be in [1, 10000], got 20000",
    ),
    "not YAML (tab indentation)": ("    experiments:", "\texperiments:", "is not valid YAML"),
}  # fmt: skip

#: kind -> (experiments file, metrics file (None: absent), message the exit-2 error holds).
CONFIG_CASES: dict[str, tuple[str | bytes, str | bytes | None, str]] = {
    "empty experiments file": ("", METRICS, "config: expected a mapping, got None"),
    "experiments file not UTF-8 (Latin-1 byte)": (
        _edit(EXPERIMENTS, "id: ranking", "id: rank\xe9").encode("latin-1"),
        METRICS,
        "is not UTF-8 text",
    ),
    "duplicated experiment id in a layer": (
        EXPERIMENTS + _edit(SECOND, "e_two", "e_one"),
        METRICS,
        "experiments[1].id: 'e_one' is already used by layers[0].experiments[0].id",
    ),
    "same experiment id in two layers": (
        EXPERIMENTS + "  - id: other\n    experiments:\n" + _edit(SECOND, "e_two", "e_one"),
        METRICS,
        "layers[1].experiments[0].id: 'e_one' is already used by",
    ),
    "overlapping bucket ranges in a layer": (
        EXPERIMENTS + _edit(SECOND, "[5000, 9000]", "[4000, 9000]"),
        METRICS,
        "'e_one' [0, 5000] and 'e_two' [4000, 9000] overlap in buckets while both run",
    ),
    "fractional weights not summing to 1": (
        _edit(
            _edit(EXPERIMENTS, "weight: 1, control", "weight: 0.3, control"),
            TREAT,
            "{id: treat, weight: 0.3}",
        ),
        METRICS,
        "variants.weight: fractional weights must sum to 1, got 0.6",
    ),
    **{
        kind: (_edit(EXPERIMENTS, old, new), METRICS, message)
        for kind, (old, new, message) in EXPERIMENTS_EDITS.items()
    },
    "unknown metric for an experiment": (
        EXPERIMENTS,
        _edit(METRICS, "default: [clicks]", "default: [clicks]\n  e_one: [clicks, revenue]"),
        "experiments.e_one: unknown or empty metrics ['clicks', 'revenue']",
    ),
    "duplicated key in the metrics file": (
        EXPERIMENTS,
        _edit(METRICS, "window_days: 7\n", "window_days: 7\n    window_days: 14\n"),
        "found duplicated key 'window_days'",
    ),
    "missing metrics file": (EXPERIMENTS, None, "path: no such file"),
}


@pytest.mark.parametrize("kind", list(CONFIG_CASES))
def test_bad_config_exits_2_naming_the_field(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    experiments, metrics, message = CONFIG_CASES[kind]
    config, metrics_path = tmp_path / "experiments.yaml", tmp_path / "metrics.yaml"
    for path, content in ((config, experiments), (metrics_path, metrics)):
        if content is not None:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
    argv = ["--config", str(config), "--metrics", str(metrics_path), "--ds", "2026-03-05"]
    with caplog.at_level(logging.ERROR, logger="jobs.ab_analyze"):
        assert ab_analyze.main(argv) == 2  # before any Spark session
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert message in errors[0], errors[0]


def test_the_valid_config_of_the_cases_parses() -> None:
    # The cases above break a config that is fine: the failures come from the edits alone.
    import yaml

    from ab_testing.config import parse_config
    from ab_testing.metrics_config import parse_metrics
    from ab_testing.yaml_files import _StrictLoader

    two = parse_config(yaml.load(EXPERIMENTS + SECOND, Loader=_StrictLoader))
    assert two.experiment_ids == {"e_one", "e_two"}
    assert parse_metrics(yaml.load(METRICS, Loader=_StrictLoader)).metrics


# --------------------------------------------------------------------------------------------
# Unit-level data of the A/B command line.


def _units_csv(n: int = 40) -> str:
    rng = np.random.default_rng(5)
    df = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "variant": ["control", "treatment"] * (n // 2),
            "spend": np.round(rng.gamma(2.0, 3.0, n), 3),
        }
    )
    return str(df.to_csv(index=False))


GOOD = _units_csv()
ROW5 = GOOD.splitlines()[5]  # data row 5: u4,control,<spend>


def _row5(value: str) -> bytes:
    return _edit(GOOD, ROW5, ",".join([*ROW5.split(",")[:2], value])).encode()


def cli_argv(path: Path, out: Path) -> list[str]:
    return ["analyze", "--input", str(path), "--unit-col", "user_id", "--variant-col", "variant",
            "--control", "control", "--metric", "spend:mean", "--out", str(out)]  # fmt: skip


#: kind -> (file name, content, message after "error: ").
CLI_CASES: dict[str, tuple[str, bytes, str]] = {
    "infinite value (inf)": (
        "u.csv",
        _row5("inf"),
        "column 'spend' (metric spend:mean) has 1 infinite values (or beyond float64); "
        "first at row 5 (value inf)",
    ),
    "NaN spelled out": (
        "u.csv",
        _row5("nan"),
        "column 'spend' (metric spend:mean) has 1 missing or non-numeric values; first at row 5",
    ),
    "number beyond float64 (1e400)": (
        "u.csv",
        _row5("1e400"),
        "column 'spend' (metric spend:mean) has 1 infinite values (or beyond float64); "
        "first at row 5 (value '1e400')",
    ),
    "huge value (-1e200)": (
        "u.csv",
        _row5("-1e200"),
        "column 'spend' (metric spend:mean) has 1 values beyond +-1e+50",
    ),
    "400-digit integer": (
        "u.csv",
        _row5("9" * 400),
        "column 'spend' (metric spend:mean) has 1 infinite values (or beyond float64); "
        "first at row 5",
    ),
    "NUL byte in a number": (
        "u.csv",
        _row5("1\x002"),  # pandas alone reads 1: its parser ends a field at NUL
        "row 5 of u.csv holds a NUL byte in column 'spend'",
    ),
    "not UTF-8 (Latin-1 byte)": (
        "u.csv",
        GOOD.replace("u7,", "u\xe97,", 1).encode("latin-1"),
        "cannot read u.csv: 'utf-8' codec can't decode byte 0xe9",
    ),
    "UTF-16 file": ("u.csv", GOOD.encode("utf-16"), "cannot read u.csv: 'utf-8' codec"),
    "truncated gzip": (
        "u.csv.gz",
        gzip.compress(GOOD.encode())[:-12],
        "cannot read u.csv.gz: Compressed file ended before the end-of-stream marker",
    ),
    "empty file": ("u.csv", b"", "cannot read u.csv: No columns to parse from file"),
    "header-only file": ("u.csv", b"user_id,variant,spend\n", "the input has no rows"),
    "duplicated column name in the header": (
        "u.csv",
        _edit(GOOD, "user_id,variant,spend", "user_id,variant,spend,spend")
        .replace("\n", ",1\n")
        .replace(",spend,1\n", ",spend\n", 1)
        .encode(),
        "column 'spend' appears 2 times in the header of u.csv; column names must be distinct",
    ),
    "row with more fields than the header": (
        "u.csv",
        (GOOD + "u99,control,1.5,7,8\n").encode(),
        "row 41 of u.csv has 5 fields, the header has 3",
    ),
    "duplicated unit id with another variant": (
        "u.csv",
        (GOOD + "u1,control,2.0\n").encode(),
        "unit id column 'user_id' must hold one row per unit; 1 rows repeat an id",
    ),
    "missing unit id": (
        "u.csv",
        GOOD.replace("\nu6,", "\n,", 1).encode(),
        "unit id column 'user_id' has 1 missing ids",
    ),
}


@pytest.mark.parametrize("kind", list(CLI_CASES))
def test_bad_unit_data_exits_2_naming_column_or_row(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, content, message = CLI_CASES[kind]
    path = tmp_path / name
    path.write_bytes(content)
    argv = cli_argv(path, tmp_path / "out")
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error: " + message in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_unit_data_of_the_cases_analyses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "u.csv.gz"
    path.write_bytes(gzip.compress(GOOD.encode()))
    argv = cli_argv(path, tmp_path / "out")
    assert cli.main(argv) == 0
    assert (tmp_path / "out" / "results.csv").is_file()
    capsys.readouterr()


# --------------------------------------------------------------------------------------------
# Ingest: one delivery holds one bad line per kind; each must reach bronze.quarantine with its
# reason and detail, and none may reach bronze.

SOURCE = "bad-inputs"
DS = "2026-01-01"  # events after 2026-01-02 23:59:59 UTC are "in the future"
GOOD_MOVIES = ["1,Toy Story (1995),Comedy", "2,Heat (1995),Action", "3,Up (2009),Animation"]
GOOD_RATINGS = [f"{u},{i},4.0,{1_000_000_000 + 10 * u + i}" for u in range(1, 9) for i in (1, 2, 3)]

#: kind -> (file, raw line as written, raw line as quarantined, reason, detail it holds).
INGEST_CASES: dict[str, tuple[str, bytes, str, Reason, str]] = {
    "wrong header (not the layout's)": (
        "ratings", b"user,item,rating,time", "user,item,rating,time",
        Reason.UNPARSEABLE_NUMBER, "user_id is not an integer: user",
    ),
    "Latin-1 byte in a UTF-8 file": (
        "movies", b"4,Caf\xe9 (2001),Drama", "4,Caf\ufffd (2001),Drama",
        Reason.INVALID_UTF8, "line is not valid UTF-8",
    ),
    "bytes of no encoding": (
        "ratings", b"9,1,\xff\xfe,1000000000", "9,1,\ufffd\ufffd,1000000000",
        Reason.INVALID_UTF8, "line is not valid UTF-8",
    ),
    "NUL byte in a title": (
        "movies", b"5,Nul\x00l (2002),Drama", "5,Nul\x00l (2002),Drama",
        Reason.INVALID_VALUE, "line holds a NUL byte",
    ),
    "NUL byte in a number": (
        "ratings", b"9,2,4.0,100000000\x000", "9,2,4.0,100000000\x000",
        Reason.INVALID_VALUE, "line holds a NUL byte",
    ),
    "conflicting item rows (same id, other title)": (
        "movies", b"3,Up Again (2009),Drama", "3,Up Again (2009),Drama",
        Reason.DUPLICATE, "duplicate item_id 3",
    ),
    "conflicting ratings (same user and item, older)": (
        "ratings", b"1,1,1.0,1000000005", "1,1,1.0,1000000005",
        Reason.DUPLICATE, "duplicate user_id/item_id 1/1",
    ),
    "item id beyond 64 bits": (
        "movies", b"99999999999999999999,Big (1988),Comedy",
        "99999999999999999999,Big (1988),Comedy",
        Reason.UNPARSEABLE_NUMBER, "item_id is not an integer: 99999999999999999999",
    ),
    "negative item id": (
        "movies", b"-6,Minus (1990),Drama", "-6,Minus (1990),Drama",
        Reason.INVALID_VALUE, "item_id is negative",
    ),
    "empty genres": (
        "movies", b"7,Seven (1995),", "7,Seven (1995),", Reason.NULL_FIELD, "genres is empty",
    ),
    "NaN rating": (
        "ratings", b"9,3,NaN,1000000000", "9,3,NaN,1000000000",
        Reason.UNPARSEABLE_NUMBER, "rating is not a number: NaN",
    ),
    "infinite rating (inf)": (
        "ratings", b"10,1,inf,1000000000", "10,1,inf,1000000000",
        Reason.UNPARSEABLE_NUMBER, "rating is not a number: inf",
    ),
    "rating beyond float64 (1e400)": (
        "ratings", b"10,2,1e400,1000000000", "10,2,1e400,1000000000",
        Reason.UNPARSEABLE_NUMBER, "rating is not a number: 1e400",
    ),
    "rating out of range (5.5)": (
        "ratings", b"10,3,5.5,1000000000", "10,3,5.5,1000000000",
        Reason.RATING_OUT_OF_RANGE, "rating outside [0.5, 5.0]: 5.5",
    ),
    "timestamp in the future": (
        "ratings", b"11,1,4.0,99999999999", "11,1,4.0,99999999999",
        Reason.TIMESTAMP_OUT_OF_RANGE, "timestamp outside [1970-01-01, delivery date + 1 day]",
    ),
    "negative timestamp": (
        "ratings", b"11,2,4.0,-5", "11,2,4.0,-5",
        Reason.TIMESTAMP_OUT_OF_RANGE, "timestamp outside [1970-01-01, delivery date + 1 day]",
    ),
    "timestamp beyond 64 bits": (
        "ratings", b"11,3,4.0,99999999999999999999", "11,3,4.0,99999999999999999999",
        Reason.UNPARSEABLE_TIMESTAMP, "timestamp is not epoch seconds: 99999999999999999999",
    ),
    "timestamp in exponent notation": (
        "ratings", b"12,1,4.0,1e9", "12,1,4.0,1e9",
        Reason.UNPARSEABLE_TIMESTAMP, "timestamp is not epoch seconds: 1e9",
    ),
    "negative user id": (
        "ratings", b"-12,1,4.0,1000000000", "-12,1,4.0,1000000000",
        Reason.INVALID_VALUE, "user_id is negative",
    ),
    "extra field": (
        "ratings", b"12,2,4.0,1000000000,x", "12,2,4.0,1000000000,x",
        Reason.WRONG_FIELD_COUNT, "expected 4 fields, got 5",
    ),
    "rating of an unknown item": (
        "ratings", b"12,42,4.0,1000000000", "12,42,4.0,1000000000",
        Reason.UNKNOWN_ITEM, "item_id not in the delivery: 42",
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def quarantined(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[str, str]]:
    """Ingest the delivery once; raw line -> (reason, detail) of its quarantine rows."""
    directory = tmp_path_factory.mktemp("bad-delivery")
    files: dict[str, list[bytes]] = {
        "movies": [b"movieId,title,genres", *(m.encode() for m in GOOD_MOVIES)],
        "ratings": [b"userId,movieId,rating,timestamp", *(r.encode() for r in GOOD_RATINGS)],
    }
    for file, line, *_ in INGEST_CASES.values():
        if line.startswith(b"user,item"):
            files[file][0] = line  # the header itself is the bad line
        else:
            files[file].append(line)
    for file, lines in files.items():
        (directory / f"{file}.csv").write_bytes(b"\n".join(lines) + b"\n")
    argv = ["--input", str(directory), "--ds", DS, "--source", SOURCE, "--max-bad-fraction", "1"]
    assert ingest.main(argv) == 0
    rows = spark.table(BRONZE_QUARANTINE.qualified_name).where(F.col(Col.SOURCE) == SOURCE)
    out = {r[Col.RAW_LINE]: (r[Col.REASON], r[Col.DETAIL]) for r in rows.collect()}
    assert len(out) == rows.count()  # one row per bad line
    return out


@pytest.mark.spark
@pytest.mark.parametrize("kind", list(INGEST_CASES))
def test_bad_ingest_line_is_quarantined_with_its_reason(
    kind: str, quarantined: dict[str, tuple[str, str]]
) -> None:
    _, _, raw, reason, detail = INGEST_CASES[kind]
    assert raw in quarantined, sorted(quarantined)
    got_reason, got_detail = quarantined[raw]
    assert got_reason == reason.value
    assert detail in got_detail, got_detail


@pytest.mark.spark
def test_only_good_lines_reach_bronze(
    spark: SparkSession, quarantined: dict[str, tuple[str, str]]
) -> None:
    # Every bad line is quarantined, and nothing else is: no silent drop, no bad row kept.
    assert len(quarantined) == len(INGEST_CASES)
    items = spark.table(BRONZE_ITEMS.qualified_name).where(F.col(Col.SOURCE) == SOURCE)
    assert sorted(r[Col.ITEM_ID] for r in items.collect()) == [1, 2, 3]
    interactions = spark.table(BRONZE_INTERACTIONS.qualified_name).where(
        F.col(Col.SOURCE) == SOURCE
    )
    assert interactions.count() == len(GOOD_RATINGS)


INGEST_FILE_CASES: dict[str, tuple[dict[str, bytes], int, str]] = {
    "empty ratings file (0 bytes)": (
        {"movies.csv": b"movieId,title,genres\n1,A (1995),Drama\n", "ratings.csv": b""},
        2,
        "ratings.csv' is empty",
    ),
    "header-only ratings file": (
        {
            "movies.csv": b"movieId,title,genres\n1,A (1995),Drama\n",
            "ratings.csv": b"userId,movieId,rating,timestamp\n",
        },
        1,
        "input_path: no data lines in the ratings file(s)",
    ),
    "no movies file": (
        {"ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,1000000000\n"},
        2,
        "movies",
    ),
}


@pytest.mark.spark
@pytest.mark.parametrize("kind", list(INGEST_FILE_CASES))
def test_unusable_delivery_fails_with_a_clear_error(
    kind: str,
    spark: SparkSession,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    files, status, message = INGEST_FILE_CASES[kind]
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    source = "bad-file-" + str(list(INGEST_FILE_CASES).index(kind))
    with caplog.at_level(logging.ERROR, logger="jobs.ingest"):
        assert ingest.main(["--input", str(tmp_path), "--ds", DS, "--source", source]) == status
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert message in errors[0], errors
    written = spark.table(BRONZE_INTERACTIONS.qualified_name).where(F.col(Col.SOURCE) == source)
    assert written.count() == 0
