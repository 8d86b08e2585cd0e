"""Newest-first pages of one account's items under a sort-key prefix, with cursors bound to the account."""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

from infra.dynamo.client import DynamoDBClient, from_item, to_attr
from infra.dynamo.keys import account_pk

# Items read per Query when filtering by type (most of an account's events may be of other types).
_FILTERED_PAGE: Final = 100


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
    client: DynamoDBClient,
    table: str,
    account_id: str,
    prefix: str,
    limit: int,
    cursor: str | None,
    *,
    of_types: Collection[str] = (),
) -> Page:
    """Never a scan; raises ValueError for a bad cursor. `of_types` keeps only the items whose `type` is
    one of them: DynamoDB filters after it reads a page, so pages are read until `limit` items match."""
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
        "ExpressionAttributeValues": {":pk": to_attr(account_pk(account_id)), ":prefix": to_attr(prefix)},
        "ScanIndexForward": False,
        "Limit": max(limit, _FILTERED_PAGE) if of_types else limit,
    }
    if of_types:
        names = {f":t{n}": to_attr(t) for n, t in enumerate(sorted(of_types))}
        query["FilterExpression"] = f"#type IN ({', '.join(names)})"
        query["ExpressionAttributeNames"] = {"#type": "type"}
        query["ExpressionAttributeValues"].update(names)
    if cursor:
        query["ExclusiveStartKey"] = decode_cursor(cursor, account_id, prefix)
    items: list[dict[str, Any]] = []
    while True:
        response = await client.query(**query)
        for raw in response.get("Items", []):
            items.append(raw)
            if len(items) == limit:
                return Page([from_item(i) for i in items], encode_cursor({"PK": raw["PK"], "SK": raw["SK"]}))
        last = response.get("LastEvaluatedKey")
        if not last:
            return Page([from_item(i) for i in items], None)
        query["ExclusiveStartKey"] = last
