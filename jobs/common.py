"""What every job shares: logging set-up."""

from __future__ import annotations

import logging
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
