"""The demo summary's power lines (pure Python): an underpowered experiment says so."""

from __future__ import annotations

import math

import pytest

from jobs.demo_summary import power_lines


def row(metric: str, power: float, mde: float, n: int = 300) -> dict[str, object]:
    return {"metric": metric, "power": power, "mde_relative": mde, "n_control": n, "n_variant": n}


def test_underpowered_metric_is_flagged_with_units_needed() -> None:
    lines, under = power_lines([row("converted", 0.05, 1.71, n=307)], 0.05, 0.8)
    assert under
    (line,) = lines
    assert "power 5% for a 5% relative effect" in line
    assert "UNDERPOWERED" in line
    # The SE shrinks as 1/sqrt(n): 307 * (1.71 / 0.05)**2 users per arm reach the MDE 5 %.
    assert f"{307 * (1.71 / 0.05) ** 2:,.0f} users per arm" in line


def test_powered_metrics_are_not_flagged() -> None:
    lines, under = power_lines([row("ctr", 0.93, 0.04), row("converted", 0.81, 0.049)], 0.05, 0.8)
    assert not under
    assert not any("UNDERPOWERED" in line for line in lines)


def test_missing_power_and_bad_arguments() -> None:
    lines, under = power_lines([row("ctr", math.nan, math.nan)], 0.05, 0.8)
    assert not under
    assert "power n/a" in lines[0]
    with pytest.raises(ValueError, match="target"):
        power_lines([], 0.0, 0.8)
