"""Items that every handler writes in its transaction: the dedupe/outcome record and the event items."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from consumers.common.ports import StoredOutcome
from infra.dynamo.client import to_item
from infra.dynamo.keys import COMMAND_INDEX_KEY, account_pk, command_sk, event_sk
from schemas.envelope import Envelope, utc_now


def outcome_record(
    table: str,
    pk: str,
    sk: str,
    *,
    topic: str,
    events: Sequence[Envelope[Any]],
    outcome: str,
    reason: str | None,
    command: tuple[uuid.UUID, datetime] | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The dedupe guard: it exists once per (handler, command) and holds what to republish on redelivery.

    The record of a client's command (`command`: its id and when it was accepted) is also the command's
    terminal status, which the API reads: no second write path, and indexed by the command id. `details`
    are what else a reader looks up by the same id (an order's record), kept on the same item.
    """
    values: dict[str, Any] = {
        **(details or {}),
        "PK": pk,
        "SK": sk,
        "topic": topic,
        "events": [e.to_json() for e in events],
        "outcome": outcome,
        "reason": reason,
        "recorded_at": utc_now().isoformat(),
    }
    if command is not None:
        command_id, accepted_at = command
        values[COMMAND_INDEX_KEY] = str(command_id)
        values["accepted_at"] = accepted_at.isoformat()
    return {
        "Put": {
            "TableName": table,
            "Item": to_item(values),
            "ConditionExpression": "attribute_not_exists(PK)",
        }
    }


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


def event_put(table: str, pk: str, event: Envelope[Any], balance_version: int) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": table,
            "Item": to_item(
                {
                    "PK": pk,
                    "SK": event_sk(event.occurred_at, event.id),
                    "event_id": str(event.id),
                    "type": event.type,
                    "version": event.version,
                    "occurred_at": event.occurred_at.isoformat(),
                    "causation_id": str(event.causation_id) if event.causation_id else None,
                    "payload": event.payload.model_dump(mode="json"),
                    "balance_version": balance_version,
                }
            ),
            "ConditionExpression": "attribute_not_exists(PK)",
        }
    }
