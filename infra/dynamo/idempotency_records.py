"""The durable half of `Idempotency-Key`: which command a key stands for, and the body it was used with.

Redis caches receipts for speed; this item is what makes the promise survive Redis losing its data.
It is written before the command is published and never expires: the command id derived from a key is
final, so forgetting the key would let another body reuse that id and be dropped as a duplicate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from infra.dynamo.client import DynamoDBClient, from_item, to_item
from infra.dynamo.keys import account_pk, idempotency_sk


@dataclass(frozen=True)
class IdempotencyRecord:
    command_id: uuid.UUID
    kind: str
    fingerprint: str
    accepted_at: datetime


class DynamoIdempotencyRecords:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    async def remember(
        self, account_id: str, key_digest: str, record: IdempotencyRecord
    ) -> IdempotencyRecord:
        """Stores `record` unless the key has one already; returns the record that holds for the key."""
        key = {"PK": account_pk(account_id), "SK": idempotency_sk(key_digest)}
        try:
            await self._client.put_item(
                TableName=self._table,
                Item=to_item(
                    key
                    | {
                        "command_id": str(record.command_id),
                        "kind": record.kind,
                        "fingerprint": record.fingerprint,
                        "accepted_at": record.accepted_at.isoformat(),
                    }
                ),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            stored = await self._client.get_item(TableName=self._table, Key=to_item(key), ConsistentRead=True)
            return _record(from_item(stored["Item"]))
        return record


def _record(item: dict[str, Any]) -> IdempotencyRecord:
    return IdempotencyRecord(
        command_id=uuid.UUID(item["command_id"]),
        kind=str(item["kind"]),
        fingerprint=str(item["fingerprint"]),
        accepted_at=datetime.fromisoformat(item["accepted_at"]),
    )
