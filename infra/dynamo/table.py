"""Creation of the single table and its index (idempotent), used by provisioning and the tests."""

from __future__ import annotations

import asyncio
from typing import Any, Final

import structlog
from botocore.exceptions import ClientError

from infra.dynamo.client import DynamoDBClient
from infra.dynamo.keys import COMMAND_INDEX, COMMAND_INDEX_KEY
from infra.dynamo.layout import stamp_layout

log = structlog.get_logger(__name__)

_READY_POLLS: Final = 240
_READY_PAUSE_S: Final = 0.5

_COMMAND_INDEX: Final[dict[str, Any]] = {
    "IndexName": COMMAND_INDEX,
    "KeySchema": [{"AttributeName": COMMAND_INDEX_KEY, "KeyType": "HASH"}],
    "Projection": {"ProjectionType": "KEYS_ONLY"},
}
_ATTRIBUTES: Final = [
    {"AttributeName": "PK", "AttributeType": "S"},
    {"AttributeName": "SK", "AttributeType": "S"},
    {"AttributeName": COMMAND_INDEX_KEY, "AttributeType": "S"},
]


async def ensure_table(client: DynamoDBClient, table: str) -> None:
    created = False
    try:
        await client.create_table(
            TableName=table,
            AttributeDefinitions=_ATTRIBUTES,  # type: ignore[arg-type]
            KeySchema=[
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[_COMMAND_INDEX],  # type: ignore[list-item]
            BillingMode="PAY_PER_REQUEST",
        )
        created = True
        log.info("dynamodb.table_created", table=table)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    described = await _await_active(client, table)
    if not any(i["IndexName"] == COMMAND_INDEX for i in described.get("GlobalSecondaryIndexes", [])):
        # A table made before the index existed (a `make run` data folder kept across upgrades).
        await client.update_table(
            TableName=table,
            AttributeDefinitions=_ATTRIBUTES,  # type: ignore[arg-type]
            GlobalSecondaryIndexUpdates=[{"Create": _COMMAND_INDEX}],  # type: ignore[typeddict-item]
        )
        log.info("dynamodb.index_added", table=table, index=COMMAND_INDEX)
        await _await_active(client, table)
    await stamp_layout(client, table, created=created)
    try:
        await client.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
    except ClientError as exc:
        # Already enabled is the usual reason on a second provisioning.
        if exc.response.get("Error", {}).get("Code") != "ValidationException":
            raise


async def _await_active(client: DynamoDBClient, table: str) -> dict[str, Any]:
    """The table's description once it and every index are ACTIVE (an index is built after an update)."""
    for _ in range(_READY_POLLS):
        described: dict[str, Any] = dict((await client.describe_table(TableName=table))["Table"])
        indexes = described.get("GlobalSecondaryIndexes", [])
        if described["TableStatus"] == "ACTIVE" and all(i["IndexStatus"] == "ACTIVE" for i in indexes):
            return described
        await asyncio.sleep(_READY_PAUSE_S)
    raise TimeoutError(f"table {table} and its indexes did not become ACTIVE")
