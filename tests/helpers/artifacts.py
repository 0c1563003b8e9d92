"""Fake model artifacts: real ``save_artifact`` files with a one-number state, for the tests of
bundles, evaluation, promotion and scoring that only need versions and their pairing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import torch

from recsys.training.artifacts import save_artifact
from recsys.training.bundle import RankerInputs


def fake_artifact(root: Path, name: str, second: int, inputs: RankerInputs | None = None) -> str:
    """Save a ``name`` artifact under ``root`` trained at 2031-01-01 00:00:``second`` UTC (0-59;
    later seconds are newer versions); ``inputs``: what a ranker was trained against. Returns
    its version."""
    return save_artifact(
        root,
        name,
        {"w": torch.full((1,), float(second))},
        config={},
        feature_spec={},
        metrics={},
        data_versions={},
        extra=None if inputs is None else inputs.as_extra(),
        now=datetime(2031, 1, 1, 0, 0, second, tzinfo=UTC),
    ).version
