"""Holm and Benjamini–Hochberg corrections."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ab_testing.stats import adjust_p_values


def test_hand_computed() -> None:
    p = [0.01, 0.04, 0.03]
    # Holm: sorted .01·3, .03·2, .04·1 -> running max .03, .06, .06.
    np.testing.assert_allclose(adjust_p_values(p, "holm"), [0.03, 0.06, 0.06])
    # BH: .01·3/1, .03·3/2, .04·3/3 -> running min from the top .03, .04, .04.
    np.testing.assert_allclose(adjust_p_values(p, "fdr_bh"), [0.03, 0.04, 0.04])
    np.testing.assert_allclose(adjust_p_values(p, "none"), p)


def test_nan_is_kept_and_not_counted() -> None:
    out = adjust_p_values([0.01, math.nan, 0.04], "holm")
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.04])
    assert adjust_p_values([], "holm").shape == (0,)


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="method"):
        adjust_p_values([0.1], "bonferroni")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="p_values"):
        adjust_p_values([1.2], "holm")


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40),
    st.sampled_from(["holm", "fdr_bh", "none"]),
)
def test_adjusted_at_least_raw_and_at_most_one(p: list[float], method: str) -> None:
    adj = adjust_p_values(p, method)  # type: ignore[arg-type]
    assert np.all(adj >= np.asarray(p) - 1e-12)
    assert np.all(adj <= 1.0)
