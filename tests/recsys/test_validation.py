"""The shared argument checks: what they accept, what they refuse and the error they name."""

from __future__ import annotations

import pytest

from recsys.validation import check_int, check_typed_int


@pytest.mark.parametrize("value", [3, 10**12])
def test_check_int_returns_an_accepted_value(value: int) -> None:
    assert check_int("n", value, 3) == value


@pytest.mark.parametrize("value", [2, -1, True, 3.0, "3", None])
def test_check_int_refuses_with_a_value_error_naming_the_argument(value: object) -> None:
    with pytest.raises(ValueError, match=r"^n: must be an int >= 3, got "):
        check_int("n", value, 3)


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (True, TypeError, r"^top_k: expected an int, got True$"),
        (1.5, TypeError, r"^top_k: expected an int, got 1\.5$"),
        ("2", TypeError, r"^top_k: expected an int, got '2'$"),
        (0, ValueError, r"^top_k: must be >= 1, got 0$"),
    ],
)
def test_check_typed_int_tells_a_wrong_type_from_a_wrong_value(
    value: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        check_typed_int("top_k", value, 1)
    check_typed_int("top_k", 1, 1)
