"""Newest-first pages of one account's items under a sort-key prefix, with cursors bound to the account."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from infra.dynamo.client import DynamoDBClient, from_item, to_attr
from infra.dynamo.keys import account_pk


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(from_item(key)).encode()).decode()


def decode_cursor(cursor: str, account_id: str, prefix: str) -> dict[str, Any]:
    """Raises ValueError for a cursor that is not ours: malformed, another account's, another listing's."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except Exception as exc:
        raise ValueError("malformed cursor") from exc
    if (
        not isinstance(raw, dict)
        or raw.get("PK") != account_pk(account_id)
        or not isinstance(raw.get("SK"), str)
        or not raw["SK"].startswith(prefix)
    ):
        raise ValueError("malformed cursor")
    return {"PK": to_attr(raw["PK"]), "SK": to_attr(raw["SK"])}


async def newest_first(
    client: DynamoDBClient, table: str, account_id: str, prefix: str, limit: int, cursor: str | None
) -> Page:
    """One Query, never a scan; raises ValueError for a bad cursor."""
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
        "ExpressionAttributeValues": {":pk": to_attr(account_pk(account_id)), ":prefix": to_attr(prefix)},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if cursor:
        query["ExclusiveStartKey"] = decode_cursor(cursor, account_id, prefix)
    response = await client.query(**query)
    last = response.get("LastEvaluatedKey")
    return Page(
        items=[from_item(i) for i in response.get("Items", [])],
        next_cursor=encode_cursor(last) if last else None,
    )
