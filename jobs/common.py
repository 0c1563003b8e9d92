"""What every job shares: logging set-up."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """One log line format for every job (Airflow shows the driver's stderr)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    # py4j logs every gateway round trip at INFO.
    logging.getLogger("py4j").setLevel(logging.WARNING)
