"""Command status items (`STATUS#<command id>` under the account).

Written by the status consumer, read by the API.
"""

from __future__ import annotations

import uuid
from typing import Any

from consumers.status.projection import CommandAccepted, CommandCompleted
from infra.dynamo.client import DynamoDBClient, from_item, to_attr, to_item
from infra.dynamo.keys import OWNER_SK, account_pk, command_owner_pk, status_sk


class DynamoStatusStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def _key(self, account_id: str, command_id: uuid.UUID | str) -> dict[str, Any]:
        return {"PK": to_attr(account_pk(account_id)), "SK": to_attr(status_sk(command_id))}

    async def record_accepted(self, update: CommandAccepted) -> None:
        # Who owns a command, for the admin lookup by command id alone (a point read, not a scan).
        await self._client.put_item(
            TableName=self._table,
            Item=to_item(
                {
                    "PK": command_owner_pk(update.command_id),
                    "SK": OWNER_SK,
                    "account_id": update.account_id,
                }
            ),
        )
        await self._client.update_item(
            TableName=self._table,
            Key=self._key(update.account_id, update.command_id),
            UpdateExpression=(
                "SET command_id = :id, kind = :kind, accepted_at = :at, #s = if_not_exists(#s, :accepted)"
            ),
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":id": to_attr(str(update.command_id)),
                ":kind": to_attr(update.kind),
                ":at": to_attr(update.accepted_at.isoformat()),
                ":accepted": to_attr("accepted"),
            },
        )

    async def record_completed(self, update: CommandCompleted) -> None:
        names = {"#s": "status", "#r": "result"}
        values: dict[str, Any] = {
            ":id": to_attr(str(update.command_id)),
            ":kind": to_attr(update.kind),
            ":status": to_attr(update.status),
            ":result": to_attr(update.result),
            ":at": to_attr(update.completed_at.isoformat()),
        }
        expression = "SET command_id = :id, kind = :kind, #s = :status, #r = :result, completed_at = :at"
        if update.reason is not None:
            expression += ", reason = :reason"
            values[":reason"] = to_attr(update.reason)
        await self._client.update_item(
            TableName=self._table,
            Key=self._key(update.account_id, update.command_id),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    async def owner(self, command_id: uuid.UUID) -> str | None:
        response = await self._client.get_item(
            TableName=self._table,
            Key={"PK": to_attr(command_owner_pk(command_id)), "SK": to_attr(OWNER_SK)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return str(from_item(item)["account_id"]) if item else None

    async def get(self, account_id: str, command_id: uuid.UUID | str) -> dict[str, Any] | None:
        response = await self._client.get_item(
            TableName=self._table, Key=self._key(account_id, command_id), ConsistentRead=True
        )
        item = response.get("Item")
        return from_item(item) if item else None
