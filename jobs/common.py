"""The job kit: what every job shares.

- :func:`job_main` / :func:`run_job`: a job's ``main`` preamble and exit codes (logging, parse
  with exit 2 on a bad argument, the Spark session on first use, exceptions mapped to exit
  codes, the elapsed time). A job is then a config dataclass, ``parse_args`` and a body
  (``extract`` / ``transform`` / ``load``): ``main = common.job_main("x", parse_args, body)``.
- One argument vocabulary: :func:`job_parser`, :func:`add_ds`, :func:`add_from_ds`,
  :func:`add_source`, :func:`add_run_id`; :func:`day_range` for ``--from-ds``..``--ds``;
  :data:`NAME_PATTERN` for names (``--source`` ...) and :data:`RUN_ID_PATTERN` for run ids;
  :func:`add_fields` for a config dataclass's fields as options and :func:`config_from` back.

Exit codes: 0 done; 1 the job ran and refused (a failed check, nothing to do); 2 bad arguments or
missing inputs (nothing written).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Final, Generic, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance
    from pyspark.sql import SparkSession

DataclassT = TypeVar("DataclassT")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """One log line format for every job (Airflow shows the driver's stderr)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    # py4j logs every gateway round trip at INFO.
    logging.getLogger("py4j").setLevel(logging.WARNING)


#: Most days one ``--from-ds``..``--ds`` run may process (both ends included).
MAX_RANGE_DAYS: Final = 366


def day_range(first: date | None, last: date) -> tuple[date, ...]:
    """Days ``first``..``last``, both included; ``(last,)`` when ``first`` is None.

    Raises:
        ValueError: ``first`` is after ``last``, or the range is over MAX_RANGE_DAYS days.
    """
    if first is None:
        return (last,)
    if first > last:
        raise ValueError(f"--from-ds: {first} is after --ds {last}")
    n = (last - first).days + 1
    if n > MAX_RANGE_DAYS:
        raise ValueError(
            f"--from-ds: {first}..{last} (--ds) is {n} days; at most {MAX_RANGE_DAYS} per run"
        )
    return tuple(first + timedelta(days=i) for i in range(n))


#: Delivery names and run ids on job command lines (``--source``, ``--run-id`` ...): 1-64
#: letters, digits, ``_ . -``, starting with a letter or digit. Checked with ``fullmatch``: a
#: trailing newline is refused (``re.match`` with ``$`` would accept it).
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_names(values: tuple[tuple[str, str | None], ...]) -> None:
    """Refuse any ``(name, value)`` whose value is not None and not a :data:`NAME_PATTERN` name.

    Raises:
        ValueError: naming the first bad argument and its value.
    """
    for name, value in values:
        if value is not None and not NAME_PATTERN.fullmatch(value):
            raise ValueError(f"{name}: expected {NAME_PATTERN.pattern}, got {value!r}")


#: Run ids on job command lines (``--run-id``): 1-200 letters, digits, ``_ . - : +``. Airflow run
#: ids look like ``manual__2026-01-05T00:00:00+00:00``; the id is only data (a column value, never
#: a path). Checked with ``fullmatch``.
RUN_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_.:+-]{1,200}")


def check_run_id(value: str | None, name: str = "run_id") -> None:
    """Refuse a run id that is not None and not a :data:`RUN_ID_PATTERN` id.

    Raises:
        ValueError: naming ``name`` and the value.
    """
    if value is not None and not RUN_ID_PATTERN.fullmatch(value):
        raise ValueError(f"{name}: expected 1-200 of letters, digits, _ - . : +, got {value!r}")


def run_id_or_new(value: str | None) -> str:
    """``value`` checked (:func:`check_run_id`), else a new UUID (32 hex digits)."""
    check_run_id(value)
    return value if value is not None else uuid.uuid4().hex


# --- one argument vocabulary --------------------------------------------------------------------


def job_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A job's parser: ``prog`` (e.g. ``jobs.trending``), described by the first paragraph of
    ``doc`` (the job module's docstring)."""
    return argparse.ArgumentParser(prog=prog, description=(doc or "").split("\n\n")[0])


def add_ds(
    parser: argparse.ArgumentParser, *, required: bool = False, help: str = "day, YYYY-MM-DD"
) -> None:
    """``--ds``: the day a run is about (required, or default today in UTC)."""
    if required:
        parser.add_argument("--ds", required=True, type=date.fromisoformat, help=help)
    else:
        parser.add_argument(
            "--ds",
            type=date.fromisoformat,
            default=datetime.now(UTC).date(),
            help=help + " (default: today, UTC)",
        )


def add_from_ds(parser: argparse.ArgumentParser) -> None:
    """``--from-ds``: first day of a range ending at ``--ds`` (checked by :func:`day_range`)."""
    parser.add_argument(
        "--from-ds",
        type=date.fromisoformat,
        help="first day of a range ending at --ds, YYYY-MM-DD (default: --ds alone)",
    )


def add_source(
    parser: argparse.ArgumentParser,
    help: str,
    *,
    default: str | None = None,
    delivery_ds: bool = False,
) -> None:
    """``--source`` (a :data:`NAME_PATTERN` name, checked by :func:`check_names`), and with
    ``delivery_ds`` also ``--source-ds``, the bronze delivery date."""
    parser.add_argument("--source", default=default, help=help)
    if delivery_ds:
        parser.add_argument("--source-ds", type=date.fromisoformat, help="bronze delivery date")


def add_run_id(
    parser: argparse.ArgumentParser, help: str = "id stamped on every row (default: a new UUID)"
) -> None:
    """``--run-id`` (a :data:`RUN_ID_PATTERN` id; :func:`run_id_or_new` checks it)."""
    parser.add_argument("--run-id", default=None, help=help)


#: Option types :func:`add_fields` derives from a field's annotation.
_OPTION_TYPES: Final[dict[object, type]] = {
    "int": int,
    "float": float,
    "str": str,
    int: int,
    float: float,
    str: str,
}


def add_fields(
    parser: argparse.ArgumentParser,
    config: type[DataclassInstance],
    helps: Mapping[str, str | None],
    *,
    flags: Mapping[str, str] | None = None,
) -> None:
    """One option per field of dataclass ``config`` named in ``helps`` (field -> help text or
    None), in that order: ``--<field with dashes>`` (or ``flags[field]``) with the field's type
    (int, float or str) and default, stored under the field's name for :func:`config_from`.

    Raises:
        TypeError: a named field is not a field of ``config``, has no default or another type.
    """
    known = {f.name: f for f in dataclasses.fields(config)}
    for name, text in helps.items():
        f = known.get(name)
        kind = None if f is None else _OPTION_TYPES.get(f.type)
        if f is None or kind is None or f.default is dataclasses.MISSING:
            raise TypeError(f"helps: {name!r} is no int/float/str field with a default of {config}")
        flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
        parser.add_argument(flag, dest=name, type=kind, default=f.default, help=text)


def config_from(
    args: argparse.Namespace, config: Callable[..., DataclassT], **given: object
) -> DataclassT:
    """``config`` (a dataclass) built from ``given`` and, for its other fields, the parsed
    arguments of the same name (fields with neither keep their default).

    Raises:
        TypeError: a name in ``given`` is not a field of ``config``.
    """
    names = [f.name for f in dataclasses.fields(cast("type[DataclassInstance]", config))]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise TypeError(f"given: {unknown} are not fields of {config}")
    return config(**({n: getattr(args, n) for n in names if hasattr(args, n)} | given))


# --- run_job: the preamble and exit codes ---------------------------------------------------------

ConfigT = TypeVar("ConfigT")

#: Exceptions a job's body may raise and the exit code each maps to (the first match wins).
ExitCodes = Sequence[tuple[type[Exception] | tuple[type[Exception], ...], int]]


class Job(Generic[ConfigT]):
    """One run of a job: its validated config, its Spark session (built on first use, so a job
    that refuses early never starts Spark) and the seconds since the arguments were parsed."""

    __slots__ = ("_spark", "_started", "app_name", "config")

    def __init__(self, app_name: str, config: ConfigT) -> None:
        self.app_name = app_name
        self.config = config
        self._spark: SparkSession | None = None
        self._started = time.perf_counter()

    @property
    def spark(self) -> SparkSession:
        """The session of :func:`recsys.warehouse.session.build_spark` for ``app_name``."""
        if self._spark is None:
            from recsys.warehouse.session import build_spark

            self._spark = build_spark(app_name=self.app_name)
        return self._spark

    def seconds(self) -> float:
        """Seconds since the arguments were parsed."""
        return time.perf_counter() - self._started


def run_job(
    log: logging.Logger,
    argv: Sequence[str] | None,
    parse: Callable[[Sequence[str] | None], ConfigT],
    body: Callable[[Job[ConfigT]], int],
    *,
    app_name: str,
    exits: ExitCodes = (),
    log_done: bool = False,
) -> int:
    """A job's ``main``: its exit code.

    Configures logging; ``parse(argv)`` raising ValueError/TypeError logs the message and
    returns 2 (before Spark starts); then ``body(job)`` runs and its return value is the exit
    code. An exception of ``exits`` is logged (its message, no traceback) and returns its code;
    any other propagates. With ``log_done``, exit 0 also logs ``done in <seconds> s``.
    """
    configure_logging()
    try:
        config = parse(argv)
    except (ValueError, TypeError) as err:  # a caller's mistake: one line, no traceback
        log.error("%s", err)
        return 2
    job = Job(app_name, config)
    caught = tuple(
        k for kinds, _ in exits for k in (kinds if isinstance(kinds, tuple) else (kinds,))
    )
    try:
        code = body(job)
    except caught as err:
        log.error("%s", err)
        return next(c for kinds, c in exits if isinstance(err, kinds))
    if code == 0 and log_done:
        log.info("done in %.1f s", job.seconds())
    return code


def on_warehouse(run: Callable[[ConfigT, str], object]) -> Callable[[Job[ConfigT]], int]:
    """A job body that calls ``run(config, warehouse_root)`` (the configured warehouse's root,
    :func:`recsys.settings.load_settings`) and exits 0; ``run`` starts its own Spark session."""

    def body(job: Job[ConfigT]) -> int:
        from recsys.settings import load_settings

        run(job.config, load_settings().warehouse_root)
        return 0

    return body


class JobMain(Protocol):
    """A job's ``main``: command-line arguments (None: ``sys.argv[1:]``) -> exit code."""

    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


def job_main(
    name: str,
    parse: Callable[[Sequence[str] | None], ConfigT],
    body: Callable[[Job[ConfigT]], int],
    *,
    exits: ExitCodes = (),
    log_done: bool = False,
) -> JobMain:
    """The ``main`` of job ``name``: :func:`run_job` with the logger ``jobs.<name>`` and the
    Spark app name ``name``."""
    log = logging.getLogger(f"jobs.{name}")

    def main(argv: Sequence[str] | None = None) -> int:
        return run_job(log, argv, parse, body, app_name=name, exits=exits, log_done=log_done)

    main.__doc__ = f"jobs.{name}: arguments -> exit code (0 done, 1 refused, 2 bad input)."
    return main
