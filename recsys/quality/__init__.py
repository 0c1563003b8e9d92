"""Data-quality checks of a staged day before it is published: pure rules over aggregates."""

from recsys.quality.checks import CheckResult, Observed, Thresholds, evaluate

__all__ = ["CheckResult", "Observed", "Thresholds", "evaluate"]
