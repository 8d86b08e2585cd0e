"""Request and response bodies of the trading routes (orders, portfolio, assets)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.money import AssetQuantity, DecimalString


class OrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    side: Literal["buy", "sell"]
    asset: str = Field(min_length=1, max_length=16, description="an asset symbol, e.g. BTC (any case)")
    quantity: AssetQuantity
    type: Literal["market"] = "market"


class AssetView(BaseModel):
    symbol: str
    name: str
    # Null until the first price tick for the asset has been seen.
    price: DecimalString | None = None
    updated_at: datetime | None = None


class AssetList(BaseModel):
    items: list[AssetView]


class Order(BaseModel):
    order_id: uuid.UUID
    command_id: uuid.UUID
    side: Literal["buy", "sell"]
    asset: str
    quantity: DecimalString
    type: Literal["market"] = "market"
    status: Literal["filled", "rejected"]
    reason: str | None = None
    price: DecimalString | None = None
    cash_amount: DecimalString | None = None
    fee: DecimalString | None = None
    balance_after: DecimalString | None = None
    placed_at: datetime
    completed_at: datetime


class OrderPage(BaseModel):
    items: list[Order]
    next_cursor: str | None


class PositionView(BaseModel):
    asset: str
    quantity: DecimalString
    average_cost: DecimalString
    # Null only while the asset has no price (never the case for an asset that was traded).
    price: DecimalString | None
    market_value: DecimalString | None
    unrealized_pnl: DecimalString | None
    realized_pnl: DecimalString


class Portfolio(BaseModel):
    cash: DecimalString
    positions: list[PositionView]
    total_value: DecimalString
