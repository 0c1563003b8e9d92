"""What every job shares: logging set-up, day ranges and the name check of command-line ids."""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta
from typing import Final

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
