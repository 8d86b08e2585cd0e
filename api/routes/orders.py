"""Market orders: validated, published, answered 202; then read back once trading has decided them."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import CommandCaller, CurrentUser, IdempotencyKey, ResourcesDep
from api.intake import submit
from api.problems import ProblemError, field_error
from schemas.commands import PlaceOrder
from schemas.http import CommandReceipt
from schemas.money import decimal_to_str
from schemas.trading import normalise_symbol, trade_value
from schemas.trading_http import Order, OrderPage, OrderRequest

router = APIRouter(prefix="/v1/orders", tags=["orders"])
_NOT_FOUND = ProblemError(404, "Not found", "no such order")


@router.post("", status_code=202, response_model=CommandReceipt)
async def place_order(
    body: OrderRequest, caller: CommandCaller, resources: ResourcesDep, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    """Place a market order; it fills at the latest price when trading settles it, or is rejected.

    The value (quantity x latest price) must lie within the configured bounds. Without any price yet the
    order is accepted, and trading rejects it as `no_price` unless a price arrives first.
    """
    symbol = normalise_symbol(body.asset)
    if symbol not in await resources.assets.catalogue():
        raise field_error("asset", f"unknown asset {body.asset!r}")
    command = PlaceOrder(side=body.side, asset=symbol, quantity=body.quantity, type=body.type)

    async def within_bounds() -> None:
        # The cached listing (a price at most `asset_cache_ttl_s` old) spares a read per order: the fill
        # comes later, at whatever price is latest then, so a check can only ever be against a recent one.
        cached = (await resources.assets.listing_prices()).get(symbol)
        latest = cached or await resources.assets.latest_price(symbol)
        if latest is None:
            return
        settings = resources.settings
        value = trade_value(body.quantity, latest.price)
        if not settings.min_order_value <= value <= settings.max_order_value:
            raise field_error(
                "quantity",
                f"the order's value at the latest price ({decimal_to_str(latest.price)}) must be between "
                f"{settings.min_order_value} and {settings.max_order_value} USD",
            )

    # Checked once admitted, so that a revoked token or a caller over its limit costs no DynamoDB read.
    return await submit(command, caller, resources, idempotency_key, vet=within_bounds)


@router.get("", response_model=OrderPage)
async def list_orders(
    user: CurrentUser,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> OrderPage:
    """The caller's decided orders, newest first, paginated by an opaque cursor."""
    try:
        page = await resources.orders.page(user.user_id, limit, cursor)
    except ValueError:
        raise field_error("cursor", "not a cursor this endpoint issued") from None
    return OrderPage(items=[Order.model_validate(i) for i in page.items], next_cursor=page.next_cursor)


@router.get("/{order_id}", response_model=Order)
async def get_order(order_id: str, user: CurrentUser, resources: ResourcesDep) -> Order:
    """One of the caller's orders once trading has filled or rejected it (until then, poll the command
    status: the order id is the command id); 404 for any other."""
    try:
        parsed = uuid.UUID(order_id)
    except ValueError:
        raise _NOT_FOUND from None
    item = await resources.orders.get(user.user_id, parsed)
    if item is None:
        raise _NOT_FOUND
    return Order.model_validate(item)
