"""The account's orders, as the trading consumer recorded them: by id, and newest first."""

from __future__ import annotations

import uuid
from typing import Any

from consumers.trading.decisions import HANDLER
from infra.dynamo.client import DynamoDBClient
from infra.dynamo.keys import account_pk, command_sk
from infra.dynamo.pagination import Page, newest_first
from infra.dynamo.trading_keys import ORDER_LOG_PREFIX, legacy_order_sk
from infra.dynamo.transactions import get_items


class DynamoOrders:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    async def get(self, account_id: str, order_id: uuid.UUID) -> dict[str, Any] | None:
        """The order (its id is the command's): kept on trading's outcome record, or, for an order
        settled before the two were one item, on an item of its own."""
        pk = account_pk(account_id)
        record, legacy = (pk, command_sk(HANDLER, order_id)), (pk, legacy_order_sk(order_id))
        found = await get_items(self._client, self._table, [record, legacy])
        if record in found and "order_id" in found[record]:
            return found[record]
        return found.get(legacy)

    async def page(self, account_id: str, limit: int, cursor: str | None) -> Page:
        """Newest first (by the time the order was placed); raises ValueError for a bad cursor."""
        return await newest_first(self._client, self._table, account_id, ORDER_LOG_PREFIX, limit, cursor)
