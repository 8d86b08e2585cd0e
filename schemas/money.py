"""Exact decimal types for money and quantities: decimal strings on the wire, `Decimal` in code."""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Annotated, Final

from pydantic import AfterValidator, PlainSerializer, PlainValidator, WithJsonSchema

CENT: Final = Decimal("0.01")
# Bounded so that every sum and product we make stays inside the default 28-digit decimal context.
_DECIMAL_PATTERN: Final = r"^-?[0-9]{1,15}(\.[0-9]{1,8})?$"
_DECIMAL_RE: Final = re.compile(_DECIMAL_PATTERN)


def parse_decimal_string(value: object) -> Decimal:
    """Accept only a plain decimal string (or a Decimal built in code): never a float, NaN or exponent."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be a finite number")
        return value
    if not isinstance(value, str):
        raise ValueError('must be a decimal string such as "100.25"')
    if not _DECIMAL_RE.fullmatch(value):
        raise ValueError(
            'must be a plain decimal string such as "100.25" (at most 15 digits before the point)'
        )
    return Decimal(value)


def decimal_to_str(value: Decimal) -> str:
    return format(value, "f")


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _positive_cash(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than 0")
    if decimal_places(value) > 2:
        raise ValueError("must have at most 2 decimal places")
    return value


def _positive_quantity(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than 0")
    if decimal_places(value) > 8:
        raise ValueError("must have at most 8 decimal places")
    return value


DecimalString = Annotated[
    Decimal,
    PlainValidator(parse_decimal_string),
    PlainSerializer(decimal_to_str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": _DECIMAL_PATTERN, "examples": ["100.25"]}),
]
CashAmount = Annotated[DecimalString, AfterValidator(_positive_cash)]
AssetQuantity = Annotated[DecimalString, AfterValidator(_positive_quantity)]


def to_cents(value: Decimal) -> Decimal:
    """Normalise a stored cash number (DynamoDB drops trailing zeros) to exactly two places."""
    return value.quantize(CENT)


def round_cost_up(value: Decimal) -> Decimal:
    """A buy's cost rounds up to the cent: never in the trader's favour."""
    return value.quantize(CENT, rounding=ROUND_CEILING)


def round_proceeds_down(value: Decimal) -> Decimal:
    """A sell's proceeds round down to the cent: never in the trader's favour."""
    return value.quantize(CENT, rounding=ROUND_FLOOR)
