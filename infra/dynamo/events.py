"""Items that handlers write in their transactions: a client command's one record (its outcome event, dedupe
guard and status), and the dedupe records of handlers that follow events."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from consumers.common.ports import StoredOutcome
from infra.dynamo.client import to_item
from infra.dynamo.keys import COMMAND_INDEX_KEY, account_pk, command_record_sk, command_sk
from infra.dynamo.transactions import ItemKey
from schemas.envelope import Envelope


def outcome_record(
    table: str,
    pk: str,
    sk: str,
    *,
    topic: str,
    events: Sequence[Envelope[Any]],
    outcome: str,
    reason: str | None,
) -> dict[str, Any]:
    """The dedupe guard of a handler that follows events (portfolio): it exists once per (handler, event)
    and holds what to republish on redelivery."""
    values = {
        "PK": pk,
        "SK": sk,
        "topic": topic,
        "events": [e.to_json() for e in events],
        "outcome": outcome,
        "reason": reason,
    }
    return _put_new(table, values)


def command_record(
    table: str,
    handler: str,
    command_id: uuid.UUID,
    accepted_at: datetime,
    *,
    topic: str,
    event: Envelope[Any],
    outcome: str,
    reason: str | None,
    balance_version: int,
    order: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A client command's one item: its outcome event (what the account's history and reconciliation read),
    its dedupe guard (it exists once per command: `attribute_not_exists`), what to republish on
    redelivery, and its terminal status (the API reads it; `outcome_of` indexes it by command id). An
    order's record (`order`) is kept on it too."""
    values: dict[str, Any] = {
        "PK": account_pk(event.account_id),
        "SK": command_record_sk(handler, command_id, accepted_at),
        **_event_attributes(event, balance_version),
        "topic": topic,
        "events": [event.to_json()],
        "outcome": outcome,
        "reason": reason,
        COMMAND_INDEX_KEY: str(command_id),
        "accepted_at": accepted_at.isoformat(),
    }
    if order is not None:
        values["order"] = dict(order)
    return _put_new(table, values)


def _put_new(table: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A Put that only creates: the item's existence is the dedupe check."""
    return {
        "Put": {
            "TableName": table,
            "Item": to_item(values),
            "ConditionExpression": "attribute_not_exists(PK)",
        }
    }


def command_record_keys(handler: str, message: Envelope[Any], legacy_until: datetime) -> list[ItemKey]:
    """Where a command's record may be: its item, and for a command accepted before the table's cutover the
    dedupe record of the older layout (see `infra.dynamo.layout`)."""
    pk = account_pk(message.account_id)
    keys = [(pk, command_record_sk(handler, message.id, message.occurred_at))]
    if message.occurred_at < legacy_until:
        keys.append((pk, command_sk(handler, message.id)))
    return keys


def command_outcome_keys(
    handler: str, messages: Iterable[Envelope[Any]], legacy_until: datetime
) -> list[ItemKey]:
    """Every key to read with a batch to tell which of its commands were settled before."""
    return [key for m in messages for key in command_record_keys(handler, m, legacy_until)]


def stored_command_outcomes(
    handler: str,
    messages: Sequence[Envelope[Any]],
    found: Mapping[ItemKey, Mapping[str, Any]],
    legacy_until: datetime,
) -> dict[uuid.UUID, StoredOutcome]:
    """The commands settled before: what their records among `found` say to republish."""
    stored: dict[uuid.UUID, StoredOutcome] = {}
    for m in messages:
        record = next((found[k] for k in command_record_keys(handler, m, legacy_until) if k in found), None)
        if record is not None:
            stored[m.id] = stored_outcome(record)
    return stored


def outcome_keys(handler: str, messages: Iterable[Envelope[Any]]) -> list[tuple[str, str]]:
    """The (PK, SK) of each message's dedupe record, to read with the batch's other items."""
    return [(account_pk(m.account_id), command_sk(handler, m.id)) for m in messages]


def stored_outcomes(
    handler: str, messages: Sequence[Envelope[Any]], found: Mapping[tuple[str, str], Mapping[str, Any]]
) -> dict[uuid.UUID, StoredOutcome]:
    """The messages handled before: what their dedupe records among `found` say to republish."""
    return {
        m.id: stored_outcome(record)
        for m, key in zip(messages, outcome_keys(handler, messages), strict=True)
        if (record := found.get(key))
    }


def stored_outcome(record: Mapping[str, Any]) -> StoredOutcome:
    """What a dedupe record (read back with `from_item`) says to republish."""
    return StoredOutcome(
        topic=str(record["topic"]), events=tuple(str(e).encode() for e in record.get("events", []))
    )


def history_version(observed_balance_version: int, settled: bool) -> int:
    """Where an outcome sits in its account's history: the balance version it produced, or for a
    rejection the version it was decided against. Event times are taken when a decision is made, and two
    consumers (ledger, trading) decide concurrently, so times alone can misorder the history; sorting by
    (history_version, settlements before rejections) gives the order the writes actually took effect."""
    return observed_balance_version + 1 if settled else observed_balance_version


def _event_attributes(event: Envelope[Any], balance_version: int) -> dict[str, Any]:
    return {
        "event_id": str(event.id),
        "type": event.type,
        "version": event.version,
        "occurred_at": event.occurred_at.isoformat(),
        "causation_id": str(event.causation_id) if event.causation_id else None,
        "payload": event.payload.model_dump(mode="json"),
        "balance_version": balance_version,
    }
