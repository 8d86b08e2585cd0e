"""Revoked access tokens, kept durably until they expire (the Redis denylist is rebuilt from here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infra.dynamo.client import DynamoDBClient, from_item, to_attr, to_item
from infra.dynamo.keys import revoked_tokens_pk


class DynamoRevocations:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    async def revoke(self, jti: str, expires_at: int) -> None:
        day = datetime.fromtimestamp(expires_at, UTC).date()
        await self._client.put_item(
            TableName=self._table,
            # `expires_at` is the table's TTL attribute: DynamoDB drops the item once the token is dead.
            Item=to_item({"PK": revoked_tokens_pk(day), "SK": jti, "expires_at": expires_at}),
        )

    async def active(self, now: datetime, max_token_ttl_s: int) -> dict[str, int]:
        """jti -> expiry of every revoked token not yet expired (TTL deletion is lazy: filter by time)."""
        revoked: dict[str, int] = {}
        day, last = now.date(), (now + timedelta(seconds=max_token_ttl_s)).date()
        while day <= last:
            pages = self._client.get_paginator("query").paginate(
                TableName=self._table,
                KeyConditionExpression="PK = :pk",
                FilterExpression="expires_at > :now",
                ExpressionAttributeValues={
                    ":pk": to_attr(revoked_tokens_pk(day)),
                    ":now": to_attr(int(now.timestamp())),
                },
            )
            async for page in pages:
                for raw in page.get("Items", []):
                    item = from_item(raw)
                    revoked[str(item["SK"])] = int(item["expires_at"])
            day += timedelta(days=1)
        return revoked
