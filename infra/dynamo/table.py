"""Creation of the single table (idempotent), used by provisioning and the tests."""

from __future__ import annotations

import asyncio

import structlog
from botocore.exceptions import ClientError

from infra.dynamo.client import DynamoDBClient

log = structlog.get_logger(__name__)


async def ensure_table(client: DynamoDBClient, table: str) -> None:
    try:
        await client.create_table(
            TableName=table,
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        log.info("dynamodb.table_created", table=table)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    for _ in range(120):
        described = await client.describe_table(TableName=table)
        if described["Table"]["TableStatus"] == "ACTIVE":
            break
        await asyncio.sleep(0.5)
    try:
        await client.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
    except ClientError as exc:
        # Already enabled is the usual reason on a second provisioning.
        if exc.response.get("Error", {}).get("Code") != "ValidationException":
            raise
