"""The job kit (jobs.common): run_job's exit codes and log lines, the argument vocabulary."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import pytest

from jobs.common import (
    Job,
    add_ds,
    add_fields,
    add_from_ds,
    add_run_id,
    add_source,
    check_run_id,
    config_from,
    day_range,
    job_main,
    job_parser,
    on_warehouse,
    run_id_or_new,
    run_job,
)

log = logging.getLogger("jobs.test_kit")


class MissingError(RuntimeError):
    pass


class RefusedError(RuntimeError):
    pass


def parse(argv: Sequence[str] | None) -> int:
    if argv and argv[0] == "bad":
        raise ValueError("--n: expected a number, got 'bad'")
    if argv and argv[0] == "type":
        raise TypeError("n: expected an int, got None")
    return len(argv or ())


EXITS = ((MissingError, 2), ((RefusedError, KeyError), 1))


def run(argv: list[str], body_raises: Exception | None = None, code: int = 0) -> int:
    def body(job: Job[int]) -> int:
        assert job.config == len(argv)
        if body_raises is not None:
            raise body_raises
        return code

    return run_job(log, argv, parse, body, app_name="test", exits=EXITS, log_done=True)


def test_a_bad_argument_exits_2_with_its_message(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="jobs.test_kit"):
        assert run(["bad"]) == 2
        assert run(["type"]) == 2
    assert [r.getMessage() for r in caplog.records] == [
        "--n: expected a number, got 'bad'",
        "n: expected an int, got None",
    ]
    assert all(r.levelno == logging.ERROR for r in caplog.records)


def test_exceptions_map_to_their_exit_codes(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="jobs.test_kit"):
        assert run([], MissingError("no delivery")) == 2
        assert run([], RefusedError("dq failed")) == 1
        assert run([], KeyError("k")) == 1  # the tuple of a pair
    assert [r.getMessage() for r in caplog.records] == ["no delivery", "dq failed", "'k'"]
    with pytest.raises(ZeroDivisionError):  # not listed: propagates with its traceback
        run([], ZeroDivisionError("x"))


def test_the_body_sets_the_exit_code_and_done_is_logged_on_0(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="jobs.test_kit"):
        assert run(["a"], code=1) == 1
        assert not caplog.records
        assert run(["a"]) == 0
    [done] = caplog.records
    assert done.getMessage().startswith("done in ")
    assert done.getMessage().endswith(" s")


def test_spark_is_not_built_unless_the_body_asks() -> None:
    job = Job("never", 3)
    assert job._spark is None
    assert job.seconds() >= 0


def test_the_argument_vocabulary() -> None:
    p = job_parser("jobs.x", "First paragraph.\n\nMore.")
    add_ds(p, required=True)
    add_from_ds(p)
    add_source(p, "bronze delivery", default="ml", delivery_ds=True)
    add_run_id(p)
    assert p.description == "First paragraph."
    a = p.parse_args(["--ds", "2026-01-10", "--from-ds", "2026-01-08", "--run-id", "r1"])
    assert (a.ds, a.from_ds, a.source, a.source_ds, a.run_id) == (
        date(2026, 1, 10),
        date(2026, 1, 8),
        "ml",
        None,
        "r1",
    )
    assert len(day_range(a.from_ds, a.ds)) == 3
    with pytest.raises(SystemExit):
        p.parse_args([])  # --ds required
    optional = job_parser("jobs.y", None)
    add_ds(optional)
    assert isinstance(optional.parse_args([]).ds, date)


def test_one_run_id_rule() -> None:
    airflow = "manual__2026-01-05T00:00:00+00:00"
    check_run_id(airflow)
    assert run_id_or_new(airflow) == airflow
    assert len(run_id_or_new(None)) == 32
    for bad in ("a b", "", "x" * 201, "r1\n", "a/b"):
        with pytest.raises(ValueError, match="run_id: expected"):
            run_id_or_new(bad)


def test_job_main_logs_as_jobs_name(caplog: pytest.LogCaptureFixture) -> None:
    def body(job: Job[int]) -> int:
        assert job.app_name == "kit_test"
        raise MissingError("no input")

    main = job_main("kit_test", parse, body, exits=EXITS)
    with caplog.at_level(logging.INFO):
        assert main(["bad"]) == 2
        assert main(["x"]) == 2
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("jobs.kit_test", "--n: expected a number, got 'bad'"),
        ("jobs.kit_test", "no input"),
    ]


def test_on_warehouse_runs_with_the_configured_root() -> None:
    from recsys.settings import load_settings

    seen: list[tuple[int, str]] = []

    def run(config: int, root: str) -> None:
        seen.append((config, root))

    body = on_warehouse(run)
    assert body(Job("x", 5)) == 0
    assert seen == [(5, load_settings().warehouse_root)]


@dataclass(frozen=True)
class Knobs:
    ds: date
    top_k: int = 50
    prior: float = 5.0
    split_id: str = "leave_last_out"
    n_users: int = 1000
    tags: tuple[str, ...] = field(default=())


def test_config_fields_as_options_and_back() -> None:
    parser = job_parser("jobs.test", None)
    add_ds(parser, required=True)
    add_fields(
        parser,
        Knobs,
        {"top_k": "items per list", "prior": None, "split_id": None, "n_users": None},
        flags={"n_users": "--users"},
    )
    args = parser.parse_args(["--ds", "2031-01-02", "--prior", "2", "--users", "7"])
    assert (args.top_k, args.prior, args.split_id, args.n_users) == (50, 2.0, "leave_last_out", 7)
    assert type(args.prior) is float
    assert "items per list" in parser.format_help()
    knobs = config_from(args, Knobs, top_k=3)
    assert knobs == Knobs(date(2031, 1, 2), top_k=3, prior=2.0, n_users=7)
    with pytest.raises(SystemExit):  # argparse: the field's type
        parser.parse_args(["--ds", "2031-01-02", "--top-k", "1.5"])
    for bad in ("ds", "tags", "nope"):  # no default, not int/float/str, not a field
        with pytest.raises(TypeError, match=bad):
            add_fields(job_parser("jobs.test", None), Knobs, {bad: None})
    with pytest.raises(TypeError, match="top_kk"):
        config_from(args, Knobs, top_kk=3)
