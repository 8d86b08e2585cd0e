"""A table as versions before the command-id index made it, for upgrade tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from infra.dynamo.client import DynamoDBClient


@asynccontextmanager
async def older_table(client: DynamoDBClient) -> AsyncIterator[str]:
    """A new table with only the key schema (no index, no layout stamp); deleted afterwards."""
    table = f"older-{uuid.uuid4().hex[:8]}"
    await client.create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        yield table
    finally:
        await client.delete_table(TableName=table)
