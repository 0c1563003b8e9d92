"""Every id/name validator refuses a trailing newline (``re.match`` with ``$`` accepted it)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ab_testing.config_model import check_id, check_salt
from ab_testing.replay import ReplayConfig
from jobs import assign, exposures, replay
from jobs.common import check_names
from jobs.generate_synthetic import GenerateConfig
from recsys.settings import IngestConfig, WarehouseSettings
from recsys.synthetic import SyntheticConfig
from recsys.warehouse.tables import TableRef

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "ab_testing" / "experiments.example.yaml")
RECS = str(ROOT / "ab_testing" / "experiments.recs.yaml")
DAY = date(2027, 1, 10)


def _replay_job(value: str) -> object:
    return replay.parse_args(
        [
            *("--config", RECS, "--experiment", "recs_model_vs_popularity", "--ds", "2027-01-10"),
            *("--data-start", "2010-01-01T00:00:00", "--interactions-source", value),
        ]
    )


VALIDATORS: dict[str, tuple[Callable[[str], object], str]] = {
    "ab_testing check_id": (lambda v: check_id("id", v), "exp"),
    "ab_testing check_salt": (lambda v: check_salt("salt", v), "salt-1.a"),
    "ReplayConfig.surface": (
        lambda v: ReplayConfig(DAY, DAY, datetime(2010, 1, 1, tzinfo=UTC), surface=v),
        "home",
    ),
    "TableRef": (TableRef, "ab.results"),
    "WarehouseSettings.master": (lambda v: WarehouseSettings(master=v), "local[2]"),
    "WarehouseSettings.master spark://": (lambda v: WarehouseSettings(master=v), "spark://h:7077"),
    "WarehouseSettings.driver_memory": (lambda v: WarehouseSettings(driver_memory=v), "4g"),
    "IngestConfig.source": (lambda v: IngestConfig(Path("."), DAY, v), "ml-latest-small"),
    "IngestConfig.run_id": (lambda v: IngestConfig(Path("."), DAY, "src", run_id=v), "Run1"),
    "GenerateConfig.source": (
        lambda v: GenerateConfig(SyntheticConfig(), date(2100, 1, 1), source=v),
        "synthetic",
    ),
    "GenerateConfig.run_id": (
        lambda v: GenerateConfig(SyntheticConfig(), date(2100, 1, 1), run_id=v),
        "run-1",
    ),
    "jobs.common.check_names": (lambda v: check_names((("source", v),)), "App.1"),
    "jobs.assign --source": (
        lambda v: assign.parse_args(["--config", EXAMPLE, "--ds", "2026-01-10", "--source", v]),
        "ml-latest-small",
    ),
    "jobs.exposures --run-id": (
        lambda v: exposures.parse_args(["--ds", "2026-01-10", "--run-id", v]),
        "r1",
    ),
    "jobs.replay --interactions-source": (_replay_job, "ml-latest-small"),
}


@pytest.mark.parametrize("name", sorted(VALIDATORS))
def test_validator_refuses_a_trailing_newline(name: str) -> None:
    validate, good = VALIDATORS[name]
    validate(good)  # the valid value passes
    for bad in (good + "\n", good + "\r\n", "\n" + good, good + "\n" + good):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            validate(bad)
