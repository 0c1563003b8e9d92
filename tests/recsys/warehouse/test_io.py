from __future__ import annotations

import pytest

from recsys.warehouse.io import is_write_conflict, with_conflict_retry


def test_conflicts_are_retried_until_the_write_lands() -> None:
    calls = []

    def write() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("[DELTA_CONCURRENT_APPEND] Files were added to partition")

    with_conflict_retry(write, "t", attempts=5, base_delay_s=0.001)
    assert len(calls) == 3


def test_other_errors_and_exhausted_retries_propagate() -> None:
    def broken() -> None:
        raise RuntimeError("[TABLE_OR_VIEW_NOT_FOUND]")

    with pytest.raises(RuntimeError, match="NOT_FOUND"):
        with_conflict_retry(broken, "t", base_delay_s=0.001)

    def always_conflicts() -> None:
        raise RuntimeError("[DELTA_CONCURRENT_DELETE_READ]")

    with pytest.raises(RuntimeError, match="DELTA_CONCURRENT"):
        with_conflict_retry(always_conflicts, "t", attempts=2, base_delay_s=0.001)
    assert is_write_conflict(RuntimeError("DELTA_CONCURRENT_APPEND"))
    with pytest.raises(ValueError, match="attempts"):
        with_conflict_retry(lambda: None, "t", attempts=0)
