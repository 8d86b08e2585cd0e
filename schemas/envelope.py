"""The message envelope every command and event travels in (contract: versioned JSON)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

PayloadT = TypeVar("PayloadT", bound=BaseModel)

# Event ids are derived from the command id, so a redelivered or replayed command yields the same ids
# even before the stored outcome is read back.
_EVENT_NAMESPACE = uuid.UUID("5b1f3c1e-7d0a-4f4e-9a51-0c1e6b7f2a10")


class Envelope(BaseModel, Generic[PayloadT]):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID
    type: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    account_id: str = Field(min_length=1, max_length=64)
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    payload: PayloadT

    def to_json(self) -> str:
        # The payload is typed by its base class here; serialise the concrete command or event.
        return self.model_dump_json(serialize_as_any=True)

    def to_bytes(self) -> bytes:
        return self.to_json().encode()


class RawEnvelope(BaseModel):
    """The envelope with its payload not yet bound to a schema: the first step of parsing a message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID
    type: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    account_id: str = Field(min_length=1, max_length=64)
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    payload: dict[str, Any]


def utc_now() -> datetime:
    return datetime.now(UTC)


def derive_event_id(command_id: uuid.UUID, handler: str, index: int = 0) -> uuid.UUID:
    return uuid.uuid5(_EVENT_NAMESPACE, f"{handler}:{command_id}:{index}")
