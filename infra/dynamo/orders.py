"""The account's orders, as the trading consumer recorded them: by id, and newest first."""

from __future__ import annotations

import uuid
from typing import Any

from infra.dynamo.client import DynamoDBClient, from_item, to_attr
from infra.dynamo.keys import account_pk
from infra.dynamo.pagination import Page, newest_first
from infra.dynamo.trading_keys import ORDER_LOG_PREFIX, order_sk


class DynamoOrders:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    async def get(self, account_id: str, order_id: uuid.UUID) -> dict[str, Any] | None:
        response = await self._client.get_item(
            TableName=self._table,
            Key={"PK": to_attr(account_pk(account_id)), "SK": to_attr(order_sk(order_id))},
        )
        item = response.get("Item")
        return from_item(item) if item else None

    async def page(self, account_id: str, limit: int, cursor: str | None) -> Page:
        """Newest first (by the time the order was placed); raises ValueError for a bad cursor."""
        return await newest_first(self._client, self._table, account_id, ORDER_LOG_PREFIX, limit, cursor)
