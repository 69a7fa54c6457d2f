"""Money as integer nanodollars: prices, costs, the cells of outcome tables, and how amounts are shown."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.money import MAX_COST_CELL_USD, cost_cell_nd, dollars_to_nd, format_usd, token_cost_nd


def test_a_price_of_x_dollars_per_million_tokens_is_x_thousand_nanodollars_per_token() -> None:
    one_dollar_per_mtok = dollars_to_nd(1)
    assert token_cost_nd(1, one_dollar_per_mtok) == 1000
    assert token_cost_nd(1_000_000, dollars_to_nd("1.25")) == 1_250_000_000
    assert token_cost_nd(0, one_dollar_per_mtok) == 0


@given(st.integers(0, 10**9), st.integers(0, 10**15))
def test_a_cost_is_the_exact_amount_rounded_up_never_down(tokens: int, price_nd_per_mtok: int) -> None:
    assert token_cost_nd(tokens, price_nd_per_mtok) == math.ceil(Fraction(tokens * price_nd_per_mtok, 10**6))


@given(st.decimals(min_value=0, max_value=10**6, places=9, allow_nan=False, allow_infinity=False))
def test_dollars_with_up_to_nine_decimals_are_exact(amount: Decimal) -> None:
    assert dollars_to_nd(str(amount)) == int(amount * 10**9)


def test_more_precision_than_a_nanodollar_is_refused_and_a_float_is_read_as_written() -> None:
    assert dollars_to_nd(0.15) == 150_000_000
    for bad in ("0.0000000001", "nan", "inf", True, "ten"):
        with pytest.raises(ValueError):
            dollars_to_nd(bad)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("0", (0, False)),  # a free model
        ("0.25", (250_000_000, False)),
        (0.0005479999999999999, (548_000, True)),
        ("$1,234.50", (1_234_500_000_000, False)),
        ("0.0000000004", (0, True)),
        (str(MAX_COST_CELL_USD), (10**15, False)),
    ],
)
def test_a_cost_cell_is_read_to_the_nearest_nanodollar_saying_whether_it_was_rounded(
    cell: object, expected: tuple[int, bool]
) -> None:
    assert cost_cell_nd(cell) == expected


@pytest.mark.parametrize("cell", ["-0.01", "1,5", "1e999999", "nan", "n/a", True, str(MAX_COST_CELL_USD + Decimal("0.000000001"))])
def test_a_cost_cell_that_is_not_one_calls_cost_is_refused(cell: object) -> None:
    with pytest.raises(ValueError):
        cost_cell_nd(cell)


def test_amounts_are_shown_with_their_sign_to_the_places_asked() -> None:
    assert format_usd(0) == "$0.0000"
    assert format_usd(1_500_000_000) == "$1.5000"
    assert format_usd(-1_500_000_000) == "-$1.5000"
    assert format_usd(123_456, 6) == "$0.000123"
    assert format_usd(2_999_999_999, 0) == "$2"
