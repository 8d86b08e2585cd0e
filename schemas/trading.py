"""Market data contracts: the asset reference data and the `PriceTick` on the `prices` topic."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Annotated, ClassVar, Final

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from schemas.money import DecimalString

SYMBOL_PATTERN: Final = r"^[A-Z0-9]{1,12}$"
_SYMBOL_RE: Final = re.compile(SYMBOL_PATTERN)
# The envelope's `account_id` of market data, which belongs to no account.
MARKET_ACCOUNT: Final = "market"


def normalise_symbol(value: str) -> str:
    """Symbols are upper case on the wire and in storage; users may type them in any case."""
    return value.strip().upper()


def is_symbol(value: str) -> bool:
    return bool(_SYMBOL_RE.fullmatch(value))


def _positive_price(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


Price = Annotated[DecimalString, AfterValidator(_positive_price)]


def trade_value(quantity: Decimal, price: Decimal) -> Decimal:
    """quantity x price, exact: wide enough for every quantity and price the schemas admit."""
    with localcontext() as ctx:
        ctx.prec = 60
        return quantity * price


class PriceTick(BaseModel):
    """The latest traded price of one asset at `at`. Consumers keep only the newest per asset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str] = "PriceTick"
    VERSION: ClassVar[int] = 1

    asset: str = Field(pattern=SYMBOL_PATTERN)
    price: Price
    at: AwareDatetime


class AssetInfo(BaseModel):
    """One line of the shipped reference data (`infra/data/assets.json`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(pattern=SYMBOL_PATTERN)
    name: str = Field(min_length=1, max_length=64)
    # Where the random-walk price feed starts; never shown as a price before a tick confirms it.
    start_price: Price


class LatestPrice(BaseModel):
    model_config = ConfigDict(frozen=True)

    price: Decimal
    at: datetime


PRICE_TICK_TYPES: dict[str, type[BaseModel]] = {PriceTick.TYPE: PriceTick}
