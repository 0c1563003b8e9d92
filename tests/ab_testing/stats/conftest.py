"""Shared fixtures for the stats tests (fixtures only: test modules cannot import this file
under ``--import-mode=importlib``)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, fresh for every test."""
    return np.random.default_rng(20240601)
