"""The account's orders, as the trading consumer recorded them: by id, and newest first."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

from infra.dynamo.client import DynamoDBClient, from_item, to_attr
from infra.dynamo.keys import account_pk
from infra.dynamo.trading_keys import ORDER_LOG_PREFIX, order_sk


@dataclass(frozen=True)
class OrderPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(from_item(key)).encode()).decode()


def decode_cursor(cursor: str, account_id: str) -> dict[str, Any]:
    """Raises ValueError for a cursor that is not ours, including one minted for another account."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except Exception as exc:
        raise ValueError("malformed cursor") from exc
    if (
        not isinstance(raw, dict)
        or raw.get("PK") != account_pk(account_id)
        or not isinstance(raw.get("SK"), str)
        or not raw["SK"].startswith(ORDER_LOG_PREFIX)
    ):
        raise ValueError("malformed cursor")
    return {"PK": to_attr(raw["PK"]), "SK": to_attr(raw["SK"])}


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

    async def page(self, account_id: str, limit: int, cursor: str | None) -> OrderPage:
        """Newest first (by the time the order was placed); raises ValueError for a bad cursor."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": to_attr(account_pk(account_id)),
                ":prefix": to_attr(ORDER_LOG_PREFIX),
            },
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            query["ExclusiveStartKey"] = decode_cursor(cursor, account_id)
        response = await self._client.query(**query)
        last = response.get("LastEvaluatedKey")
        return OrderPage(
            items=[from_item(i) for i in response.get("Items", [])],
            next_cursor=_encode_cursor(last) if last else None,
        )
