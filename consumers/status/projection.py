"""Command status as a projection: commands make it `accepted`, outcome events make it final.

Both updates commute, so the order in which the two topics are read does not matter, and replaying
either changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from schemas.envelope import Envelope
from schemas.events import Event, command_result


@dataclass(frozen=True)
class CommandAccepted:
    account_id: str
    command_id: uuid.UUID
    kind: str
    accepted_at: datetime


@dataclass(frozen=True)
class CommandCompleted:
    account_id: str
    command_id: uuid.UUID
    kind: str
    status: Literal["settled", "rejected"]
    reason: str | None
    result: dict[str, Any]
    completed_at: datetime


class StatusStore(Protocol):
    async def record_accepted(self, update: CommandAccepted) -> None: ...

    async def record_completed(self, update: CommandCompleted) -> None: ...


def accepted_from_command(envelope: Envelope[Any], kind: str) -> CommandAccepted:
    return CommandAccepted(
        account_id=envelope.account_id, command_id=envelope.id, kind=kind, accepted_at=envelope.occurred_at
    )


def completed_from_event(envelope: Envelope[Event]) -> CommandCompleted:
    event = envelope.payload
    return CommandCompleted(
        account_id=envelope.account_id,
        command_id=event.command_id,
        kind=event.KIND,
        status="settled" if event.SETTLES else "rejected",
        reason=getattr(event, "reason", None),
        result=command_result(event),
        completed_at=envelope.occurred_at,
    )
