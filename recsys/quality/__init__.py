"""Data-quality checks of published tables: pure rules over observed aggregates."""

from recsys.quality.checks import CheckResult, Observed, Thresholds, evaluate

__all__ = ["CheckResult", "Observed", "Thresholds", "evaluate"]
