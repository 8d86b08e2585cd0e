"""A command's terminal status, read from the record its settlement wrote: the ledger's for cash commands,
trading's for orders. No projection writes it, so it costs no request per command; it exists exactly when
the command's effects do, in the same transaction.

The record's key holds the command's acceptance time, which the intake's accepted record tells; without
it (that record expired), the command-id index does (eventually consistent). Records of the older layout
(`COMMAND#<handler>#<id>`) are read too, so commands settled before an upgrade keep their status."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from consumers.ledger.decisions import HANDLER as LEDGER
from consumers.trading.decisions import HANDLER as TRADING
from infra.dynamo.client import DynamoDBClient, to_attr
from infra.dynamo.keys import (
    ACCOUNT_PREFIX,
    COMMAND_INDEX,
    COMMAND_INDEX_KEY,
    account_pk,
    command_record_sk,
    command_sk,
)
from infra.dynamo.transactions import ItemKey, get_items
from schemas.envelope import RawEnvelope
from schemas.events import OUTCOME_EVENT_TYPES, command_result
from schemas.http import CommandStatus

# The handlers whose outcome records are a client command's status (portfolio's follow fills, not commands).
STATUS_HANDLERS: Final = (LEDGER, TRADING)


class DynamoCommandStatuses:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    async def settled(
        self, account_id: str, command_id: uuid.UUID, accepted_at: datetime | None
    ) -> CommandStatus | None:
        """The command's terminal status if the account's command has been settled or rejected."""
        pk = account_pk(account_id)
        if accepted_at is not None:
            keys = [(pk, command_record_sk(handler, command_id, accepted_at)) for handler in STATUS_HANDLERS]
        else:
            keys = await self.record_keys(account_id, command_id)
        keys += [(pk, command_sk(handler, command_id)) for handler in STATUS_HANDLERS]
        found = await get_items(self._client, self._table, keys)
        for key in keys:
            if key in found:
                return status_of(command_id, found[key])
        return None

    async def owner(self, command_id: uuid.UUID) -> str | None:
        """The account a settled command belongs to, from the index of command records (eventually
        consistent: a command settled a moment ago may not be found yet)."""
        keys = await self._indexed(command_id)
        return keys[0][0].removeprefix(ACCOUNT_PREFIX) if keys else None

    async def record_keys(self, account_id: str, command_id: uuid.UUID) -> list[ItemKey]:
        """The keys of the account's records of the command, by the command-id index."""
        pk = account_pk(account_id)
        return [key for key in await self._indexed(command_id) if key[0] == pk]

    async def _indexed(self, command_id: uuid.UUID) -> list[ItemKey]:
        """The keys of the records the command-id index holds for the command."""
        response = await self._client.query(
            TableName=self._table,
            IndexName=COMMAND_INDEX,
            KeyConditionExpression="#id = :id",
            ExpressionAttributeNames={"#id": COMMAND_INDEX_KEY},
            ExpressionAttributeValues={":id": to_attr(str(command_id))},
        )
        return [(str(i["PK"]["S"]), str(i["SK"]["S"])) for i in response.get("Items", [])]


def status_of(command_id: uuid.UUID, record: Mapping[str, Any]) -> CommandStatus:
    """The status an outcome record (read back with `from_item`) tells: its outcome event's facts."""
    envelope = RawEnvelope.model_validate_json(str(record["events"][0]))
    event = OUTCOME_EVENT_TYPES[envelope.type].model_validate(envelope.payload)
    return CommandStatus(
        command_id=command_id,
        kind=event.KIND,
        status="settled" if event.SETTLES else "rejected",
        reason=getattr(event, "reason", None),
        result=command_result(event),
        accepted_at=record.get("accepted_at"),
        completed_at=envelope.occurred_at,
    )
