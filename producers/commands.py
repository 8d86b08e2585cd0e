"""The command publisher used by the API: wraps a command in its envelope and puts it on its topic."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple, Protocol

from schemas.commands import Command, Deposit, PlaceOrder, Withdraw
from schemas.envelope import Envelope, utc_now
from schemas.topics import DEPOSIT_COMMANDS, ORDER_COMMANDS, WITHDRAWAL_COMMANDS

TOPIC_BY_COMMAND: dict[type[Command], str] = {
    Deposit: DEPOSIT_COMMANDS,
    Withdraw: WITHDRAWAL_COMMANDS,
    PlaceOrder: ORDER_COMMANDS,
}


class Placed(Protocol):
    """Where the broker put a record (aiokafka's RecordMetadata is one)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...


class KeyedSender(Protocol):
    async def send(self, topic: str, key: str, value: bytes) -> Placed: ...


class Sent(NamedTuple):
    placed: Placed
    value: bytes


def envelope_for(
    command: Command,
    account_id: str,
    command_id: uuid.UUID | None = None,
    accepted_at: datetime | None = None,
) -> Envelope[Command]:
    """A new command, or (with its id and acceptance time) the very same one again, for a retry."""
    command_id = command_id or uuid.uuid4()
    return Envelope[Command](
        id=command_id,
        type=command.TYPE,
        version=command.VERSION,
        occurred_at=accepted_at or utc_now(),
        account_id=account_id,
        correlation_id=command_id,
        causation_id=None,
        payload=command,
    )


class CommandPublisher:
    def __init__(self, sender: KeyedSender) -> None:
        self._sender = sender

    async def publish(self, envelope: Envelope[Command]) -> Sent:
        """Returns once the broker has acknowledged the command: only then may the API answer 202."""
        topic = TOPIC_BY_COMMAND[type(envelope.payload)]
        value = envelope.to_bytes()
        # Keyed by account: one account's commands stay in order on one partition.
        return Sent(await self._sender.send(topic, envelope.account_id, value), value)
