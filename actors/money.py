"""Money as integer nanodollars, end to end.

Prices are kept as nanodollars per million tokens (a price of $X per million tokens
is X * 10**9), so any price with up to nine decimals is exact, and a cost is the
ceiling of tokens * price / 10**6: rounding never undercharges.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

NANODOLLARS_PER_DOLLAR = 1_000_000_000
TOKENS_PER_MILLION = 1_000_000


def dollars_to_nd(value: object) -> int:
    """Convert a dollar amount given in config or on a command line to nanodollars, exactly.

    Floats are read through their shortest repr, so 0.15 means fifteen cents, not
    0.1499999....
    """
    if isinstance(value, bool):
        raise ValueError(f"not a dollar amount: {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a dollar amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a finite dollar amount: {value!r}")
    scaled = amount * NANODOLLARS_PER_DOLLAR
    if scaled != scaled.to_integral_value():
        raise ValueError(f"more precision than a nanodollar: {value!r}")
    return int(scaled)


_THOUSANDS = re.compile(r"\d{1,3}(,\d{3})+(\.\d+)?")
MAX_COST_CELL_USD = Decimal(1_000_000)
"""The most one call in an outcome table may cost: 10**15 nanodollars, exact in the float64 matrix tables keep,
and far beyond any model's price (a larger cell is a column of something else: a total, an id)."""


def cost_cell_nd(value: object) -> tuple[int, bool]:
    """A cost from an outcome table's cell, as people write them: nanodollars, and whether it was rounded.

    Binary floats (0.0005479999999999999), more decimals than nine, a leading `$` and
    thousands separators (1,234.50) are read; the amount is rounded to the nearest
    nanodollar. Refused, naming the value: a comma that is not a thousands separator
    (1,5 may be a decimal comma), a negative or non-finite amount, one above
    MAX_COST_CELL_USD, anything not a number.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a cost: {value!r}")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if text.startswith("$"):
        text = text[1:].strip()
    if "," in text:
        if not _THOUSANDS.fullmatch(text):
            raise ValueError(f"ambiguous cost {value!r}: a comma that is not a thousands separator (1,234.5)")
        text = text.replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a cost: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"not a cost (negative or not finite): {value!r}")
    if amount > MAX_COST_CELL_USD:
        raise ValueError(f"not the cost of one call (more than ${MAX_COST_CELL_USD:,}): {value!r}")
    scaled = amount * NANODOLLARS_PER_DOLLAR
    nearest = scaled.to_integral_value(rounding=ROUND_HALF_EVEN)
    return int(nearest), nearest != scaled


def token_cost_nd(tokens: int, price_nd_per_mtok: int) -> int:
    """Cost of `tokens` at a price in nanodollars per million tokens, rounded up."""
    return -(-tokens * price_nd_per_mtok // TOKENS_PER_MILLION)


def format_usd(nd: int, places: int = 4) -> str:
    """Render nanodollars as dollars for people; never used for arithmetic."""
    sign = "-" if nd < 0 else ""
    whole, frac = divmod(abs(nd), NANODOLLARS_PER_DOLLAR)
    digits = f"{frac:09d}"[:places]
    return f"{sign}${whole}.{digits}" if places else f"{sign}${whole}"
